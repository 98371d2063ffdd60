"""Grouping, dedup and incidents (Alertmanager's group_wait / group_interval / repeat_interval).

Timers use an injected clock; messages go to a real Slack test server.
"""

from __future__ import annotations

import re
import threading

from delivery_helpers import T0, analysis, channel, make_plan, rows

from resilient_templates.policy.taxonomy import Severity
from resilient_templates.runtime.notify.notification import idempotency_key
from resilient_templates.runtime.notify.service import NotifyService

BY_SIGNATURE = {"group_by": ["signature"], "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}


def _plan(slack_server, **route):
    return make_plan([channel("chat", slack_server, rate=100)], {"team": ["chat"]}, route=route or BY_SIGNATURE)


def _texts(server, count):
    """The texts of the messages the server processed, once ``count`` are in (bounded wait)."""
    return [r.json["text"] for r in server.wait_for(count)]


def test_23_failing_workflows_become_one_message(store, clock, slack_server):
    """23 workflows failing with one signature within group_wait make ONE message that says so."""
    service = NotifyService(store, _plan(slack_server), clock=clock, sleep=clock.sleep)
    for i in range(23):
        service.notify([analysis(f"release-{i:02d}")])
        clock.advance(1)
    assert slack_server.received() == []
    clock.now = T0 + 30
    service.tick()
    texts = _texts(slack_server, 1)
    assert len(texts) == 1
    assert "23 workflows failing: github-rate-limit" in texts[0]


def test_group_wait_holds_the_first_notification(store, clock, slack_server):
    """Nothing is sent before group_wait has passed; the tick at group_wait sends it."""
    service = NotifyService(store, _plan(slack_server), clock=clock, sleep=clock.sleep)
    service.notify([analysis()])
    clock.now = T0 + 29.9
    service.tick()
    assert slack_server.received() == []
    clock.now = T0 + 30
    service.tick()
    assert len(slack_server.wait_for(1)) == 1


def test_a_new_failure_in_a_notified_group_waits_for_group_interval(store, clock, slack_server):
    """A failure joining a notified group goes out group_interval after the last message."""
    service = NotifyService(store, _plan(slack_server), clock=clock, sleep=clock.sleep)
    service.notify([analysis("wf-a")])
    clock.now = T0 + 30
    service.tick()
    clock.now = T0 + 40
    service.notify([analysis("wf-b")])
    clock.now = T0 + 30 + 299
    service.tick()
    assert len(slack_server.wait_for(1)) == 1
    clock.now = T0 + 30 + 300
    service.tick()
    texts = _texts(slack_server, 2)
    assert len(texts) == 2 and "2 workflows failing: github-rate-limit" in texts[1]


def test_the_same_failure_is_not_resent_within_repeat_interval(store, clock, slack_server):
    """Reporting a notified failure again before repeat_interval is suppressed as a duplicate."""
    service = NotifyService(store, _plan(slack_server, group_wait="0s"), clock=clock, sleep=clock.sleep)
    service.notify([analysis()])
    clock.advance(3600)
    report = service.notify([analysis()])
    assert len(slack_server.wait_for(1)) == 1
    assert report.suppressed and "duplicate" in report.suppressed[0]["reason"]
    assert rows(store, "SELECT count(*) FROM notify_audit WHERE event = 'suppressed'") == [(1,)]


def test_the_same_failure_is_sent_again_after_repeat_interval(store, clock, slack_server):
    """After repeat_interval (and the group_interval pacing) a recurrence is notified again."""
    service = NotifyService(store, _plan(slack_server, group_wait="0s"), clock=clock, sleep=clock.sleep)
    service.notify([analysis()])
    clock.advance(4 * 3600 + 1)
    service.notify([analysis()])
    delivered = slack_server.wait_for(2)
    assert len(delivered) == 2
    assert delivered[0].idempotency_key != delivered[1].idempotency_key


def test_concurrent_reports_of_one_failure_make_one_message(store_factory, slack_server):
    """Eight processes' worth of connections reporting one failure at once send exactly one message."""
    plan = _plan(slack_server, group_wait="0s", group_by=["workflow"])
    NotifyService(store_factory(), plan)  # create the tables once
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def report() -> None:
        try:
            service = NotifyService(store_factory(), plan, migrate_store=False)
            barrier.wait(timeout=10)
            service.notify([analysis()], deliver_for=10)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=report) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(slack_server.received()) == 1


def test_incident_ids_are_short_and_printable(store, clock, slack_server):
    """An incident id is 10 characters of lower-case base32, and the message shows it."""
    service = NotifyService(store, _plan(slack_server, group_wait="0s"), clock=clock, sleep=clock.sleep)
    report = service.notify([analysis()])
    (incident,) = report.incidents
    assert re.fullmatch(r"[a-z2-7]{10}", incident)


