"""Delivery against the real provider servers: retries, 429, timeouts, fallback, audit.

Time is injected (``FakeClock``): waits between attempts advance the clock instead of
sleeping, while every request is a real HTTP request to a server on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from delivery_helpers import T0, WEBHOOK_SECRET, analysis, channel, make_plan, rows
from servers import Fault

from resilient_templates.runtime.notify import outbox
from resilient_templates.runtime.notify.channels.webhook import verify_signature
from resilient_templates.runtime.notify.deliver import Deliverer, DeliveryPolicy, DeliveryReport
from resilient_templates.runtime.notify.outbox import redact_line
from resilient_templates.runtime.notify.ratelimit import RateLimiter
from resilient_templates.runtime.notify.service import NotifyService


def _service(store, clock, plan):
    return NotifyService(store, plan, clock=clock, sleep=clock.sleep, rng=random.Random(7))


def _attempts(store):
    return rows(
        store,
        "SELECT at, channel, attempt, status, ok, latency_ms, error FROM notify_audit "
        "WHERE event = 'attempt' ORDER BY id",
    )


def test_429_retry_after_is_honoured(store, clock, slack_server):
    """A 429 with Retry-After: 2 makes the next attempt exactly 2 s later, and it succeeds."""
    slack_server.script(Fault.rate_limited("2"))
    plan = make_plan([channel("chat", slack_server)], {"team": ["chat"]})
    report = _service(store, clock, plan).notify([analysis()], deliver_for=60)
    attempts = _attempts(store)
    assert [a[3] for a in attempts] == [429, 200]
    assert attempts[1][0] - attempts[0][0] == pytest.approx(2.0)
    assert len(report.delivery.sent) == 1
    assert [r.status for r in slack_server.received()] == [429, 200]


def test_429_pauses_the_channel_for_other_messages(store, clock, slack_server):
    """After a 429 with Retry-After: 3 no other message goes to that channel for 3 s."""
    slack_server.script(Fault.rate_limited("3"))
    plan = make_plan([channel("chat", slack_server, rate=100)], {"team": ["chat"]})
    service = _service(store, clock, plan)
    service.notify([analysis("wf-a")], deliver_for=0)
    clock.advance(0.5)
    service.notify([analysis("wf-b")], deliver_for=60)
    times = [a[0] - T0 for a in _attempts(store)]
    assert times[0] == 0.0 and min(times[1:]) >= 3.0


def test_400_is_not_retried(store, clock, slack_server):
    """A 400 is final after one attempt: no retry, the row is failed and audited."""
    slack_server.script(Fault.error(400))
    plan = make_plan([channel("chat", slack_server)], {"team": ["chat"]})
    report = _service(store, clock, plan).notify([analysis()], deliver_for=600)
    assert len(slack_server.received()) == 1
    assert rows(store, "SELECT state, attempts, last_status FROM notify_outbox") == [("failed", 1, 400)]
    assert len(report.delivery.undeliverable) == 1


def test_500_is_retried_with_full_jitter_backoff(store, clock, slack_server):
    """Two 500s are retried after waits drawn in [0, 1 s] and [0, 2 s]; the third attempt lands."""
    slack_server.script(Fault.error(500), Fault.error(500))
    plan = make_plan([channel("chat", slack_server, rate=100)], {"team": ["chat"]})
    assert [(lo.seconds, hi.seconds) for lo, hi in DeliveryPolicy.from_defaults(plan.defaults).retry.bounds()] == [
        (0.0, 1.0), (0.0, 2.0), (0.0, 4.0),
    ]  # fmt: skip
    _service(store, clock, plan).notify([analysis()], deliver_for=60)
    attempts = _attempts(store)
    assert [a[3] for a in attempts] == [500, 500, 200]
    gaps = [attempts[1][0] - attempts[0][0], attempts[2][0] - attempts[1][0]]
    assert 0 <= gaps[0] <= 1.0 and 0 <= gaps[1] <= 2.0


def test_retries_stop_at_max_attempts(store, clock, slack_server):
    """A channel that keeps answering 503 gets exactly max_attempts (4) attempts."""
    slack_server.script(*[Fault.error(503)] * 10)
    plan = make_plan([channel("chat", slack_server)], {"team": ["chat"]})
    _service(store, clock, plan).notify([analysis()], deliver_for=3600)
    assert len(slack_server.received()) == 4
    assert rows(store, "SELECT state, attempts FROM notify_outbox") == [("failed", 4)]


def test_dropped_connection_is_retried(store, clock, pagerduty_server):
    """A connection dropped before the provider processed it is retried and delivered once."""
    pagerduty_server.script(Fault.drop())
    plan = make_plan([channel("pd", pagerduty_server)], {"oncall": ["pd"]})
    _service(store, clock, plan).notify([analysis()], deliver_for=60)
    attempts = _attempts(store)
    assert attempts[0][3] is None and attempts[0][6]  # no status, an error text
    assert attempts[1][3] == 202
    assert len(pagerduty_server.wait_for(1)) == 1


def test_slow_response_times_out_and_is_retried_with_the_same_key(store, clock, slack_server):
    """A response slower than the timeout fails the attempt; the retry carries the same key.

    The slow request was still processed by the provider: this is the documented
    at-least-once window, and the shared idempotency key is what lets a receiver drop it.
    """
    slack_server.script(Fault.slow(1.0))
    plan = make_plan([channel("chat", slack_server)], {"team": ["chat"]}, timeout="300ms")
    _service(store, clock, plan).notify([analysis()], deliver_for=60)
    attempts = _attempts(store)
    assert attempts[0][3] is None and "timed out" in attempts[0][6]
    assert attempts[-1][3] == 200
    slack_server.wait_for(2, timeout=3)
    keys = {r.idempotency_key for r in slack_server.received()}
    assert len(slack_server.received()) == 2 and len(keys) == 1


def test_pagerduty_duplicate_after_a_lost_response_is_one_alert(store, clock, pagerduty_server):
    """A trigger processed but unanswered and then retried stays one PagerDuty alert (dedup_key)."""
    pagerduty_server.script(Fault.drop_after())
    plan = make_plan([channel("pd", pagerduty_server)], {"oncall": ["pd"]})
    _service(store, clock, plan).notify([analysis()], deliver_for=60)
    assert len(pagerduty_server.wait_for(2)) == 2
    assert len(pagerduty_server.alerts) == 1


def test_fallback_receiver_gets_the_message_when_a_channel_stays_down(
    store, clock, slack_server, webhook_server
):
    """When Slack fails for good, the receiver's fallback (a webhook) gets the notification."""
    slack_server.script(*[Fault.error(500)] * 4)
    plan = make_plan(
        [channel("chat", slack_server), channel("hook", webhook_server)],
        {"team": (["chat"], "backup"), "backup": ["hook"]},
    )
    report = _service(store, clock, plan).notify([analysis()], deliver_for=3600)
    assert len(report.delivery.fallbacks) == 1 and not report.delivery.undeliverable
    delivered = webhook_server.wait_for(1)
    assert len(delivered) == 1
    assert delivered[0].json["receiver"] == "backup"
    assert rows(store, "SELECT channel, state FROM notify_outbox ORDER BY id") == [
        ("chat", "failed"), ("hook", "sent"),
    ]  # fmt: skip
    assert rows(store, "SELECT channel FROM notify_audit WHERE event = 'fallback'") == [("hook",)]


