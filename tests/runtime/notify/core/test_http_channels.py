"""Slack, PagerDuty, Teams and the signed webhook against provider servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest
from samples import huge_analysis, make_analysis, make_notification, outage
from servers import (
    PD_MAX_BYTES,
    SLACK_MAX_BLOCKS,
    SLACK_MAX_HEADER_TEXT,
    SLACK_MAX_SECTION_TEXT,
    TEAMS_MAX_BYTES,
    Fault,
    free_port,
)

from resilient_templates.runtime.notify.channels import build_channel
from resilient_templates.runtime.notify.channels.base import parse_retry_after
from resilient_templates.runtime.notify.channels.webhook import sign, verify_signature
from resilient_templates.runtime.notify.plan import ChannelPlan

PD_KEY = "0123456789abcdef0123456789abcdef"
WEBHOOK_SECRET = "whsec-test-0123456789"


@pytest.fixture
def channels(monkeypatch, slack_server, pagerduty_server, teams_server, webhook_server):  # type: ignore[no-untyped-def]
    """One channel per HTTP provider, its secrets in the environment, pointing at the servers."""
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_server.url)
    monkeypatch.setenv("TEAMS_WORKFLOW_URL", teams_server.url)
    monkeypatch.setenv("PAGERDUTY_KEY", PD_KEY)
    monkeypatch.setenv("WEBHOOK_HMAC_SECRET", WEBHOOK_SECRET)
    plans = {
        "slack": ChannelPlan("slack-critical", "slack", settings={"webhook_url": "${SLACK_WEBHOOK_URL}"}),
        "teams": ChannelPlan("teams-oncall", "teams", settings={"webhook_url": "${TEAMS_WORKFLOW_URL}"}),
        "pagerduty": ChannelPlan(
            "pagerduty-critical", "pagerduty", settings={"integration_key": "${PAGERDUTY_KEY}", "url": pagerduty_server.url}
        ),
        "webhook": ChannelPlan(
            "webhook-audit", "webhook", settings={"url": webhook_server.url, "secret": "${WEBHOOK_HMAC_SECRET}"}
        ),
    }
    servers = {"slack": slack_server, "teams": teams_server, "pagerduty": pagerduty_server, "webhook": webhook_server}
    return {kind: (build_channel(plan), servers[kind]) for kind, plan in plans.items()}


KINDS = ("slack", "teams", "pagerduty", "webhook")
SCENARIOS = {
    "single": lambda: make_notification(),
    "outage": lambda: make_notification(outage(23)),
    "huge": lambda: make_notification((huge_analysis(),)),
    "escalation": lambda: make_notification(kind="escalation", escalation_level=1),
    "resolved": lambda: make_notification((), kind="resolved", count=3),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kind", KINDS)
def test_provider_accepts_every_rendered_payload(channels, kind: str, scenario: str) -> None:  # type: ignore[no-untyped-def]
    """Each channel's payload for each scenario passes the provider's validation and limits."""
    channel, server = channels[kind]
    message = channel.render(SCENARIOS[scenario]())
    result = channel.send(message, timeout=5)
    assert result.ok, result
    (request,) = server.delivered()
    assert request.idempotency_key == message.idempotency_key


# ---------------------------------------------------------------- limits and truncation


def test_slack_payload_stays_within_block_kit_limits_for_a_huge_analysis(channels) -> None:  # type: ignore[no-untyped-def]
    """A 2 MB log still yields ≤ 50 blocks, sections ≤ 3000 and a header ≤ 150 characters."""
    channel, _ = channels["slack"]
    body = channel.render(make_notification((huge_analysis(),), title="x" * 400)).body
    assert len(body["blocks"]) <= SLACK_MAX_BLOCKS
    assert len(body["blocks"][0]["text"]["text"]) <= SLACK_MAX_HEADER_TEXT
    sections = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert all(len(text) <= SLACK_MAX_SECTION_TEXT for text in sections)
    assert body["text"]


def test_slack_truncation_keeps_the_root_cause(channels) -> None:  # type: ignore[no-untyped-def]
    """Cut to fit, the Slack message still names category, signature, confidence, evidence,
    recommendation, and the log's last line."""
    channel, _ = channels["slack"]
    text = json.dumps(channel.render(make_notification((huge_analysis(),))).body)
    for needle in (
        "resource_exhaustion", "oom-killed", "93% confident", "evidence line 0: OOMKilled",
        "Raise the build stage's memory limit", "FATAL: container killed: OOMKilled",
    ):
        assert needle in text, needle
    assert "step 0:" not in text  # the log's head went first