def test_a_group_that_fires_again_after_resolving_is_a_new_incident(store, clock, slack_server):
    """Once resolved, the same failure opens a new incident with a new id."""
    service = NotifyService(store, _plan(slack_server, group_wait="0s"), clock=clock, sleep=clock.sleep)
    first = service.notify([analysis()]).incidents
    clock.advance(60)
    service.resolve(workflow="release-7f3k2")
    clock.advance(60)
    second = service.notify([analysis()]).incidents
    assert first and second and first != second


def test_inhibited_alerts_are_suppressed_with_a_reason(store, clock, slack_server):
    """A warning is muted while a critical failure of the same workflow fires (inhibit_rules)."""
    plan = make_plan(
        [channel("chat", slack_server, rate=100)], {"team": ["chat"]},
        route={"group_by": ["workflow", "stage"]},
        inhibit_rules=[{
            "source_matchers": [{"name": "severity", "op": "=", "value": "critical"}],
            "target_matchers": [{"name": "severity", "op": "=", "value": "warning"}],
            "equal": ["workflow"],
        }],
    )  # fmt: skip
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep)
    service.notify([analysis(stage="build", severity=Severity.CRITICAL)])
    report = service.notify([analysis(stage="lint", severity=Severity.WARNING)])
    assert report.suppressed[0]["reason"] == "inhibited by a firing alert"
    assert len(slack_server.wait_for(1)) == 1


def test_a_receiver_without_enabled_channels_is_suppressed(store, clock, slack_server):
    """Routing to a receiver whose only channel is disabled records why nothing was sent."""
    plan_entry = channel("chat", slack_server)
    plan_entry["enabled"] = False
    plan = make_plan([plan_entry], {"team": ["chat"]})
    report = NotifyService(store, plan, clock=clock, sleep=clock.sleep).notify([analysis()])
    assert "no enabled channel" in report.suppressed[0]["reason"]
    assert slack_server.received() == []


def test_notify_wait_flushes_its_own_group_when_group_wait_ends_in_time(store, clock, slack_server):
    """With wait >= group_wait, notify waits out group_wait itself and sends; a shorter wait leaves it to tick."""
    service = NotifyService(store, _plan(slack_server), clock=clock, sleep=clock.sleep)
    short = service.notify([analysis("wf-a", signature="oom")], wait=10)
    assert short.delivery.sent == [] and slack_server.received() == []
    report = service.notify([analysis("wf-b")], wait=60)
    assert clock.now == T0 + 30 and len(report.delivery.sent) == 1
    assert len(slack_server.received()) == 1


def test_tick_loop_flushes_what_comes_due_during_its_minute(store, clock, slack_server):
    """`tick --loop --for 60s` started before group_wait ends sends the group when it is due."""
    service = NotifyService(store, _plan(slack_server), clock=clock, sleep=clock.sleep)
    service.notify([analysis()])
    report = service.tick_loop(duration=60)
    assert report.flushed == 1 and len(report.delivery.sent) == 1
    assert clock.now >= T0 + 60


def test_a_group_update_carries_its_sequence_in_its_key(store, clock, slack_server):
    """The second message of a group is Notification.sequence 1, and its outbox key is that
    notification's own idempotency key (no key derived outside the Notification)."""
    plan = _plan(slack_server, **{**BY_SIGNATURE, "group_wait": "0s"})
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep)
    service.notify([analysis("wf-a")])
    clock.advance(301)
    service.notify([analysis("wf-b")])
    (incident, first_key), (_, second_key) = rows(
        store, "SELECT incident, idempotency_key FROM notify_outbox ORDER BY id"
    )
    assert first_key == idempotency_key(incident, "firing", 0, 0, "chat")
    assert second_key == idempotency_key(incident, "firing", 0, 0, "chat", sequence=1)
    assert [r.json["text"] for r in slack_server.wait_for(2)][1].startswith("[FIRING:2]")


def test_webhook_group_key_is_stable_across_incidents(store, clock, webhook_server):
    """The webhook's groupKey names the group (the same for each of its incidents, as in
    Alertmanager); incidentKey names the incident."""
    plan = make_plan([channel("hook", webhook_server, rate=100)], {"team": ["hook"]})
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep)
    service.notify([analysis()])
    clock.advance(60)
    service.resolve(workflow="release-7f3k2")
    clock.advance(60)
    service.notify([analysis()])
    firing = [r.json for r in webhook_server.wait_for(3) if r.json["kind"] == "firing"]
    assert len(firing) == 2 and firing[0]["groupKey"] == firing[1]["groupKey"]
    assert firing[0]["incidentKey"] != firing[1]["incidentKey"]