def test_no_fallback_left_means_undeliverable(store, clock, slack_server, webhook_server):
    """If the fallback fails too, the message is reported undeliverable (notify exits 69)."""
    slack_server.script(*[Fault.error(500)] * 4)
    webhook_server.script(Fault.error(404))
    plan = make_plan(
        [channel("chat", slack_server), channel("hook", webhook_server)],
        {"team": (["chat"], "backup"), "backup": ["hook"]},
    )
    report = _service(store, clock, plan).notify([analysis()], deliver_for=3600)
    assert len(report.delivery.undeliverable) == 1


def test_every_attempt_is_audited(store, clock, slack_server):
    """Each attempt has a row: time, channel, attempt number, status, ok, latency, error."""
    slack_server.script(Fault.error(502))
    plan = make_plan([channel("chat", slack_server, rate=100)], {"team": ["chat"]})
    _service(store, clock, plan).notify([analysis()], deliver_for=60)
    (first, second) = _attempts(store)
    assert first[1:5] == ("chat", 1, 502, 0) and first[5] > 0 and first[6].startswith("HTTP 502")
    assert second[1:5] == ("chat", 2, 200, 1) and second[6] is None


def test_retries_send_the_same_bytes(store, clock, webhook_server):
    """A retried message is rendered once: every attempt posts an identical body."""
    webhook_server.script(Fault.error(500))
    plan = make_plan([channel("hook", webhook_server, rate=100)], {"team": ["hook"]})
    _service(store, clock, plan).notify([analysis()], deliver_for=60)
    bodies = {r.body for r in webhook_server.received()}
    assert len(webhook_server.received()) == 2 and len(bodies) == 1


