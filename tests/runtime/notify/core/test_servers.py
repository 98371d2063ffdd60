"""The provider test servers answer like the providers, so channel tests against them mean something."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from servers import Fault, PagerDutyServer, ProviderServer, SlackServer, TeamsServer, WebhookServer


def post(server: ProviderServer, body: Any, *, path: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(server.base_url + (path or server.default_path), data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


# ---------------------------------------------------------------- Slack


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        ({"text": "hello"}, 200, "ok"),
        ({}, 400, "no_text"),
        (b"not json", 400, "invalid_payload"),
        ({"blocks": [{"type": "divider"}] * 51}, 400, "invalid_blocks"),
        ({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}, 400, "invalid_blocks"),
        ({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]}, 400, "invalid_blocks"),
    ],
)
def test_slack_server_validates_like_slack(slack_server, body: Any, status: int, answer: str) -> None:  # type: ignore[no-untyped-def]
    """Slack's incoming webhook answers 200 ok or 400 with its plain-text error codes."""
    assert post(slack_server, body)[:2] == (status, answer)


def test_slack_server_unknown_hook_is_no_service(slack_server) -> None:  # type: ignore[no-untyped-def]
    """A hook path Slack does not know answers 404 no_service."""
    assert post(slack_server, {"text": "x"}, path="/services/T/B/other")[:2] == (404, "no_service")


# ---------------------------------------------------------------- PagerDuty


def test_pagerduty_server_accepts_a_valid_event(pagerduty_server) -> None:  # type: ignore[no-untyped-def]
    """A valid trigger gets 202 with status, message and the dedup_key."""
    event = {"routing_key": "k" * 32, "event_action": "trigger", "dedup_key": "abc",
             "payload": {"summary": "s", "source": "src", "severity": "error"}}
    status, text, _ = post(pagerduty_server, event)
    assert (status, json.loads(text)) == (202, {"status": "success", "message": "Event processed", "dedup_key": "abc"})


def test_pagerduty_server_lists_every_invalid_field(pagerduty_server) -> None:  # type: ignore[no-untyped-def]
    """An invalid event gets 400 'invalid event' with one error per problem."""
    event = {"routing_key": "short", "event_action": "trigger", "payload": {"summary": "s" * 1025, "severity": "high"}}
    status, text, _ = post(pagerduty_server, event)
    body = json.loads(text)
    assert (status, body["status"], body["message"]) == (400, "invalid event", "Event object is invalid")
    assert body["errors"] == [
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        "'payload.summary' is too long (max 1024 characters)",
        "'payload.source' is missing or blank",
        "'payload.severity' is invalid (must be one of: critical, error, warning, info)",
    ]


def test_pagerduty_server_throttles_with_json(pagerduty_server) -> None:  # type: ignore[no-untyped-def]
    """A scripted 429 answers with PagerDuty's throttle body and Retry-After."""
    pagerduty_server.script(Fault.rate_limited("30"))
    status, text, headers = post(pagerduty_server, {})
    assert (status, json.loads(text)["status"], headers["Retry-After"]) == (429, "throttle event", "30")


# ---------------------------------------------------------------- Teams


def card(text: str = "hi") -> dict[str, Any]:
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {
        "type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": text}]}}]}


def test_teams_server_accepts_an_adaptive_card_with_202(teams_server) -> None:  # type: ignore[no-untyped-def]
    """A Workflows trigger accepts a message with an Adaptive Card: 202, empty body."""
    assert post(teams_server, card())[:2] == (202, "")


def test_teams_server_refuses_oversized_messages(teams_server) -> None:  # type: ignore[no-untyped-def]
    """Above ~28 KB the trigger answers 413 'Request entity too large'."""
    status, text, _ = post(teams_server, card("x" * 30_000))
    assert (status, json.loads(text)["error"]["code"]) == (413, "RequestEntityTooLarge")


