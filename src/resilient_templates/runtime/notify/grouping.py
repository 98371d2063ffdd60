"""Aggregation groups, dedup and incidents, in the state store (Alertmanager's dispatcher).

An *alert* is one routed failure: a ``FailureAnalysis`` that a route sent to a receiver. Its
*fingerprint* is a hash of its labels (``FailureAnalysis.labels()``), so the same workflow
failing the same way twice is the same alert. Alerts with the same route, receiver and
``group_by`` label values form a *group* (key: ``notification.group_key(...)``). While a
group has unresolved alerts it has one open *incident*, whose short id (10 chars of
``[a-z2-7]``) is printed in every message and is what ``resilient-runtime ack`` takes; it is
also the PagerDuty ``dedup_key``.

Timers, exactly as Alertmanager's ``group_wait`` / ``group_interval`` / ``repeat_interval``:

* the first alert of a group opens an incident and waits ``group_wait`` before the first
  notification; alerts arriving meanwhile join it (one message for all of them);
* an alert that is new to an already notified group goes out at the group's next flush,
  ``group_interval`` after the previous notification (a group *update*, ``sequence`` 1, 2, …);
* an alert already notified is not sent again before ``repeat_interval`` has passed since it
  was notified; after that, a new occurrence is notified at the next flush.

**Inhibition** (``inhibit_rules``, Alertmanager's semantics) is checked when an alert arrives
(an alert muted then is not recorded; ``notify`` reports it as suppressed) and again when its
group is flushed, since a source may have started firing during ``group_wait``. Only *active*
alerts are sources: unresolved, in an open group, and seen within their route's
``repeat_interval``. An alert muted at flush time is left out of the message and stays
unnotified; the group is flushed again every ``group_interval`` to re-check it, so it is
notified once its source resolves or goes stale, unless it has gone stale itself by then (an
alert never notified and not seen for ``repeat_interval`` is dropped).

Unlike Alertmanager (whose alerts Prometheus re-sends while they fire), a workflow failure is
one event: an incident does not re-send itself every ``repeat_interval``. Periodic reminders
of an unacknowledged incident are the escalation rules' job (``escalation.py``).

**Exact under concurrency.** Every change to a group runs in one store transaction holding
``tx.lock("notify_group:<key>")`` (a PostgreSQL advisory lock; SQLite serialises write
transactions), and a flush marks the alerts notified and enqueues the outbox rows in the same
transaction. So however many processes report the same failures at once, each alert is
notified once per ``repeat_interval`` and each flush produces exactly one notification.

Tables (component ``notify_grouping``): ``notify_groups``, ``notify_alerts``, ``notify_incidents``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from ...policy.taxonomy import Severity
from ..model import FailureAnalysis
from ..store import Store, Tx
from .notification import group_key as group_key_of
from .plan import InhibitPlan
from .routing import RouteMatch, inhibited
from .text import dumps

__all__ = [
    "AddResult",
    "Alert",
    "active_label_sets",
    "FlushResult",
    "add_alert",
    "due_groups",
    "fingerprint",
    "firing_label_sets",
    "flush",
    "incident_id",
    "migrate",
    "prune",
    "rfc3339",
    "title_for",
]

_DDL = [
    "CREATE TABLE IF NOT EXISTS notify_groups ("
    " group_key TEXT PRIMARY KEY, receiver TEXT NOT NULL, route_key TEXT NOT NULL,"
    " group_labels TEXT NOT NULL,"
    " group_wait DOUBLE PRECISION NOT NULL, group_interval DOUBLE PRECISION NOT NULL,"
    " repeat_interval DOUBLE PRECISION NOT NULL,"
    " episode INTEGER NOT NULL, incident TEXT,"
    " state TEXT NOT NULL,"  # waiting | notified | closed
    " next_flush_at DOUBLE PRECISION, last_notified_at DOUBLE PRECISION,"
    " sequence INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS notify_groups_due ON notify_groups (next_flush_at)",
    "CREATE TABLE IF NOT EXISTS notify_alerts ("
    " group_key TEXT NOT NULL, fingerprint TEXT NOT NULL, incident TEXT NOT NULL,"
    " workflow TEXT NOT NULL, namespace TEXT NOT NULL, severity TEXT NOT NULL,"
    " labels TEXT NOT NULL, analysis TEXT NOT NULL,"
    " first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL,"
    " occurrences INTEGER NOT NULL DEFAULT 1,"
    " notified_at DOUBLE PRECISION, resolved_at DOUBLE PRECISION,"
    " PRIMARY KEY (group_key, fingerprint))",
    "CREATE INDEX IF NOT EXISTS notify_alerts_workflow ON notify_alerts (workflow)",
    "CREATE TABLE IF NOT EXISTS notify_incidents ("
    " incident TEXT PRIMARY KEY, group_key TEXT NOT NULL, receiver TEXT NOT NULL,"
    " group_labels TEXT NOT NULL, labels TEXT NOT NULL,"  # labels common to every alert
    " state TEXT NOT NULL,"  # open | acknowledged | resolved
    " severity TEXT NOT NULL, title TEXT NOT NULL DEFAULT '',"
    " opened_at DOUBLE PRECISION NOT NULL, first_notified_at DOUBLE PRECISION,"
    " acked_at DOUBLE PRECISION, acked_by TEXT,"
    " resolved_at DOUBLE PRECISION, resolved_by TEXT)",
    "CREATE INDEX IF NOT EXISTS notify_incidents_resolved ON notify_incidents (state, resolved_at)",
    "CREATE INDEX IF NOT EXISTS notify_alerts_incident ON notify_alerts (incident)",
]


def migrate(store: Store) -> None:
    """Create the grouping tables (idempotent)."""
    store.migrate("notify_grouping", _DDL)


def rfc3339(ts: float) -> str:
    """``ts`` (epoch seconds) as RFC 3339 UTC with a ``Z``."""
    when = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def fingerprint(labels: Mapping[str, str]) -> str:
    """The alert's identity: a hash of its labels (Alertmanager's fingerprint)."""
    canonical = dumps(sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def incident_id(group_key: str, episode: int) -> str:
    """A short, printable incident id: 10 chars of lower-case base32 (50 bits)."""
    digest = hashlib.sha256(f"{group_key}:{episode}".encode()).digest()
    return base64.b32encode(digest).decode("ascii")[:10].lower()


@dataclass(frozen=True, slots=True)
class Alert:
    """One failure routed to one receiver by one route."""

    analysis: FailureAnalysis
    route: RouteMatch

    @property
    def labels(self) -> dict[str, str]:
        return self.analysis.labels()

    @property
    def group_labels(self) -> dict[str, str]:
        return self.route.group_labels(self.labels)

    @property
    def group_key(self) -> str:
        return group_key_of(self.route.receiver, self.group_labels, self.route.route_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


@dataclass(frozen=True, slots=True)
class AddResult:
    """What adding an alert did: ``opened`` an incident, ``joined`` a pending flush,
    ``updated`` a notified group (flush scheduled), or was a ``duplicate`` (suppressed)."""

    outcome: str
    group_key: str
    incident: str
    flush_at: float | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FlushResult:
    """A flushed group: everything needed to build its firing notification."""

    group_key: str
    incident: str
    receiver: str
    group_labels: dict[str, str]
    labels: dict[str, str]  # the labels every failure of the incident shares
    analyses: tuple[FailureAnalysis, ...]  # at most ``max_alerts``, oldest first
    count: int  # every unresolved alert of the group
    severity: Severity
    title: str
    sequence: int  # 0 for the first notification of the incident
    severity_rose: bool = False  # more severe than at the incident's previous notification


def add_alert(tx: Tx, alert: Alert, *, now: float) -> AddResult:
    """Record ``alert`` in its group (inside the caller's transaction); see the module doc."""
    key = alert.group_key
    route = alert.route
    tx.lock(f"notify_group:{key}")
    group = tx.execute(
        "SELECT episode, incident, state, next_flush_at, last_notified_at FROM notify_groups "
        "WHERE group_key = ?",
        (key,),
    ).fetchone()
    timers = (
        route.group_wait.seconds,
        route.group_interval.seconds,
        route.repeat_interval.seconds,
    )
    if group is None or group[2] == "closed":
        episode = 1 if group is None else int(group[0]) + 1
        incident = incident_id(key, episode)
        flush_at = now + timers[0]
        tx.execute(
            "INSERT INTO notify_groups (group_key, receiver, route_key, group_labels, group_wait, "
            "group_interval, repeat_interval, episode, incident, state, next_flush_at, "
            "last_notified_at, sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, NULL, 0) "
            "ON CONFLICT (group_key) DO UPDATE SET receiver = excluded.receiver, "
            "group_wait = excluded.group_wait, group_interval = excluded.group_interval, "
            "repeat_interval = excluded.repeat_interval, episode = excluded.episode, "
            "incident = excluded.incident, state = 'waiting', "
            "next_flush_at = excluded.next_flush_at, last_notified_at = NULL, sequence = 0",
            (key, route.receiver, route.route_key, dumps(alert.group_labels), *timers,
             episode, incident, flush_at),
        )  # fmt: skip
        tx.execute("DELETE FROM notify_alerts WHERE group_key = ?", (key,))
        tx.execute(
            "INSERT INTO notify_incidents (incident, group_key, receiver, group_labels, labels, "
            "state, severity, opened_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?) "
            "ON CONFLICT (incident) DO NOTHING",
            (incident, key, route.receiver, dumps(alert.group_labels), dumps(alert.labels),
             alert.analysis.severity.value, now),
        )  # fmt: skip
        _insert_alert(tx, key, incident, alert, now)
        return AddResult("opened", key, incident, flush_at)

    _, incident, state, next_flush_at, last_notified_at = group
    tx.execute(
        "UPDATE notify_groups SET group_wait = ?, group_interval = ?, repeat_interval = ? "
        "WHERE group_key = ?",
        (*timers, key),
    )
    existing = tx.execute(
        "SELECT notified_at, resolved_at FROM notify_alerts WHERE group_key = ? AND fingerprint = ?",
        (key, alert.fingerprint),
    ).fetchone()
    _narrow_common_labels(tx, incident, alert.labels)
    if existing is None:
        _insert_alert(tx, key, incident, alert, now)
    else:
        notified_at, resolved_at = existing
        tx.execute(
            "UPDATE notify_alerts SET last_seen = ?, occurrences = occurrences + 1, analysis = ? "
            "WHERE group_key = ? AND fingerprint = ?",
            (now, alert.analysis.to_json(), key, alert.fingerprint),
        )
        if resolved_at is None and notified_at is None:
            return AddResult("joined", key, incident, next_flush_at, "waits for the group's flush")
        if resolved_at is None and now - notified_at < timers[2]:
            return AddResult(
                "duplicate", key, incident, None,
                f"already notified {now - notified_at:.0f}s ago (repeat_interval {route.repeat_interval})",
            )  # fmt: skip
        tx.execute(  # resolved earlier or repeat_interval elapsed: notify it again
            "UPDATE notify_alerts SET notified_at = NULL, resolved_at = NULL "
            "WHERE group_key = ? AND fingerprint = ?",
            (key, alert.fingerprint),
        )
    if state == "waiting":
        if next_flush_at is None:  # its earlier alerts were muted until they went stale
            next_flush_at = now + timers[0]
            tx.execute(
                "UPDATE notify_groups SET next_flush_at = ? WHERE group_key = ?", (next_flush_at, key)
            )
        return AddResult("joined", key, incident, next_flush_at, "waits for group_wait")
    flush_at = max(now, (last_notified_at or now) + timers[1])
    if next_flush_at is not None:
        flush_at = min(flush_at, next_flush_at)
    tx.execute("UPDATE notify_groups SET next_flush_at = ? WHERE group_key = ?", (flush_at, key))
    return AddResult("updated", key, incident, flush_at, "new failure in a notified group")


def _insert_alert(tx: Tx, key: str, incident: str, alert: Alert, now: float) -> None:
    workflow = alert.analysis.workflow
    tx.execute(
        "INSERT INTO notify_alerts (group_key, fingerprint, incident, workflow, namespace, severity, "
        "labels, analysis, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key, alert.fingerprint, incident, workflow.name, workflow.namespace,
         alert.analysis.severity.value, dumps(alert.labels), alert.analysis.to_json(), now, now),
    )  # fmt: skip


