"""Escalation timeline, acknowledgement and resolution, with an injected clock.

Messages go to real Slack and PagerDuty test servers; no test sleeps.
"""

from __future__ import annotations

import random

import pytest
from delivery_helpers import T0, analysis, channel, make_plan, rows
from servers import Fault

from resilient_templates.policy.taxonomy import Severity
from resilient_templates.runtime.notify.service import NotifyService

RULE = {"severity": "critical", "delay": "5m", "receivers": ["oncall"], "repeat_interval": "15m",
        "max_repeats": 2}  # fmt: skip


def _plan(slack_server, pagerduty_server, *, team=("chat",), rules=(RULE,), **route):
    return make_plan(
        [channel("chat", slack_server, rate=100), channel("pd", pagerduty_server, rate=100)],
        {"team": list(team), "oncall": ["pd"]},
        route=route,
        escalation_rules=list(rules),
    )


def _critical(workflow="release-7f3k2"):
    return analysis(workflow, severity=Severity.CRITICAL)


def _pd_messages(store):
    return rows(
        store,
        "SELECT kind, created_at - ? FROM notify_outbox WHERE channel = 'pd' ORDER BY id",
        (T0,),
    )


def _tick_at(service, clock, *offsets):
    for offset in offsets:
        clock.now = T0 + offset
        service.tick()


def test_escalation_timeline(store, clock, slack_server, pagerduty_server):
    """Unacknowledged: escalate at +5m, remind every 15m, stop after max_repeats (2)."""
    service = NotifyService(store, _plan(slack_server, pagerduty_server), clock=clock, sleep=clock.sleep)
    service.notify([_critical()])
    _tick_at(service, clock, 299, 300, 1199, 1200, 2100, 3000, 9000)
    assert _pd_messages(store) == [("escalation", 300.0), ("reminder", 1200.0), ("reminder", 2100.0)]
    events = pagerduty_server.events
    assert [e["event_action"] for e in events] == ["trigger"] * 3
    assert len({e["dedup_key"] for e in events}) == 1


def test_only_rules_for_the_incidents_severity_apply(store, clock, slack_server, pagerduty_server):
    """An error-severity incident does not match a rule for critical ones."""
    service = NotifyService(store, _plan(slack_server, pagerduty_server), clock=clock, sleep=clock.sleep)
    service.notify([analysis(severity=Severity.ERROR)])
    _tick_at(service, clock, 300, 3600)
    assert _pd_messages(store) == []


def test_missed_ticks_catch_up_with_one_message(store, clock, slack_server, pagerduty_server):
    """A tick an hour late sends one escalation, not the backlog, and keeps the pace after it."""
    service = NotifyService(store, _plan(slack_server, pagerduty_server), clock=clock, sleep=clock.sleep)
    service.notify([_critical()])
    _tick_at(service, clock, 5000, 5000 + 899, 5000 + 900)
    assert _pd_messages(store) == [("escalation", 5000.0), ("reminder", 5900.0)]


def test_ack_stops_escalation_and_records_who_and_when(store, clock, slack_server, pagerduty_server):
    """After `ack` by alice nothing escalates, and the incident and audit say who and when."""
    service = NotifyService(store, _plan(slack_server, pagerduty_server), clock=clock, sleep=clock.sleep)
    (incident,) = service.notify([_critical()]).incidents
    clock.now = T0 + 60
    result = service.acknowledge(incident, by="alice")
    _tick_at(service, clock, 300, 3600)
    assert result.state == "acknowledged"
    assert _pd_messages(store) == []
    assert rows(store, "SELECT state, acked_by, acked_at - ? FROM notify_incidents", (T0,)) == [
        ("acknowledged", "alice", 60.0)
    ]
    assert rows(store, "SELECT event, actor, incident FROM notify_audit WHERE event = 'ack'") == [
        ("ack", "alice", incident)
    ]


def test_ack_sends_pagerduty_acknowledge(store, clock, slack_server, pagerduty_server):
    """Acknowledging an incident PagerDuty was paged for sends `acknowledge` with its dedup_key."""
    plan = _plan(slack_server, pagerduty_server, team=("chat", "pd"), rules=())
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep)
    (incident,) = service.notify([_critical()]).incidents
    service.acknowledge(incident, by="alice")
    events = pagerduty_server.events
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"]
    assert pagerduty_server.alerts == {events[0]["dedup_key"]: "acknowledged"}
    assert len(slack_server.received()) == 1  # Slack is not told about the ack


def test_a_second_ack_reports_the_first(store, clock, slack_server, pagerduty_server):
    """Acknowledging twice keeps the first person and time."""
    service = NotifyService(store, _plan(slack_server, pagerduty_server), clock=clock, sleep=clock.sleep)
    (incident,) = service.notify([_critical()]).incidents
    service.acknowledge(incident, by="alice")
    clock.advance(10)
    again = service.acknowledge(incident.upper(), by="bob")
    assert (again.state, again.acked_by, again.acked_at) == ("already-acknowledged", "alice", T0)