def test_teams_server_refuses_a_legacy_message_card(teams_server) -> None:  # type: ignore[no-untyped-def]
    """A bare {"text": …} (the retired connector format) is not a Workflows message: 400."""
    status, text, _ = post(teams_server, {"text": "hello"})
    assert status == 400 and "message" in json.loads(text)["error"]["message"]


# ---------------------------------------------------------------- signed webhook


def signed(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-RT-Timestamp": str(timestamp), "X-RT-Signature": f"sha256={mac}"}


def test_webhook_server_rejects_stale_timestamps(webhook_server) -> None:  # type: ignore[no-untyped-def]
    """A correctly signed request older than the tolerance is a replay: 401."""
    body = b'{"a":1}'
    status, text, _ = post(webhook_server, body, headers=signed(webhook_server.secret, body, int(time.time()) - 301))
    assert (status, json.loads(text)) == (401, {"error": "stale timestamp"})


def test_webhook_server_can_refuse_exact_replays() -> None:
    """With reject_replays, the same signed request twice answers 409 the second time."""
    with WebhookServer(reject_replays=True) as server:
        body = b'{"a":1}'
        headers = signed(server.secret, body, int(time.time()))
        assert [post(server, body, headers=headers)[0] for _ in range(2)] == [200, 409]


# ---------------------------------------------------------------- fault injection


def test_chaos_is_reproducible_with_a_seed() -> None:
    """The same seed injects the same faults in the same order."""
    outcomes = []
    for _ in range(2):
        with SlackServer() as server:
            server.chaos(0.5, seed=42, faults=(Fault.error(500), Fault.rate_limited("0")))
            outcomes.append([post(server, {"text": str(i)})[0] for i in range(30)])
    assert outcomes[0] == outcomes[1]
    assert {200, 500, 429} <= set(outcomes[0])


def test_drop_after_processing_counts_as_a_duplicate_when_retried(slack_server) -> None:  # type: ignore[no-untyped-def]
    """A response lost after processing leaves the message delivered; a retry duplicates it."""
    slack_server.script(Fault.drop_after())
    key = {"X-RT-Idempotency-Key": "k1"}
    with pytest.raises(Exception):
        post(slack_server, {"text": "x"}, headers=key)
    assert post(slack_server, {"text": "x"}, headers=key)[0] == 200
    assert [r.outcome for r in slack_server.received()] == ["ok_unacknowledged", "ok"]
    assert slack_server.duplicates() == {"k1": 2}


def test_dropped_before_processing_is_not_delivered(slack_server) -> None:  # type: ignore[no-untyped-def]
    """A connection dropped before processing delivers nothing."""
    slack_server.script(Fault.drop())
    with pytest.raises(Exception):
        post(slack_server, {"text": "x"})
    assert slack_server.delivered() == []


def test_rate_limit_knob_answers_429_beyond_the_budget(slack_server) -> None:  # type: ignore[no-untyped-def]
    """With max_per_second = 2, a third request within a second gets 429 Retry-After: 1."""
    slack_server.max_per_second = 2
    answers = [post(slack_server, {"text": str(i)}) for i in range(3)]
    assert [a[0] for a in answers] == [200, 200, 429]
    assert answers[2][2]["Retry-After"] == "1"


def test_servers_record_concurrent_requests_exactly(pagerduty_server) -> None:  # type: ignore[no-untyped-def]
    """Fifty concurrent senders are all recorded, each once."""
    event = {"routing_key": "k" * 32, "event_action": "trigger",
             "payload": {"summary": "s", "source": "src", "severity": "error"}}

    def send(i: int) -> None:
        post(pagerduty_server, {**event, "dedup_key": f"d{i}"}, headers={"X-RT-Idempotency-Key": f"k{i}"})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(pagerduty_server.delivered()) == 50
    assert pagerduty_server.duplicates() == {}
    assert len(pagerduty_server.alerts) == 50