CRITICAL_INHIBITS_WARNING = [{
    "source_matchers": [{"name": "severity", "op": "=", "value": "critical"}],
    "target_matchers": [{"name": "severity", "op": "=", "value": "warning"}],
    "equal": ["workflow"],
}]  # fmt: skip


def _inhibiting_plan(slack_server, **route):
    return make_plan(
        [channel("chat", slack_server, rate=100)], {"team": ["chat"]},
        route={"group_by": ["workflow", "stage"], "group_wait": "30s", "group_interval": "5m",
               "repeat_interval": "4h", **route},
        inhibit_rules=CRITICAL_INHIBITS_WARNING,
    )  # fmt: skip


def test_inhibition_is_checked_again_when_the_group_is_flushed(store, clock, slack_server):
    """A source that starts firing while the target waits in group_wait mutes the target at
    flush time (Alertmanager mutes at notification time, not on arrival)."""
    service = NotifyService(store, _inhibiting_plan(slack_server), clock=clock, sleep=clock.sleep)
    service.notify([analysis(stage="lint", severity=Severity.WARNING)])  # target: waits 30 s
    clock.advance(5)
    service.notify([analysis(stage="build", severity=Severity.CRITICAL)])  # source fires meanwhile
    clock.advance(60)
    service.tick()
    texts = _texts(slack_server, 1)
    assert len(slack_server.received()) == 1 and "build" in texts[0]


def test_an_alert_muted_at_flush_is_sent_once_its_source_resolves(store, clock, slack_server):
    """A muted alert is re-checked every group_interval while it fires; when its source
    resolves it is notified."""
    service = NotifyService(store, _inhibiting_plan(slack_server), clock=clock, sleep=clock.sleep)
    service.notify([analysis(stage="lint", severity=Severity.WARNING)])  # recorded: no source yet
    service.notify([analysis(stage="build", severity=Severity.CRITICAL)])
    clock.advance(30)
    service.tick()  # both groups due: the critical goes out, the warning is muted
    assert len(_texts(slack_server, 1)) == 1
    ((source,),) = rows(store, "SELECT incident FROM notify_incidents WHERE severity = 'critical'")
    service.resolve(incident=source, by="operator")  # sends the critical's "resolved" message
    clock.advance(300)
    service.tick()
    texts = _texts(slack_server, 3)
    assert len(texts) == 3 and "lint" in texts[2] and texts[2].startswith("[FIRING]")


def test_a_source_inhibits_only_while_it_is_recent(store, clock, slack_server):
    """A failure seen longer ago than its route's repeat_interval is no longer firing and
    inhibits nothing: a warning arriving after that is notified."""
    service = NotifyService(store, _inhibiting_plan(slack_server, group_wait="0s"), clock=clock,
                            sleep=clock.sleep)  # fmt: skip
    service.notify([analysis(stage="build", severity=Severity.CRITICAL)])
    clock.advance(4 * 3600 + 1)
    report = service.notify([analysis(stage="lint", severity=Severity.WARNING)])
    assert report.suppressed == [] and len(_texts(slack_server, 2)) == 2


def test_tick_prunes_what_is_older_than_the_retention(store, clock, slack_server):
    """tick deletes sent/failed outbox rows, audit rows and resolved incidents (with their
    alerts, escalations and closed group) older than the retention (30 days by default);
    newer ones and open incidents stay."""
    service = NotifyService(store, _plan(slack_server, group_by=["workflow"], group_wait="0s"),
                            clock=clock, sleep=clock.sleep)  # fmt: skip
    (old,) = service.notify([analysis("old-run")]).incidents
    service.resolve(workflow="old-run")  # everything about it happens at T0
    clock.advance(29 * 86400)
    (recent,) = service.notify([analysis("recent-run")]).incidents
    clock.advance(86400)  # T0 is exactly 30 days ago: kept
    assert service.prune(now=clock()) == 0
    clock.advance(1)
    report = service.tick()
    assert report.pruned > 0
    assert rows(store, "SELECT incident FROM notify_incidents") == [(recent,)]
    assert rows(store, "SELECT DISTINCT incident FROM notify_outbox") == [(recent,)]
    assert rows(store, "SELECT DISTINCT incident FROM notify_alerts") == [(recent,)]
    assert rows(store, "SELECT incident FROM notify_groups") == [(recent,)]
    assert old not in {r[0] for r in rows(store, "SELECT incident FROM notify_audit")}
