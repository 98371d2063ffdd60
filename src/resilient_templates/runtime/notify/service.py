"""The notification pipeline, as small steps (structlog-style processors).

``notify(analyses)``::

    analyses → labels → route (routing.match) → [inhibit → receiver has channels → group/dedup]
             → flush due groups → Notification → outbox (same transaction) → deliver

Each bracketed step is a callable ``(ctx, alert) -> alert`` that may raise ``Suppressed(reason)``;
the reason is logged and written to the audit table, and the other alerts go on. Flushing a
group, enqueueing its messages and scheduling its escalations happen in one transaction, so a
crash leaves either nothing or everything of a notification in the store.

Who sends delayed things: a failure container cannot wait five minutes. ``notify`` sends what
is due at once (a route with ``group_wait: 0s``) and, with ``wait``, may wait for its own
groups' ``group_wait`` (bounded); ``tick`` (an Argo CronWorkflow, every minute, or
``tick --loop --for 60s``) flushes due groups, fires due escalations, delivers due and
retried outbox rows, and prunes what is older than the retention (``retention``, 30 days:
finished messages, audit rows, resolved incidents). Every process shares the store, so it does not matter which one sends.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import FailureAnalysis
from ..store import Store
from . import escalation, grouping, outbox, ratelimit, routing
from .deliver import Deliverer, DeliveryReport
from .grouping import Alert
from .notification import Notification
from .plan import Plan

__all__ = [
    "NotifyReport",
    "NotifyService",
    "PIPELINE",
    "Suppressed",
    "TickReport",
    "migrate",
]

log = logging.getLogger("resilient_templates.runtime.notify")

#: ``tick`` prunes at most this often per process (a ``tick --loop`` pod prunes once).
PRUNE_EVERY = 3600.0


class Suppressed(Exception):
    """A step decided this alert is not notified now; ``reason`` says why (always logged)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def migrate(store: Store) -> None:
    """Create every notification table (idempotent, cheap when up to date)."""
    grouping.migrate(store)
    outbox.migrate(store)
    ratelimit.migrate(store)
    escalation.migrate(store)


@dataclass
class _Context:
    store: Store
    plan: Plan
    now: float
    firing: list[dict[str, str]]
    touched: dict[str, float | None] = field(default_factory=dict)  # group key -> flush_at


Step = Callable[[_Context, Alert], Alert]


def inhibit(ctx: _Context, alert: Alert) -> Alert:
    """Mute the alert while an active alert inhibits it (Alertmanager inhibit_rules); the
    group's flush checks again (``grouping.flush``)."""
    if ctx.plan.inhibit_rules and routing.inhibited(
        alert.labels, ctx.firing, ctx.plan.inhibit_rules
    ):
        raise Suppressed("inhibited by a firing alert")
    return alert


def has_channels(ctx: _Context, alert: Alert) -> Alert:
    """A receiver without an enabled channel has nobody to tell."""
    receiver = alert.route.receiver
    if receiver not in ctx.plan.receivers or not ctx.plan.channels_of(receiver):
        raise Suppressed(f"receiver {receiver!r} has no enabled channel")
    return alert


def group(ctx: _Context, alert: Alert) -> Alert:
    """Add the alert to its group; a duplicate within repeat_interval stops here."""
    with ctx.store.transaction() as tx:
        result = grouping.add_alert(tx, alert, now=ctx.now)
        if result.outcome == "duplicate":
            outbox.audit(
                tx, at=ctx.now, event="suppressed", incident=result.incident,
                error=f"{alert.analysis.failure_id}: duplicate, {result.reason}",
            )  # fmt: skip
    if result.outcome == "duplicate":
        raise Suppressed(f"duplicate of incident {result.incident}: {result.reason}")
    ctx.touched[result.group_key] = result.flush_at
    log.info(
        "notify: %s -> %s: %s incident %s", alert.analysis.failure_id, alert.route.receiver,
        result.outcome, result.incident,
    )  # fmt: skip
    return alert


#: The per-alert steps, in order.
PIPELINE: tuple[Step, ...] = (inhibit, has_channels, group)


@dataclass
class NotifyReport:
    """What ``notify`` did, for the CLI's JSON summary."""

    routed: list[dict[str, str]] = field(default_factory=list)
    suppressed: list[dict[str, str]] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    waiting: dict[str, float] = field(default_factory=dict)  # group key -> flush time, for tick
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    def to_dict(self) -> dict[str, Any]:
        return {
            "routed": self.routed,
            "suppressed": self.suppressed,
            "incidents": sorted(set(self.incidents)),
            "waiting": len(self.waiting),
            "enqueued": len(self.outbox_ids),
            **self.delivery.to_dict(),
        }


@dataclass
class TickReport:
    flushed: int = 0
    escalated: int = 0
    enqueued: int = 0
    pruned: int = 0  # rows older than the retention deleted
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    def to_dict(self) -> dict[str, Any]:
        return {
            "flushed": self.flushed,
            "escalated": self.escalated,
            "enqueued": self.enqueued,
            "pruned": self.pruned,
            **self.delivery.to_dict(),
        }