def test_slack_groups_an_outage_into_one_message(channels) -> None:  # type: ignore[no-untyped-def]
    """23 failures with one cause become one detailed failure plus a one-line-each list."""
    channel, _ = channels["slack"]
    body = channel.render(make_notification(outage(23))).body
    assert len(body["blocks"]) < 10
    listing = body["blocks"][-1]["text"]["text"]
    assert listing.count("\n• ") == 22


def test_pagerduty_event_stays_under_512_kb_with_the_root_cause(channels) -> None:  # type: ignore[no-untyped-def]
    """A huge analysis gives an event under PagerDuty's 512 KB with the root cause kept."""
    channel, server = channels["pagerduty"]
    message = channel.render(make_notification((huge_analysis(),)))
    assert len(json.dumps(message.body).encode()) < PD_MAX_BYTES
    failure = message.body["payload"]["custom_details"]["failures"][0]
    assert (failure["category"], failure["signature"]) == ("resource_exhaustion", "oom-killed")
    assert failure["recommendation"].startswith("Raise the build stage's memory limit")
    assert failure["log_tail"].rstrip().endswith("FATAL: container killed: OOMKilled (memory limit 2Gi)")


def test_pagerduty_summary_is_cut_to_1024(channels) -> None:  # type: ignore[no-untyped-def]
    """payload.summary never exceeds 1024 characters."""
    channel, server = channels["pagerduty"]
    message = channel.render(make_notification(title="t" * 5000))
    assert len(message.body["payload"]["summary"]) == 1024
    assert channel.send(message, timeout=5).ok


def test_teams_card_stays_under_28_kb(channels) -> None:  # type: ignore[no-untyped-def]
    """A huge analysis and a 200-failure outage both give cards under Teams' ~28 KB."""
    channel, _ = channels["teams"]
    for notification in (make_notification((huge_analysis(),)), make_notification(outage(200))):
        body = channel.render(notification).body
        assert len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()) <= TEAMS_MAX_BYTES


def test_teams_card_is_an_adaptive_card_with_facts(channels) -> None:  # type: ignore[no-untyped-def]
    """The Teams body is a message with one Adaptive Card 1.4 attachment holding a FactSet."""
    channel, _ = channels["teams"]
    body = channel.render(make_notification()).body
    (attachment,) = body["attachments"]
    card = attachment["content"]
    assert (body["type"], attachment["contentType"], card["type"], card["version"]) == (
        "message", "application/vnd.microsoft.card.adaptive", "AdaptiveCard", "1.4",
    )
    facts = card["body"][3]["items"][1]["facts"]
    assert {"title": "Signature", "value": "github-rate-limit"} in facts
    assert card["actions"][0]["url"] == "https://argo.example.com/workflows/ci/release-7f3k2"


def test_webhook_caps_alerts_like_alertmanager(monkeypatch, webhook_server) -> None:  # type: ignore[no-untyped-def]
    """max_alerts keeps the first N alerts and reports the rest in truncatedAlerts."""
    channel = build_channel(
        ChannelPlan("audit", "webhook", settings={"url": webhook_server.url, "secret": WEBHOOK_SECRET, "max_alerts": 5})
    )
    body = channel.render(make_notification(outage(23))).body
    assert (len(body["alerts"]), body["truncatedAlerts"], body["groupLabels"]) == (5, 18, {"signature": "github-rate-limit"})
    assert body["commonLabels"]["signature"] == "github-rate-limit" and "workflow" not in body["commonLabels"]


# ---------------------------------------------------------------- PagerDuty event lifecycle


def test_pagerduty_trigger_acknowledge_resolve_share_one_dedup_key(channels) -> None:  # type: ignore[no-untyped-def]
    """Trigger, acknowledge and resolve use the same dedup_key, so PagerDuty has one alert."""
    channel, server = channels["pagerduty"]
    states = []
    for kind in ("firing", "acknowledged", "resolved"):
        analyses = () if kind != "firing" else (make_analysis(),)
        result = channel.send(channel.render(make_notification(analyses, kind=kind)), timeout=5)
        assert result.ok and result.status == 202
        states.append(dict(server.alerts))
    key = result.provider_ref
    assert key is not None and key.startswith("rt-") and len(key) <= 255
    assert [s[key] for s in states] == ["triggered", "acknowledged", "resolved"]
    assert [e["event_action"] for e in server.events] == ["trigger", "acknowledge", "resolve"]


def test_pagerduty_maps_severity_and_context_fields(channels) -> None:  # type: ignore[no-untyped-def]
    """severity, component, group, class and source come from the analysis."""
    channel, _ = channels["pagerduty"]
    from resilient_templates.policy.taxonomy import Severity

    payload = channel.render(make_notification((make_analysis(severity=Severity.CRITICAL),))).body["payload"]
    assert (payload["severity"], payload["component"], payload["group"], payload["class"], payload["source"]) == (
        "critical", "pr_operations", "release-7f3k2", "external_dependency", "ci/release-7f3k2",
    )