def test_ack_of_an_unknown_incident_is_an_error(store, clock, slack_server, pagerduty_server):
    """An incident id that does not exist raises LookupError (the CLI exits 2)."""
    service = NotifyService(store, _plan(slack_server, pagerduty_server), clock=clock, sleep=clock.sleep)
    with pytest.raises(LookupError, match="no incident 'zzzzzzzzzz'"):
        service.acknowledge("zzzzzzzzzz", by="alice")


def test_resolve_sends_pagerduty_resolve_and_recovered_elsewhere(
    store, clock, slack_server, pagerduty_server
):
    """A workflow that later succeeds resolves its incident: PagerDuty `resolve`, Slack RESOLVED."""
    plan = _plan(slack_server, pagerduty_server, team=("chat", "pd"), rules=())
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep)
    service.notify([_critical()])
    clock.advance(120)
    results, _ = service.resolve(workflow="release-7f3k2")
    assert [r.closed for r in results] == [True]
    assert [e["event_action"] for e in pagerduty_server.events] == ["trigger", "resolve"]
    assert set(pagerduty_server.alerts.values()) == {"resolved"}
    texts = [r.json["text"] for r in slack_server.wait_for(2)]
    assert texts[1].startswith("[RESOLVED]")


def test_resolve_stops_escalation(store, clock, slack_server, pagerduty_server):
    """A resolved incident is not escalated later."""
    service = NotifyService(store, _plan(slack_server, pagerduty_server), clock=clock, sleep=clock.sleep)
    service.notify([_critical()])
    clock.now = T0 + 100
    service.resolve(workflow="release-7f3k2")
    _tick_at(service, clock, 300, 3600)
    assert _pd_messages(store) == []


def test_an_incident_resolved_before_its_first_message_closes_silently(
    store, clock, slack_server, pagerduty_server
):
    """Resolving during group_wait sends nothing, now or later."""
    plan = _plan(slack_server, pagerduty_server, group_wait="30s")
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep)
    service.notify([_critical()])
    clock.now = T0 + 10
    service.resolve(workflow="release-7f3k2")
    _tick_at(service, clock, 30, 600)
    assert slack_server.received() == [] and pagerduty_server.received() == []


def test_an_incident_resolves_when_its_last_workflow_recovers(
    store, clock, slack_server, pagerduty_server
):
    """A group of two failing workflows resolves only when both recovered."""
    plan = _plan(slack_server, pagerduty_server, rules=(), group_by=["signature"])
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep)
    service.notify([analysis("wf-a"), analysis("wf-b")])
    first, _ = service.resolve(workflow="wf-a")
    second, _ = service.resolve(workflow="wf-b")
    assert [r.closed for r in first] == [False] and [r.closed for r in second] == [True]
    assert len(slack_server.received()) == 2


@pytest.mark.parametrize("action", ["resolve", "acknowledge"])
def test_a_resolve_or_ack_never_overtakes_the_trigger_waiting_for_its_retry(
    store, clock, pagerduty_server, action
):
    """Per incident and channel, messages go out in the order they were enqueued: a resolve or
    ack enqueued while the trigger waits for a retry is sent after it, so PagerDuty's alert
    does not stay open."""
    plan = make_plan([channel("pd", pagerduty_server)], {"oncall": ["pd"]})
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep, rng=random.Random(1))
    pagerduty_server.script(Fault.error(500))
    (incident,) = service.notify([_critical()]).incidents  # the trigger gets a 500: retry later
    if action == "resolve":
        service.resolve(workflow="release-7f3k2")
    else:
        service.acknowledge(incident, by="alice")
    clock.advance(60)
    service.tick()
    assert [e["event_action"] for e in pagerduty_server.events] == ["trigger", action]
    assert list(pagerduty_server.alerts.values()) == [f"{action}d"]


def test_a_group_that_turns_critical_gets_the_critical_escalation(
    store, clock, slack_server, pagerduty_server
):
    """An incident first notified as an error that turns critical when a critical failure joins
    it is escalated by the critical rule, its delay counted from that update."""
    plan = _plan(slack_server, pagerduty_server, group_by=["signature"], group_wait="0s")
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep)
    service.notify([analysis("wf-a", severity=Severity.ERROR)])
    clock.now = T0 + 300  # one group_interval later: the update goes out at once
    service.notify([_critical("wf-b")])
    _tick_at(service, clock, 599, 600)
    assert _pd_messages(store) == [("escalation", 600.0)]


def test_pruning_keeps_an_open_incident_however_old(store, clock, slack_server, pagerduty_server):
    """An incident still open after the retention keeps its messages, so when its workflow
    finally recovers PagerDuty still gets the resolve."""
    plan = _plan(slack_server, pagerduty_server, team=("chat", "pd"), rules=())
    service = NotifyService(store, plan, clock=clock, sleep=clock.sleep)
    service.notify([_critical()])
    clock.advance(40 * 86400)
    service.tick()  # prunes: nothing of the open incident may go
    service.resolve(workflow="release-7f3k2")
    assert [e["event_action"] for e in pagerduty_server.events] == ["trigger", "resolve"]