def test_audit_errors_lose_urls_and_credentials():
    """The audit's error text keeps no URL path, query string or credentials."""
    text = redact_line(
        "URLError: https://user:pw@prod-12.westeurope.logic.azure.com/workflows/abc?sig=SECRET failed"
    )
    assert "SECRET" not in text and "pw" not in text and "/workflows/abc" not in text
    assert "prod-12.westeurope.logic.azure.com" in text


def test_email_451_is_retried_and_the_resend_keeps_its_message_id(store, clock, smtp_server, tls_cert):
    """An SMTP 451 is retried; the accepted mail's Message-ID is the outbox key (STARTTLS + AUTH)."""
    smtp_server.script("451 4.3.0 try again later")
    mail = {
        "name": "mail", "type": "email", "rate_per_second": 100,
        "settings": {"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port, "username": "rt",
                     "password": "s3cret", "from": "rt@example.com", "to": ["oncall@example.com"],
                     "tls_ca_file": str(tls_cert[0])},
    }  # fmt: skip
    plan = make_plan([mail], {"team": ["mail"]})
    _service(store, clock, plan).notify([analysis()], deliver_for=60)
    assert [a[3] for a in _attempts(store)] == [451, 250]
    (message,) = smtp_server.received()
    (key,) = rows(store, "SELECT idempotency_key FROM notify_outbox")[0]
    assert message.tls and message.auth_user == "rt" and key in message.message_id


def test_a_late_result_after_the_lease_expired_changes_nothing(store, clock, slack_server, webhook_server):
    """A holder whose lease expired cannot overwrite the new holder's result: its late failure
    changes no row, is audited as ignored and enqueues no fallback."""
    plan = make_plan([channel("slack", slack_server), channel("hook", webhook_server)],
                     {"team": (["slack"], "spare"), "spare": ["hook"]})  # fmt: skip
    service = _service(store, clock, plan)
    slack_server.script(Fault.drop())
    service.notify([analysis()])  # the first attempt is dropped: the row waits for its retry
    clock.advance(60)
    stalled = Deliverer(store, plan, owner="stalled", clock=clock, sleep=clock.sleep)
    (item,) = outbox.claim(store, owner="stalled", now=clock(), lease=stalled.policy.lease)
    clock.advance(stalled.policy.lease + 1)  # the stalled holder is taken for dead
    assert len(Deliverer(store, plan, owner="new", clock=clock, sleep=clock.sleep).run().sent) == 1
    clock.advance(5)  # past the channel's rate-limit window
    slack_server.script(Fault.error(404))
    stalled._process(item, DeliveryReport())  # it wakes up; its own send is refused for good
    assert rows(store, "SELECT channel, state, lease_owner FROM notify_outbox") == [("slack", "sent", None)]
    (ignored,) = rows(store, "SELECT error FROM notify_audit WHERE event = 'ignored'")
    assert ignored[0].startswith("late result ignored")
    assert webhook_server.received() == []


@pytest.mark.parametrize("expression", ["1 / 0", "range(10 ** 7) | list | length", "'%d' % 'x'"])
def test_a_user_template_that_raises_falls_back_to_the_default(
    store, clock, slack_server, tmp_path, expression
):
    """A user template that fails while rendering (ZeroDivisionError, the sandbox's
    OverflowError, TypeError…) does not lose the message: the packaged default renders it and
    the problem is kept in the message's meta (template_problems)."""
    (tmp_path / "title.j2").write_text("custom {{ %s }}" % expression, encoding="utf-8")
    plan = make_plan([channel("chat", slack_server)], {"team": ["chat"]})
    plan = dataclasses.replace(plan, templates_dir=str(tmp_path))
    report = _service(store, clock, plan).notify([analysis()])
    assert len(report.delivery.sent) == 1
    ((message,),) = rows(store, "SELECT message FROM notify_outbox")
    (problem,) = json.loads(message)["meta"]["template_problems"]
    assert problem.startswith("template title for slack failed")
    assert rows(store, "SELECT count(*) FROM notify_audit WHERE event = 'template'") == [(1,)]
    assert slack_server.wait_for(1)[0].json["text"].startswith("[FIRING]")