def test_pagerduty_invalid_event_is_final_and_hides_the_key(monkeypatch, pagerduty_server) -> None:  # type: ignore[no-untyped-def]
    """A 400 'invalid event' is not retried; its error lists PagerDuty's reasons, never the key."""
    monkeypatch.setenv("PD_SHORT_KEY", "short-key-1234")
    channel = build_channel(ChannelPlan("pd", "pagerduty", settings={"integration_key": "${PD_SHORT_KEY}", "url": pagerduty_server.url}))
    result = channel.send(channel.render(make_notification()), timeout=5)
    assert (result.ok, result.status, result.retryable) == (False, 400, False)
    assert "Length of 'routing_key' is incorrect" in result.error
    assert "short-key-1234" not in result.error


# ---------------------------------------------------------------- failure classification


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_is_retryable_with_retry_after(channels, kind: str) -> None:  # type: ignore[no-untyped-def]
    """429 is retryable and carries the server's Retry-After in seconds."""
    channel, server = channels[kind]
    server.script(Fault.rate_limited("7"))
    result = channel.send(channel.render(make_notification()), timeout=5)
    assert (result.ok, result.status, result.retryable, result.retry_after) == (False, 429, True, 7.0)


@pytest.mark.parametrize("kind", KINDS)
def test_server_error_is_retryable(channels, kind: str) -> None:  # type: ignore[no-untyped-def]
    """5xx is retryable."""
    channel, server = channels[kind]
    server.script(Fault.error(503))
    result = channel.send(channel.render(make_notification()), timeout=5)
    assert (result.ok, result.status, result.retryable) == (False, 503, True)


@pytest.mark.parametrize("kind", KINDS)
def test_dropped_connection_is_retryable(channels, kind: str) -> None:  # type: ignore[no-untyped-def]
    """A connection closed without a response is a retryable network error."""
    channel, server = channels[kind]
    server.script(Fault.drop())
    result = channel.send(channel.render(make_notification()), timeout=5)
    assert (result.ok, result.status, result.retryable) == (False, None, True)
    assert "RemoteDisconnected" in result.error


@pytest.mark.parametrize("kind", KINDS)
def test_slow_response_times_out_as_retryable(channels, kind: str) -> None:  # type: ignore[no-untyped-def]
    """A response slower than the timeout is a retryable failure, returned within the timeout."""
    channel, server = channels[kind]
    server.script(Fault.slow(1.5))
    message = channel.render(make_notification())  # rendering is not part of the send's time
    started = time.monotonic()
    result = channel.send(message, timeout=0.3)
    assert (result.ok, result.retryable) == (False, True)
    assert time.monotonic() - started < 1.4


def test_client_error_is_final(channels) -> None:  # type: ignore[no-untyped-def]
    """A 4xx other than 408/429 is not retried, and the provider's error text is kept."""
    channel, server = channels["slack"]
    server.script(Fault.error(400))
    result = channel.send(channel.render(make_notification()), timeout=5)
    assert (result.ok, result.status, result.retryable, result.error) == (False, 400, False, "HTTP 400: invalid_payload")


def test_slack_unknown_hook_is_final(monkeypatch, slack_server) -> None:  # type: ignore[no-untyped-def]
    """Slack's 404 no_service (a deleted webhook) is final."""
    monkeypatch.setenv("SLACK_GONE", slack_server.base_url + "/services/T0/B0/deleted")
    channel = build_channel(ChannelPlan("s", "slack", settings={"webhook_url": "${SLACK_GONE}"}))
    result = channel.send(channel.render(make_notification()), timeout=5)
    assert (result.status, result.retryable, result.error) == (404, False, "HTTP 404: no_service")


def test_connection_refused_is_retryable() -> None:
    """Nothing listening on the port is a retryable network error."""
    port = free_port()
    channel = build_channel(
        ChannelPlan("w", "webhook", settings={"url": f"http://127.0.0.1:{port}/x", "secret": WEBHOOK_SECRET})
    )
    result = channel.send(channel.render(make_notification()), timeout=2)
    assert (result.ok, result.retryable) == (False, True)
    assert "Connection refused" in result.error or "ConnectionRefusedError" in result.error


def test_unset_secret_fails_only_that_channel(monkeypatch, channels) -> None:  # type: ignore[no-untyped-def]
    """An unset ${ENV} fails its own channel with the variable's name; the others still deliver."""
    monkeypatch.delenv("SLACK_WEBHOOK_URL")
    results = {kind: ch.send(ch.render(make_notification()), timeout=5) for kind, (ch, _) in channels.items()}
    assert (results["slack"].ok, results["slack"].retryable) == (False, False)
    assert results["slack"].error == "channel slack-critical: environment variable SLACK_WEBHOOK_URL is not set"
    assert all(results[kind].ok for kind in ("teams", "pagerduty", "webhook"))


