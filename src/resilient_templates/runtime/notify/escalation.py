"""Escalation, acknowledgement and resolution of incidents (the spec's "Escalation workflow").

Timeline of one incident, for every escalation rule that applies to it (``severity`` equal to
the incident's highest severity, ``matchers`` on the labels its failures share; rules are
scheduled at the first notification, and again when a group update raises the severity):

1. the initial notification goes to the route's receiver (``grouping.flush``);
2. ``delay`` after it, if nobody acknowledged, an ``escalation`` (``escalation_level`` = the
   rule's rank among the rules that apply, ordered by delay, from 1) goes to the rule's
   receivers and channels;
3. then a ``reminder`` every ``repeat_interval``, at most ``max_repeats`` times.

``tick`` sends what is due (``fire_due``); a missed tick catches up with one message, not a
burst (the next reminder is then scheduled ``repeat_interval`` after the late one).

``acknowledge`` (``resilient-runtime ack INCIDENT [--by NAME]``) records who and when, stops
every pending escalation, writes an audit row and sends PagerDuty ``acknowledge`` to each
PagerDuty channel that received a trigger for the incident. ``resolve_workflow`` (a later
``notify --status Succeeded``, or ``resolve --workflow``) resolves that workflow's failures;
an incident whose failures are all resolved is closed: escalations stop, PagerDuty gets
``resolve`` and every other channel that heard about the incident gets a "recovered" message.
An incident that was never notified (still in ``group_wait``) closes silently.

Each change runs in one transaction holding ``tx.lock("notify_incident:<id>")``, so a
concurrent ack, escalation and resolve never interleave. Table (component
``notify_escalation``): ``notify_escalations``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ...policy.taxonomy import Severity
from ..model import FailureAnalysis
from ..store import Store, Tx
from . import outbox
from .grouping import rfc3339
from .notification import Notification
from .plan import Plan

__all__ = [
    "AckResult",
    "ResolveResult",
    "acknowledge",
    "due_escalations",
    "fire",
    "migrate",
    "prune",
    "resolve_incident",
    "resolve_workflow",
    "schedule",
]

_DDL = [
    "CREATE TABLE IF NOT EXISTS notify_escalations ("
    " incident TEXT NOT NULL, rule INTEGER NOT NULL, level INTEGER NOT NULL,"
    " channels TEXT NOT NULL, receiver TEXT NOT NULL,"
    " repeat_interval DOUBLE PRECISION NOT NULL, max_repeats INTEGER NOT NULL,"
    " sent INTEGER NOT NULL DEFAULT 0,"  # escalation messages sent so far (1 + reminders)
    " next_at DOUBLE PRECISION, state TEXT NOT NULL,"  # scheduled | done | cancelled
    " PRIMARY KEY (incident, rule))",
    "CREATE INDEX IF NOT EXISTS notify_escalations_due ON notify_escalations (state, next_at)",
]

#: Kinds that open or keep up an incident at a provider (PagerDuty ``trigger``).
_TRIGGER_KINDS = ("firing", "escalation", "reminder")


def migrate(store: Store) -> None:
    """Create the escalation table (idempotent)."""
    store.migrate("notify_escalation", _DDL)


def schedule(
    tx: Tx, plan: Plan, *, incident: str, receiver: str, labels: Mapping[str, str],
    severity: Severity, now: float,
) -> int:  # fmt: skip
    """Schedule every escalation rule that applies to a just-notified incident and is not
    scheduled yet; returns how many were added.

    Called at the incident's first notification and again when an update raises its
    severity (an error group that turns critical gets the critical rules, their ``delay``
    counted from that update). Levels continue after the ones already scheduled.
    """
    facts = {**labels, "severity": severity.value}
    existing = tx.execute(
        "SELECT rule, level FROM notify_escalations WHERE incident = ?", (incident,)
    ).fetchall()
    scheduled = {int(r[0]) for r in existing}
    first_level = max((int(r[1]) for r in existing), default=0) + 1
    rules = [
        (i, r) for i, r in enumerate(plan.escalation_rules)
        if i not in scheduled and r.applies_to(facts)
    ]  # fmt: skip
    rules.sort(key=lambda pair: (pair[1].delay.seconds, pair[0]))
    for level, (index, rule) in enumerate(rules, start=first_level):
        channels = [c for c in rule.channel_names(plan) if c in plan.channels]
        target = rule.receivers[0] if len(rule.receivers) == 1 and not rule.channels else receiver
        tx.execute(
            "INSERT INTO notify_escalations (incident, rule, level, channels, receiver, "
            "repeat_interval, max_repeats, sent, next_at, state) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 'scheduled') ON CONFLICT (incident, rule) DO NOTHING",
            (incident, index, level, json.dumps(channels), target, rule.repeat_interval.seconds,
             rule.max_repeats, now + rule.delay.seconds),
        )  # fmt: skip
    return len(rules)


def due_escalations(store: Store, *, now: float) -> list[tuple[str, int]]:
    """(incident, rule) pairs whose next escalation message is due."""
    with store.transaction(write=False) as tx:
        rows = tx.execute(
            "SELECT incident, rule FROM notify_escalations WHERE state = 'scheduled' "
            "AND next_at <= ? ORDER BY next_at",
            (now,),
        ).fetchall()
    return [(r[0], int(r[1])) for r in rows]


def fire(store: Store, plan: Plan, incident: str, rule: int, *, now: float) -> list[int]:
    """Send one due escalation step (enqueue its messages); returns the outbox row ids."""
    with store.transaction() as tx:
        tx.lock(f"notify_incident:{incident}")
        row = tx.execute(
            "SELECT e.level, e.channels, e.receiver, e.repeat_interval, e.max_repeats, e.sent, "
            "e.next_at, e.state, i.state, i.group_key, i.group_labels, i.severity, i.title "
            "FROM notify_escalations e JOIN notify_incidents i ON i.incident = e.incident "
            "WHERE e.incident = ? AND e.rule = ?",
            (incident, rule),
        ).fetchone()
        if row is None:
            return []
        level, channels, receiver, interval, max_repeats, sent, next_at, state, istate = row[:9]
        group_key, group_labels, severity, title = row[9:]
        if state != "scheduled" or next_at is None or next_at > now:
            return []
        if istate != "open":
            tx.execute(
                "UPDATE notify_escalations SET state = 'cancelled', next_at = NULL "
                "WHERE incident = ? AND rule = ?",
                (incident, rule),
            )
            return []
        analyses, count = _open_analyses(tx, incident, plan.defaults.max_alerts)
        kind = "escalation" if sent == 0 else "reminder"
        notification = Notification(
            kind=kind, incident_key=incident, receiver=receiver,
            group_labels=json.loads(group_labels), analyses=analyses, severity=Severity(severity),
            title=title, created_at=rfc3339(now), escalation_level=int(level), repeat=int(sent),
            count=count, group_key=group_key,
        )  # fmt: skip
        ids = _enqueue_all(tx, plan, notification, json.loads(channels), now)
        sent = int(sent) + 1
        more = sent <= int(max_repeats) and interval > 0
        upcoming = None
        if more:
            upcoming = next_at + interval
            if upcoming <= now:  # ticks were missed: one late message, then the normal pace
                upcoming = now + interval
        tx.execute(
            "UPDATE notify_escalations SET sent = ?, next_at = ?, state = ? "
            "WHERE incident = ? AND rule = ?",
            (sent, upcoming, "scheduled" if more else "done", incident, rule),
        )
        outbox.audit(tx, at=now, event=kind, incident=incident, error=f"level {level}, message {sent}")
    return ids


def _open_analyses(tx: Tx, incident: str, limit: int) -> tuple[tuple[FailureAnalysis, ...], int]:
    rows = tx.execute(
        "SELECT analysis FROM notify_alerts WHERE incident = ? AND resolved_at IS NULL "
        "ORDER BY first_seen, fingerprint",
        (incident,),
    ).fetchall()
    return tuple(FailureAnalysis.from_json(r[0]) for r in rows[:limit]), len(rows)


def _enqueue_all(
    tx: Tx, plan: Plan, notification: Notification, channels: list[str], now: float
) -> list[int]:
    encoded = outbox.encode_notification(notification)
    ids = []
    for name in channels:
        channel = plan.channels.get(name)
        if channel is None or not channel.enabled:
            continue
        row = outbox.enqueue(
            tx, idempotency_key=notification.idempotency_key(name), channel=name,
            channel_type=channel.type, receiver=notification.receiver,
            incident=notification.incident_key, kind=notification.kind, notification=encoded, now=now,
        )  # fmt: skip
        if row is not None:
            ids.append(row)
    return ids


def prune(tx: Tx, *, before: float) -> int:
    """Delete the escalations of incidents resolved before ``before``; returns how many."""
    tx.execute(
        "DELETE FROM notify_escalations WHERE incident IN (SELECT incident FROM notify_incidents "
        "WHERE state = 'resolved' AND resolved_at < ?)",
        (before,),
    )
    return tx.rowcount


# --------------------------------------------------------------------------- ack


@dataclass(frozen=True, slots=True)
class AckResult:
    incident: str
    state: str  # acknowledged | already-acknowledged | resolved
    acked_by: str | None
    acked_at: float | None
    outbox_ids: tuple[int, ...] = ()


def acknowledge(store: Store, plan: Plan, incident: str, *, by: str, now: float) -> AckResult:
    """Acknowledge ``incident``: stop its escalations, tell PagerDuty. ``LookupError`` if unknown."""
    incident = incident.strip().lower()
    with store.transaction() as tx:
        tx.lock(f"notify_incident:{incident}")
        row = tx.execute(
            "SELECT state, acked_by, acked_at, receiver, group_labels, severity, title, group_key "
            "FROM notify_incidents WHERE incident = ?",
            (incident,),
        ).fetchone()
        if row is None:
            raise LookupError(f"no incident {incident!r} in the state store")
        state, acked_by, acked_at, receiver, group_labels, severity, title, group_key = row
        if state == "acknowledged":
            return AckResult(incident, "already-acknowledged", acked_by, acked_at)
        if state == "resolved":
            return AckResult(incident, "resolved", acked_by, acked_at)
        tx.execute(
            "UPDATE notify_incidents SET state = 'acknowledged', acked_by = ?, acked_at = ? "
            "WHERE incident = ?",
            (by, now, incident),
        )
        _cancel_escalations(tx, incident)
        outbox.audit(tx, at=now, event="ack", incident=incident, actor=by)
        pagers = _channels_told(tx, incident, channel_type="pagerduty")
        notification = Notification(
            kind="acknowledged", incident_key=incident, receiver=receiver,
            group_labels=json.loads(group_labels), analyses=(), severity=Severity(severity),
            title=f"{title} (acknowledged by {by})", created_at=rfc3339(now), count=0,
            group_key=group_key,
        )  # fmt: skip
        ids = _enqueue_all(tx, plan, notification, pagers, now)
    return AckResult(incident, "acknowledged", by, now, tuple(ids))


def _cancel_escalations(tx: Tx, incident: str) -> None:
    tx.execute(
        "UPDATE notify_escalations SET state = 'cancelled', next_at = NULL "
        "WHERE incident = ? AND state = 'scheduled'",
        (incident,),
    )


def _channels_told(tx: Tx, incident: str, *, channel_type: str | None = None) -> list[str]:
    """Channels that were sent (or are sending) a trigger-kind message for ``incident``."""
    sql = (
        "SELECT channel, min(id) FROM notify_outbox WHERE incident = ? AND state <> 'failed' "
        f"AND kind IN ({', '.join('?' * len(_TRIGGER_KINDS))})"
    )
    params: list[object] = [incident, *_TRIGGER_KINDS]
    if channel_type is not None:
        sql += " AND channel_type = ?"
        params.append(channel_type)
    rows = tx.execute(sql + " GROUP BY channel ORDER BY min(id)", params).fetchall()
    return [r[0] for r in rows]


# --------------------------------------------------------------------------- resolve


@dataclass(frozen=True, slots=True)
class ResolveResult:
    incident: str
    closed: bool  # every failure of the incident resolved
    notified: bool  # a "resolved" message was enqueued
    outbox_ids: tuple[int, ...] = ()


def resolve_workflow(
    store: Store, plan: Plan, workflow: str, *, namespace: str | None = None, now: float,
    by: str = "workflow succeeded",
) -> list[ResolveResult]:  # fmt: skip
    """Resolve every open failure of ``workflow``; close incidents left with none."""
    sql = "SELECT DISTINCT group_key FROM notify_alerts WHERE workflow = ? AND resolved_at IS NULL"
    params: list[object] = [workflow]
    if namespace:
        sql += " AND namespace = ?"
        params.append(namespace)
    with store.transaction(write=False) as tx:
        keys = [r[0] for r in tx.execute(sql, params).fetchall()]
    results = []
    for key in keys:
        result = _resolve_group(store, plan, key, now=now, by=by, workflow=workflow, namespace=namespace)
        if result is not None:
            results.append(result)
    return results


def resolve_incident(store: Store, plan: Plan, incident: str, *, now: float, by: str) -> ResolveResult:
    """Resolve every failure of ``incident`` (an operator's manual resolve)."""
    incident = incident.strip().lower()
    with store.transaction(write=False) as tx:
        row = tx.execute(
            "SELECT group_key FROM notify_incidents WHERE incident = ?", (incident,)
        ).fetchone()
    if row is None:
        raise LookupError(f"no incident {incident!r} in the state store")
    result = _resolve_group(store, plan, row[0], now=now, by=by, incident=incident)
    return result or ResolveResult(incident, closed=True, notified=False)


def _resolve_group(
    store: Store, plan: Plan, key: str, *, now: float, by: str, workflow: str | None = None,
    namespace: str | None = None, incident: str | None = None,
) -> ResolveResult | None:  # fmt: skip
    with store.transaction() as tx:
        tx.lock(f"notify_group:{key}")
        group = tx.execute(
            "SELECT incident, state, receiver, group_labels FROM notify_groups WHERE group_key = ?",
            (key,),
        ).fetchone()
        if group is None or group[1] == "closed" or (incident and group[0] != incident):
            return None
        current, _, receiver, group_labels = group
        tx.lock(f"notify_incident:{current}")
        where, params = "group_key = ? AND resolved_at IS NULL", [key]
        if workflow is not None:
            where += " AND workflow = ?"
            params.append(workflow)
            if namespace:
                where += " AND namespace = ?"
                params.append(namespace)
        tx.execute(f"UPDATE notify_alerts SET resolved_at = ? WHERE {where}", (now, *params))
        left = tx.execute(
            "SELECT count(*) FROM notify_alerts WHERE group_key = ? AND resolved_at IS NULL", (key,)
        ).fetchone()[0]
        if left:
            return ResolveResult(current, closed=False, notified=False)
        info = tx.execute(
            "SELECT first_notified_at, severity, title FROM notify_incidents WHERE incident = ?",
            (current,),
        ).fetchone()
        tx.execute(
            "UPDATE notify_groups SET state = 'closed', next_flush_at = NULL WHERE group_key = ?",
            (key,),
        )
        tx.execute(
            "UPDATE notify_incidents SET state = 'resolved', resolved_at = ?, resolved_by = ? "
            "WHERE incident = ?",
            (now, by, current),
        )
        _cancel_escalations(tx, current)
        outbox.audit(tx, at=now, event="resolve", incident=current, actor=by)
        if info is None or info[0] is None:  # never notified: nobody to tell
            return ResolveResult(current, closed=True, notified=False)
        every = tx.execute(
            "SELECT analysis FROM notify_alerts WHERE incident = ? ORDER BY first_seen, fingerprint",
            (current,),
        ).fetchall()
        analyses = tuple(FailureAnalysis.from_json(r[0]) for r in every[: plan.defaults.max_alerts])
        notification = Notification(
            kind="resolved", incident_key=current, receiver=receiver,
            group_labels=json.loads(group_labels), analyses=analyses, severity=Severity(info[1]),
            title=info[2], created_at=rfc3339(now), count=len(every), group_key=key,
        )  # fmt: skip
        ids = _enqueue_all(tx, plan, notification, _channels_told(tx, current), now)
    return ResolveResult(current, closed=True, notified=bool(ids), outbox_ids=tuple(ids))