def _narrow_common_labels(tx: Tx, incident: str, labels: Mapping[str, str]) -> None:
    row = tx.execute("SELECT labels FROM notify_incidents WHERE incident = ?", (incident,)).fetchone()
    if row is None:
        return
    common = json.loads(row[0])
    narrowed = {k: v for k, v in common.items() if labels.get(k) == v}
    if narrowed != common:
        tx.execute(
            "UPDATE notify_incidents SET labels = ? WHERE incident = ?", (dumps(narrowed), incident)
        )


def due_groups(store: Store, *, now: float) -> list[str]:
    """Keys of groups whose flush is due, oldest first."""
    with store.transaction(write=False) as tx:
        rows = tx.execute(
            "SELECT group_key FROM notify_groups WHERE next_flush_at IS NOT NULL "
            "AND next_flush_at <= ? ORDER BY next_flush_at",
            (now,),
        ).fetchall()
    return [r[0] for r in rows]


def flush(
    tx: Tx, key: str, *, now: float, max_alerts: int = 20, force: bool = False,
    inhibit_rules: tuple[InhibitPlan, ...] = (),
) -> FlushResult | None:  # fmt: skip
    """Flush group ``key`` if due, or if it has a flush scheduled at all with ``force``
    (inside the caller's transaction): mark its new alerts notified and return the firing
    notification's content, or None when nothing is due.

    Inhibition is checked again here, at notification time: an alert muted by an active
    source (``active_label_sets``) is left out of the message and stays unnotified; the group
    is flushed again ``group_interval`` later to re-check it, for as long as it is active.
    """
    tx.lock(f"notify_group:{key}")
    group = tx.execute(
        "SELECT receiver, group_labels, incident, state, next_flush_at, sequence, "
        "group_interval, repeat_interval FROM notify_groups WHERE group_key = ?",
        (key,),
    ).fetchone()
    if group is None:
        return None
    receiver, labels_json, incident, state, next_flush_at, sequence, interval, repeat = group
    if state == "closed" or next_flush_at is None or (next_flush_at > now and not force):
        return None
    rows = tx.execute(
        "SELECT analysis, severity, notified_at, workflow, labels, last_seen, fingerprint "
        "FROM notify_alerts WHERE group_key = ? AND resolved_at IS NULL "
        "ORDER BY first_seen, fingerprint",
        (key,),
    ).fetchall()
    # an alert never notified and not seen for repeat_interval is no longer firing: drop it
    rows = [r for r in rows if r[2] is not None or r[5] >= now - repeat]
    muted: set[str] = set()
    if inhibit_rules and any(r[2] is None for r in rows):
        sources = active_label_sets(tx, now=now)
        muted = {r[6] for r in rows if inhibited(json.loads(r[4]), sources, inhibit_rules)}
    shown = [r for r in rows if r[6] not in muted]
    new = [r[6] for r in shown if r[2] is None]
    recheck = now + interval if any(r[2] is None for r in rows if r[6] in muted) else None
    if not new:
        tx.execute(
            "UPDATE notify_groups SET next_flush_at = ? WHERE group_key = ?", (recheck, key)
        )
        return None
    analyses = tuple(FailureAnalysis.from_json(r[0]) for r in shown[:max_alerts])
    severity = min((Severity(r[1]) for r in shown), key=lambda s: s.rank)
    title = title_for(analyses, count=len(shown), workflows=len({r[3] for r in shown}))
    tx.executemany(
        "UPDATE notify_alerts SET notified_at = ? WHERE group_key = ? AND fingerprint = ?",
        [(now, key, fp) for fp in new],
    )
    tx.execute(
        "UPDATE notify_groups SET state = 'notified', last_notified_at = ?, next_flush_at = ?, "
        "sequence = sequence + 1 WHERE group_key = ?",
        (now, recheck, key),
    )
    before = tx.execute(
        "SELECT severity, labels FROM notify_incidents WHERE incident = ?", (incident,)
    ).fetchone()
    tx.execute(
        "UPDATE notify_incidents SET first_notified_at = COALESCE(first_notified_at, ?), "
        "severity = ?, title = ? WHERE incident = ?",
        (now, severity.value, title, incident),
    )
    rose = before is not None and severity.rank < Severity(before[0]).rank
    return FlushResult(
        group_key=key, incident=incident, receiver=receiver, group_labels=json.loads(labels_json),
        labels=json.loads(before[1]) if before else {},
        analyses=analyses, count=len(shown), severity=severity, title=title, sequence=int(sequence),
        severity_rose=rose,
    )  # fmt: skip