def test_secret_file_is_read_at_send_time(tmp_path, slack_server) -> None:  # type: ignore[no-untyped-def]
    """webhook_url_file (a mounted Secret) is read when sending."""
    secret = tmp_path / "slack-url"
    secret.write_text(slack_server.url + "\n")
    channel = build_channel(ChannelPlan("s", "slack", settings={"webhook_url_file": str(secret)}))
    assert channel.send(channel.render(make_notification()), timeout=5).ok


def test_missing_secret_file_is_reported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An unreadable *_file fails that channel with the path, not a traceback."""
    channel = build_channel(ChannelPlan("s", "slack", settings={"webhook_url_file": str(tmp_path / "nope")}))
    result = channel.send(channel.render(make_notification()), timeout=5)
    assert result.error == f"channel s: cannot read webhook_url_file {tmp_path / 'nope'}: No such file or directory"


def test_retired_teams_connector_is_refused_at_send(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An Office 365 connector URL that slipped in via the environment is refused, not posted."""
    monkeypatch.setenv("TEAMS_OLD", "https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/x/y")
    channel = build_channel(ChannelPlan("t", "teams", settings={"webhook_url": "${TEAMS_OLD}"}))
    result = channel.send(channel.render(make_notification()), timeout=5)
    assert (result.ok, result.retryable) == (False, False)
    assert "retired" in result.error


def test_send_errors_never_carry_the_webhook_url(monkeypatch, slack_server) -> None:  # type: ignore[no-untyped-def]
    """A secret webhook URL does not leak into the error text, whatever the failure."""
    url = "http://127.0.0.1:1/services/T0/B0/supersecrettoken"
    monkeypatch.setenv("SLACK_BAD", url)
    channel = build_channel(ChannelPlan("s", "slack", settings={"webhook_url": "${SLACK_BAD}"}))
    result = channel.send(channel.render(make_notification()), timeout=2)
    assert not result.ok and "supersecrettoken" not in result.error


# ---------------------------------------------------------------- Retry-After and signatures


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    """Retry-After is delay-seconds or an HTTP-date; past dates mean now; junk is ignored."""
    now = datetime(2026, 9, 1, 12, 0, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(later, now=now.timestamp()) == 90.0
    assert parse_retry_after(earlier, now=now.timestamp()) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_webhook_signature_verifies_and_detects_tampering() -> None:
    """verify_signature accepts our signature and refuses a changed body or secret."""
    body, ts = b'{"status":"firing"}', 1_788_264_000
    signature = sign(WEBHOOK_SECRET, ts, body)
    assert verify_signature(WEBHOOK_SECRET, str(ts), body, signature, now=ts + 5)
    assert verify_signature(WEBHOOK_SECRET, ts, body.decode(), signature.removeprefix("sha256="), now=ts)
    assert not verify_signature(WEBHOOK_SECRET, ts, body + b" ", signature, now=ts)
    assert not verify_signature("other-secret", ts, body, signature, now=ts)
    assert not verify_signature(WEBHOOK_SECRET, "not-a-number", body, signature, now=ts)


def test_webhook_signature_rejects_replays_outside_tolerance() -> None:
    """A correctly signed request older (or newer) than the tolerance is refused."""
    body, ts = b"{}", 1_788_264_000
    signature = sign(WEBHOOK_SECRET, ts, body)
    assert verify_signature(WEBHOOK_SECRET, ts, body, signature, now=ts + 300)
    assert not verify_signature(WEBHOOK_SECRET, ts, body, signature, now=ts + 301)
    assert not verify_signature(WEBHOOK_SECRET, ts, body, signature, now=ts - 301)


def test_webhook_request_verifies_with_the_receiver_helper(channels) -> None:  # type: ignore[no-untyped-def]
    """What the webhook channel sends verifies with verify_signature over the raw body."""
    channel, server = channels["webhook"]
    assert channel.send(channel.render(make_notification()), timeout=5).ok
    (request,) = server.delivered()
    headers = request.headers
    assert verify_signature(WEBHOOK_SECRET, headers["x-rt-timestamp"], request.body, headers["x-rt-signature"])


def test_webhook_with_the_wrong_secret_is_refused(monkeypatch, webhook_server) -> None:  # type: ignore[no-untyped-def]
    """The receiving server refuses a request signed with another secret (401, final)."""
    channel = build_channel(ChannelPlan("w", "webhook", settings={"url": webhook_server.url, "secret": "wrong"}))
    result = channel.send(channel.render(make_notification()), timeout=5)
    assert (result.status, result.retryable) == (401, False)
    assert webhook_server.delivered() == []