class NotifyService:
    """The pipeline over one store and one plan; time comes from ``clock`` (inject for tests)."""

    def __init__(
        self,
        store: Store,
        plan: Plan,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        channels: Mapping[str, object] | None = None,
        rng: random.Random | None = None,
        steps: Sequence[Step] = PIPELINE,
        migrate_store: bool = True,
    ) -> None:
        self.store = store
        self.plan = plan
        self.clock = clock
        self.sleep = sleep
        self.steps = tuple(steps)
        if migrate_store:
            migrate(store)
        self.deliverer = Deliverer(store, plan, channels=channels, clock=clock, sleep=sleep, rng=rng)
        self._pruned_at: float | None = None  # this service's last prune (see ``tick``)

    # ------------------------------------------------------------------ notify

    def notify(
        self, analyses: Iterable[FailureAnalysis], *, wait: float = 0.0, deliver_for: float = 0.0,
        private_store: bool = False,
    ) -> NotifyReport:  # fmt: skip
        """Route, group and enqueue ``analyses``; flush this call's due groups and deliver.

        ``wait``: also wait (at most this long) for this call's groups whose ``group_wait``
        ends soon, and flush them here. ``deliver_for``: keep retrying this call's messages for
        at most this long; whatever is left is the next ``tick``'s.

        ``private_store``: the store is this process's own (the CLI's default SQLite file, no
        ``--store`` and no ``$RT_STATE_URL``). No other process can join this call's groups
        and no ``tick`` will ever flush them, so they are flushed now, whatever their
        ``group_wait``/``group_interval``: waiting would only lose them. With a shared store
        they stay for ``tick``, and ``NotifyReport.waiting`` says so.
        """
        analyses = list(analyses)
        report = NotifyReport()
        ctx = _Context(self.store, self.plan, self.clock(), firing=[])
        if self.plan.inhibit_rules:
            ctx.firing = grouping.firing_label_sets(self.store, now=ctx.now)
            ctx.firing += [a.labels() for a in analyses]
        for analysis in analyses:
            labels = analysis.labels()
            for match in routing.match(self.plan.route, labels):
                alert = Alert(analysis, match)
                try:
                    for step in self.steps:
                        alert = step(ctx, alert)
                except Suppressed as suppressed:
                    log.info(
                        "notify: suppressed %s for %s: %s", analysis.failure_id, match.receiver,
                        suppressed.reason,
                    )  # fmt: skip
                    report.suppressed.append(
                        {"failure_id": analysis.failure_id, "receiver": match.receiver,
                         "reason": suppressed.reason}
                    )  # fmt: skip
                    continue
                report.routed.append(
                    {"failure_id": analysis.failure_id, "receiver": match.receiver,
                     "route": match.route_path}
                )  # fmt: skip
        ids = self._flush_touched(ctx, wait=wait, report=report, force=private_store)
        report.outbox_ids.extend(ids)
        start = self.clock()
        report.delivery = self.deliverer.run(ids=set(ids), until=start + deliver_for)
        if private_store and report.delivery.pending:
            log.warning(
                "notify: %d message(s) still to retry in this process's private store: nobody "
                "will send them (set $RT_STATE_URL to a shared store, or raise --deliver-for)",
                report.delivery.pending,
            )
        return report

    def _flush_touched(
        self, ctx: _Context, *, wait: float, report: NotifyReport, force: bool = False
    ) -> list[int]:
        ids: list[int] = []
        deadline = ctx.now + wait
        pending = {k: at for k, at in ctx.touched.items() if at is not None}
        while pending:
            now = self.clock()
            for key in [k for k, at in pending.items() if force or at <= now]:
                ids += self.flush_group(key, now=now, report=report, force=force)
                del pending[key]
            waiting = [at for at in pending.values() if at <= deadline]
            if not waiting:
                break
            self.sleep(max(0.0, min(waiting) - self.clock()))
        report.waiting = dict(pending)
        if pending:
            log.info(
                "notify: %d group(s) wait for group_wait/group_interval (first flush %s); "
                "`tick` sends them", len(pending), grouping.rfc3339(min(pending.values())),
            )  # fmt: skip
        return ids

    def flush_group(
        self, key: str, *, now: float, report: NotifyReport | None = None, force: bool = False
    ) -> list[int]:
        """Flush one group if due (or now, with ``force``): one firing notification to each
        channel of its receiver, enqueued with the group's new state and its escalations, in
        one transaction."""
        ids: list[int] = []
        with self.store.transaction() as tx:
            flushed = grouping.flush(
                tx, key, now=now, max_alerts=self.plan.defaults.max_alerts, force=force,
                inhibit_rules=self.plan.inhibit_rules,
            )  # fmt: skip
            if flushed is None:
                return ids
            notification = Notification(
                kind="firing", incident_key=flushed.incident, receiver=flushed.receiver,
                group_labels=flushed.group_labels, analyses=flushed.analyses,
                severity=flushed.severity, title=flushed.title, created_at=grouping.rfc3339(now),
                count=flushed.count, sequence=flushed.sequence, group_key=flushed.group_key,
            )  # fmt: skip
            encoded = outbox.encode_notification(notification)
            receiver = self.plan.receivers.get(flushed.receiver)
            channels = self.plan.channels_of(flushed.receiver) if receiver else ()
            for channel in channels:
                row = outbox.enqueue(
                    tx, idempotency_key=notification.idempotency_key(channel.name),
                    channel=channel.name, channel_type=channel.type, receiver=flushed.receiver,
                    incident=flushed.incident, kind="firing", notification=encoded, now=now,
                )  # fmt: skip
                if row is not None:
                    ids.append(row)
            if flushed.sequence == 0 or flushed.severity_rose:  # rules for the new severity
                escalation.schedule(
                    tx, self.plan, incident=flushed.incident, receiver=flushed.receiver,
                    labels=flushed.labels, severity=flushed.severity, now=now,
                )  # fmt: skip
        log.info(
            "notify: incident %s: %s -> %s (%d channel(s))", flushed.incident, flushed.title,
            flushed.receiver, len(ids),
        )  # fmt: skip
        if report is not None:
            report.incidents.append(flushed.incident)
        return ids

    # ------------------------------------------------------------------ tick

    def tick(self, *, deliver_for: float = 0.0) -> TickReport:
        """Prune what is older than the retention (at most every ``PRUNE_EVERY``), flush due
        groups, fire due escalations, deliver every due outbox row."""
        report = TickReport()
        now = self.clock()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            report.pruned = self.prune(now=now)
            self._pruned_at = now
        for key in grouping.due_groups(self.store, now=now):
            ids = self.flush_group(key, now=now)
            report.flushed += 1 if ids else 0
            report.enqueued += len(ids)
        for incident, rule in escalation.due_escalations(self.store, now=now):
            ids = escalation.fire(self.store, self.plan, incident, rule, now=now)
            report.escalated += 1 if ids else 0
            report.enqueued += len(ids)
        report.delivery = self.deliverer.run(ids=None, until=now + deliver_for)
        return report

    def prune(self, *, now: float) -> int:
        """Delete, in one transaction, what is older than ``defaults.retention`` (30 days by
        default): sent and failed outbox rows (of incidents no longer open), audit rows, and
        resolved incidents with their alerts, escalations and closed group. Open incidents
        and unfinished messages are kept however old. Returns how many rows went."""
        before = now - self.plan.defaults.retention.seconds
        with self.store.transaction() as tx:
            count = outbox.prune(tx, before=before)
            count += escalation.prune(tx, before=before)
            count += grouping.prune(tx, before=before)
        if count:
            log.info("notify: pruned %d row(s) older than %s", count, self.plan.defaults.retention)
        return count

    def tick_loop(self, *, duration: float, poll: float = 1.0) -> TickReport:
        """``tick`` repeatedly for ``duration`` seconds (a CronWorkflow pod that stays a minute)."""
        total = TickReport()
        end = self.clock() + duration
        while True:
            remaining = end - self.clock()
            one = self.tick(deliver_for=max(0.0, min(poll, remaining)))
            total.pruned += one.pruned
            total.flushed += one.flushed
            total.escalated += one.escalated
            total.enqueued += one.enqueued
            total.delivery.merge(one.delivery)
            if self.clock() >= end:
                return total
            self.sleep(max(0.0, min(poll, end - self.clock())))

    # ------------------------------------------------------------------ ack / resolve

    def acknowledge(self, incident: str, *, by: str, deliver_for: float = 0.0) -> escalation.AckResult:
        result = escalation.acknowledge(self.store, self.plan, incident, by=by, now=self.clock())
        if result.outbox_ids:
            self.deliverer.run(ids=set(result.outbox_ids), until=self.clock() + deliver_for)
        return result

    def resolve(
        self, *, workflow: str | None = None, namespace: str | None = None,
        incident: str | None = None, by: str = "workflow succeeded", deliver_for: float = 0.0,
    ) -> tuple[list[escalation.ResolveResult], DeliveryReport]:  # fmt: skip
        now = self.clock()
        if incident is not None:
            results = [escalation.resolve_incident(self.store, self.plan, incident, now=now, by=by)]
        elif workflow is not None:
            results = escalation.resolve_workflow(
                self.store, self.plan, workflow, namespace=namespace, now=now, by=by
            )
        else:
            raise ValueError("resolve needs a workflow or an incident")
        ids = {i for r in results for i in r.outbox_ids}
        delivery = DeliveryReport()
        if ids:
            delivery = self.deliverer.run(ids=ids, until=self.clock() + deliver_for)
        return results, delivery