def _card_texts(node):
    """Every text a Teams card shows (TextBlock texts and fact values), depth first."""
    if isinstance(node, dict):
        if node.get("type") == "TextBlock":
            yield node["text"]
        if "value" in node and "title" in node:
            yield node["value"]
        for value in node.values():
            yield from _card_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _card_texts(item)


def test_teams_shows_failure_text_literally_not_as_markdown(store, clock, teams_server):
    """Failure text in a Teams card is escaped for Markdown: a log line with a link, emphasis
    or a heading is shown as written, never rendered as a link."""
    hostile = "[login](https://evil.example) **now** # _x_ ~y~ `z` > q \\ (p)"
    plan = make_plan([channel("teams", teams_server)], {"team": ["teams"]})
    failure = analysis(message=hostile, log_tail=hostile + "\n", evidence=(hostile,),
                       signature="sig_[x](y)")  # fmt: skip
    _service(store, clock, plan).notify([failure])
    texts = list(_card_texts(teams_server.wait_for(1)[0].json))
    shown = "\n".join(texts)
    assert "[login](https://evil.example)" not in shown and "**now**" not in shown
    assert r"\[login\]\(https://evil.example\) \*\*now\*\* \# \_x\_ \~y\~ \`z\` \> q \\ \(p\)" in shown
    assert r"sig\_\[x\]\(y\)" in shown  # facts too


def test_the_webhook_signature_covers_the_idempotency_key(store, clock, webhook_server):
    """The idempotency key is inside the signed body, so a captured request replayed with a new
    key fails the signature instead of passing as a new message."""
    plan = make_plan([channel("hook", webhook_server)], {"team": ["hook"]})
    _service(store, clock, plan).notify([analysis()])
    (request,) = webhook_server.wait_for(1)
    timestamp, signature = request.headers["x-rt-timestamp"], request.headers["x-rt-signature"]
    assert request.json["idempotencyKey"] == request.idempotency_key
    assert verify_signature(WEBHOOK_SECRET, timestamp, request.body, signature)
    replay = json.dumps({**request.json, "idempotencyKey": "f" * 40}, ensure_ascii=False,
                        separators=(",", ":")).encode()  # fmt: skip
    assert not verify_signature(WEBHOOK_SECRET, timestamp, replay, signature)


def test_a_send_holds_its_permit_and_its_row_for_three_timeouts(store, clock, slack_server):
    """The outbox lease and the rate-limit permit both last at least 3 x the send timeout, so a
    send that takes all of its timeout (TCP connect, then the request, then the response, or a
    whole SMTP exchange) still finishes inside them."""
    plan = make_plan([channel("chat", slack_server)], {"team": ["chat"]}, timeout="30s", lease="60s")
    leases: list[float] = []

    class Recording(RateLimiter):  # the real limiter; it also notes the lease asked for
        def try_acquire(self, channel, budget, *, lease):  # type: ignore[no-untyped-def]
            leases.append(lease)
            return super().try_acquire(channel, budget, lease=lease)

    deliverer = Deliverer(store, plan, clock=clock, sleep=clock.sleep,
                          limiter=Recording(store, clock=clock, sleep=clock.sleep))  # fmt: skip
    _service(store, clock, plan).notify([analysis()], deliver_for=0)  # enqueue (its own send too)
    assert deliverer.policy.lease >= 90.0
    with store.transaction() as tx:  # one more row for the recording deliverer to send
        tx.execute("UPDATE notify_outbox SET state = 'pending', next_attempt_at = ?", (clock(),))
    clock.advance(5)
    assert len(deliverer.run().sent) == 1
    assert leases == [90.0]


def test_429s_do_not_use_up_the_retry_budget(store, clock, slack_server):
    """A provider asking us to slow down (429) is not a failed attempt: five 429s with a plan of
    max_attempts 4 still end in a delivery, each retry exactly after its Retry-After."""
    slack_server.script(*[Fault.rate_limited("1")] * 5)
    plan = make_plan([channel("chat", slack_server)], {"team": ["chat"]})  # max_attempts 4
    report = _service(store, clock, plan).notify([analysis()], deliver_for=60)
    assert len(report.delivery.sent) == 1 and report.delivery.undeliverable == []
    assert [a[3] for a in _attempts(store)] == [429] * 5 + [200]
    assert rows(store, "SELECT state, attempts FROM notify_outbox") == [("sent", 6)]