def title_for(analyses: tuple[FailureAnalysis, ...], *, count: int, workflows: int) -> str:
    """"23 workflows failing: github-rate-limit", or the single failure's summary."""
    if count <= 1 and analyses:
        return analyses[0].summary
    signatures = {a.root_cause.signature or a.root_cause.category.value for a in analyses}
    cause = signatures.pop() if len(signatures) == 1 else "several causes"
    if workflows > 1:
        return f"{workflows} workflows failing: {cause}"
    name = analyses[0].workflow.name if analyses else "workflow"
    return f"{count} failures in {name}: {cause}"


_RESOLVED_BEFORE = "SELECT incident FROM notify_incidents WHERE state = 'resolved' AND resolved_at < ?"


def prune(tx: Tx, *, before: float) -> int:
    """Delete incidents resolved before ``before``, their alerts, and their group when it is
    still closed on that incident and no outbox row names it any more (so the group's next
    incident cannot collide with a message still in the outbox); returns how many rows."""
    tx.execute(f"DELETE FROM notify_alerts WHERE incident IN ({_RESOLVED_BEFORE})", (before,))
    count = tx.rowcount
    tx.execute(
        f"DELETE FROM notify_groups WHERE state = 'closed' AND incident IN ({_RESOLVED_BEFORE}) "
        "AND NOT EXISTS (SELECT 1 FROM notify_outbox o WHERE o.incident = notify_groups.incident)",
        (before,),
    )
    count += tx.rowcount
    tx.execute("DELETE FROM notify_incidents WHERE state = 'resolved' AND resolved_at < ?", (before,))
    return count + tx.rowcount


def active_label_sets(tx: Tx, *, now: float) -> list[dict[str, str]]:
    """The labels of every *active* alert, the inhibition sources: unresolved, in a group that
    is not closed, and seen within its route's ``repeat_interval`` (a workflow failure is one
    event; not seen again for that long, it no longer counts as firing)."""
    rows = tx.execute(
        "SELECT a.labels FROM notify_alerts a JOIN notify_groups g ON g.group_key = a.group_key "
        "WHERE a.resolved_at IS NULL AND g.state <> 'closed' AND a.last_seen >= ? - g.repeat_interval",
        (now,),
    ).fetchall()
    return [json.loads(r[0]) for r in rows]


def firing_label_sets(store: Store, *, now: float) -> list[dict[str, str]]:
    """``active_label_sets`` in a transaction of its own."""
    with store.transaction(write=False) as tx:
        return active_label_sets(tx, now=now)
