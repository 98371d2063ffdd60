"""The outbox: every message is committed before it is sent, claimed under a lease, marked after.

A row's life: ``pending`` → ``sending`` (claimed by one process until ``lease_until``) →
``sent`` | ``failed`` (terminal; the deliverer then enqueues the fallback receiver), or back to
``pending`` with a later ``next_attempt_at`` (retry, rate limit, 429).

**Guarantees.**

* *Nothing is lost.* A message is in the outbox, committed, before any send is tried; it is
  committed in the same transaction as the group/escalation state that produced it. A process
  that dies at any point leaves the row ``pending`` or ``sending``; once the lease has expired
  the next ``tick`` (or ``notify``) claims it again.
* *Nothing is enqueued twice.* ``idempotency_key`` is unique: enqueueing the same
  (incident, kind, escalation level, repeat, sequence, channel) again is a no-op
  (``Notification.idempotency_key``).
* *Nothing is sent twice after a restart, except in one window.* A row is claimed by one
  process at a time (a conditional UPDATE; an expired lease is the only way to take over). The
  window: the provider accepted the request but the process died (or lost the store) before
  it committed ``sent``. After the lease expires the message is sent again, with the same
  idempotency key. PagerDuty deduplicates on ``dedup_key`` (a second ``trigger`` for an open
  alert is merged into it); a generic webhook carries the key in its ``X-RT-Idempotency-Key``
  header so the receiver drops the replay; email sets ``Message-ID: <key@from-domain>`` (many
  mail systems collapse duplicates by Message-ID, not all). Slack and Teams incoming webhooks accept no
  idempotency key: there a crash in that window produces a second, identical message. This is
  at-least-once, like Alertmanager's notification log, and the window is one HTTP response long.
  The same holds for a process that stalls (CPU starvation, a paused pod) longer than its lease
  (``defaults.lease``, at least three times the send timeout): it is taken for dead and the row is
  claimed again, so its late send can be a second copy with the same key. Its late *result*
  changes nothing: every transition out of ``sending`` is conditional on ``lease_owner``
  still being the process that reports it, so the stalled process can neither overwrite the
  new holder's ``sent`` nor enqueue a fallback (the deliverer audits it as ``ignored``).

**Order.** Per (incident, channel) rows are sent in the order they were enqueued: a row is
not claimable while an earlier row of the same incident and channel is ``pending`` or
``sending``. So a ``resolve`` or ``acknowledge`` never overtakes the ``trigger`` it follows
(PagerDuty would otherwise keep the alert open for ever), and group updates arrive in order.
A row waits until the earlier one is ``sent`` or ``failed`` (a failed trigger's resolve then
reaches PagerDuty as a no-op). Ordering was chosen over superseding the pending trigger when a
resolve is enqueued: the trigger may already be on the wire (a lease holder mid-send), and
the incident is then still recorded at the provider. A process that sends a row also sends
the rows it waits for (``blockers``), so ``notify`` and ``ack`` never wait on nobody.

Audit: ``notify_audit`` records every attempt (time, channel, status, latency, redacted error)
and every human action (ack, resolve). Tables (component ``notify_outbox``): ``notify_outbox``,
``notify_audit``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...policy.taxonomy import Severity
from ..model import FailureAnalysis
from ..store import Store, Tx
from .notification import Notification
from .text import dumps, one_line

__all__ = [
    "OutboxItem",
    "audit",
    "blockers",
    "claim",
    "decode_notification",
    "encode_notification",
    "enqueue",
    "migrate",
    "next_due",
    "prune",
    "redact_line",
    "states",
]

_DDL = [
    "CREATE TABLE IF NOT EXISTS notify_outbox ("
    " {serial_pk},"
    " idempotency_key TEXT NOT NULL UNIQUE,"
    " channel TEXT NOT NULL, channel_type TEXT NOT NULL, receiver TEXT NOT NULL,"
    " incident TEXT NOT NULL, kind TEXT NOT NULL,"
    " notification TEXT NOT NULL,"  # the Notification (JSON), rendered at first claim
    " message TEXT,"  # the rendered OutboundMessage (JSON), kept so retries send the same bytes
    " state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at DOUBLE PRECISION NOT NULL,"
    " lease_owner TEXT, lease_until DOUBLE PRECISION,"
    " created_at DOUBLE PRECISION NOT NULL, sent_at DOUBLE PRECISION,"
    " last_status INTEGER, last_error TEXT, provider_ref TEXT,"
    " fallback_of TEXT, fallback_depth INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (state, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS notify_outbox_incident ON notify_outbox (incident)",
    "CREATE TABLE IF NOT EXISTS notify_audit ("
    " {serial_pk},"
    " at DOUBLE PRECISION NOT NULL, event TEXT NOT NULL, incident TEXT,"
    " channel TEXT, idempotency_key TEXT, attempt INTEGER, status INTEGER, ok INTEGER,"
    " latency_ms DOUBLE PRECISION, error TEXT, actor TEXT)",
    "CREATE INDEX IF NOT EXISTS notify_audit_incident ON notify_audit (incident)",
    # per-(incident, channel) order: the claim looks for an earlier unfinished row
    "CREATE INDEX IF NOT EXISTS notify_outbox_order ON notify_outbox (incident, channel, id)",
    # 429 answers among the attempts: they do not use up the retry budget
    "ALTER TABLE notify_outbox ADD COLUMN throttled INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX IF NOT EXISTS notify_outbox_created ON notify_outbox (created_at)",
    "CREATE INDEX IF NOT EXISTS notify_audit_at ON notify_audit (at)",
]

#: Row states; ``sent`` and ``failed`` are terminal.
states = ("pending", "sending", "sent", "failed")

_COLUMNS = (
    "id, idempotency_key, channel, channel_type, receiver, incident, kind, notification, "
    "message, attempts, created_at, fallback_of, fallback_depth, next_attempt_at, throttled"
)


def migrate(store: Store) -> None:
    """Create the outbox and audit tables (idempotent)."""
    store.migrate("notify_outbox", _DDL)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One claimed outbox row."""

    id: int
    idempotency_key: str
    channel: str
    channel_type: str
    receiver: str
    incident: str
    kind: str
    notification: str  # JSON
    message: str | None  # JSON of the OutboundMessage once rendered
    attempts: int  # attempts made before this claim
    created_at: float
    fallback_of: str | None
    fallback_depth: int
    next_attempt_at: float
    throttled: int = 0  # attempts answered 429 (not counted against max_attempts)


def enqueue(
    tx: Tx,
    *,
    idempotency_key: str,
    channel: str,
    channel_type: str,
    receiver: str,
    incident: str,
    kind: str,
    notification: str,
    now: float,
    not_before: float | None = None,
    fallback_of: str | None = None,
    fallback_depth: int = 0,
) -> int | None:
    """Add a message inside the caller's transaction; the row id, or None if already there."""
    tx.execute(
        "INSERT INTO notify_outbox (idempotency_key, channel, channel_type, receiver, incident, "
        "kind, notification, state, next_attempt_at, created_at, fallback_of, fallback_depth) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) "
        "ON CONFLICT (idempotency_key) DO NOTHING",
        (
            idempotency_key, channel, channel_type, receiver, incident, kind, notification,
            now if not_before is None else not_before, now, fallback_of, fallback_depth,
        ),
    )  # fmt: skip
    if tx.rowcount != 1:
        return None
    row = tx.execute(
        "SELECT id FROM notify_outbox WHERE idempotency_key = ?", (idempotency_key,)
    ).fetchone()
    return int(row[0]) if row else None


def _where(
    ids: frozenset[int] | None, exclude_channels: frozenset[str] = frozenset()
) -> tuple[str, tuple[Any, ...]]:
    sql, params = "", ()
    if ids is not None:
        if not ids:
            return " AND 1 = 0", ()
        sql += f" AND id IN ({', '.join('?' * len(ids))})"
        params += tuple(sorted(ids))
    if exclude_channels:
        sql += f" AND channel NOT IN ({', '.join('?' * len(exclude_channels))})"
        params += tuple(sorted(exclude_channels))
    return sql, params


_DUE = "((state = 'pending' AND next_attempt_at <= ?) OR (state = 'sending' AND lease_until <= ?))"
#: When an unfinished row may be claimed next (its retry time, or its lease's end).
_WAKE = "CASE WHEN {t}.state = 'sending' THEN {t}.lease_until ELSE {t}.next_attempt_at END"
#: An earlier row of the same incident and channel is unfinished: this one must wait for it.
_BLOCKED = (
    "EXISTS (SELECT 1 FROM notify_outbox b WHERE b.incident = notify_outbox.incident "
    "AND b.channel = notify_outbox.channel AND b.id < notify_outbox.id "
    "AND b.state IN ('pending', 'sending'))"
)


def claim(
    store: Store,
    *,
    owner: str,
    now: float,
    lease: float,
    ids: frozenset[int] | None = None,
    exclude_channels: frozenset[str] = frozenset(),
    limit: int = 1,
) -> list[OutboxItem]:
    """Claim up to ``limit`` due rows (pending and due, or sending with an expired lease).

    Oldest first; each row is taken with a conditional UPDATE, so two processes never hold
    the same row. A row waits while an earlier row of its incident and channel is unfinished
    (see "Order" in the module doc). ``ids`` restricts the claim (a ``notify`` process sends
    only its own rows); ``exclude_channels`` skips channels known to be over budget. Claim few
    rows at a time: a claimed row must be sent before its lease (``lease`` seconds) runs out.
    """
    where, params = _where(ids, exclude_channels)
    with store.transaction(write=False) as tx:
        candidates = tx.execute(
            f"SELECT {_COLUMNS} FROM notify_outbox WHERE {_DUE}{where} AND NOT {_BLOCKED} "
            "ORDER BY next_attempt_at, id LIMIT ?",
            (now, now, *params, limit * 4 + 4),
        ).fetchall()
    claimed: list[OutboxItem] = []
    if not candidates:
        return claimed
    with store.transaction() as tx:  # rows in the same order as every other claimer: no deadlock
        for row in candidates:
            tx.execute(
                "UPDATE notify_outbox SET state = 'sending', lease_owner = ?, lease_until = ? "
                f"WHERE id = ? AND {_DUE} AND NOT {_BLOCKED}",
                (owner, now + lease, row[0], now, now),
            )
            if tx.rowcount == 1:
                claimed.append(OutboxItem(*row))
                if len(claimed) >= limit:
                    break
    return claimed


def next_due(
    store: Store,
    *,
    ids: frozenset[int] | None = None,
    exclude_channels: frozenset[str] = frozenset(),
) -> float | None:
    """When the earliest unfinished row (of ``ids``) may be claimed next; None when all are done.

    A row that waits for an earlier row of its incident and channel is not claimable before
    that row is: its time is the later of the two.
    """
    where, params = _where(ids, exclude_channels)
    with store.transaction(write=False) as tx:
        row = tx.execute(
            "SELECT min(CASE WHEN blocker > due THEN blocker ELSE due END) FROM ("
            f"SELECT {_WAKE.format(t='r')} AS due, "
            f"(SELECT max({_WAKE.format(t='b')}) FROM notify_outbox b WHERE b.incident = r.incident "
            "AND b.channel = r.channel AND b.id < r.id AND b.state IN ('pending', 'sending')) AS blocker "
            f"FROM notify_outbox r WHERE r.state IN ('pending', 'sending'){where}) AS t",
            params,
        ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def blockers(store: Store, ids: frozenset[int]) -> set[int]:
    """Unfinished rows that must be sent before some row of ``ids`` (same incident and channel,
    enqueued earlier): whoever sends ``ids`` sends these first."""
    if not ids:
        return set()
    marks = ", ".join("?" * len(ids))
    with store.transaction(write=False) as tx:
        rows = tx.execute(
            "SELECT DISTINCT b.id FROM notify_outbox b JOIN notify_outbox r "
            "ON b.incident = r.incident AND b.channel = r.channel AND b.id < r.id "
            f"WHERE r.id IN ({marks}) AND r.state IN ('pending', 'sending') "
            "AND b.state IN ('pending', 'sending')",
            tuple(sorted(ids)),
        ).fetchall()
    return {int(r[0]) for r in rows}


def prune(tx: Tx, *, before: float) -> int:
    """Delete sent and failed rows created before ``before`` (except those of an incident that
    is still open: its resolve must know which channels heard of it) and audit rows older
    than that; returns how many rows went."""
    tx.execute(  # state <> … rather than IN (…), so the created_at index is the one used
        "DELETE FROM notify_outbox WHERE created_at < ? AND state <> 'pending' AND state <> 'sending' "
        "AND NOT EXISTS (SELECT 1 FROM notify_incidents i WHERE i.incident = notify_outbox.incident "
        "AND i.state <> 'resolved')",
        (before,),
    )
    count = tx.rowcount
    tx.execute("DELETE FROM notify_audit WHERE at < ?", (before,))
    return count + tx.rowcount


def redact_line(text: str, limit: int = 300) -> str:
    """One line, URL query strings and credentials removed, at most ``limit`` characters.

    Channel errors are already redacted by the channel; this is a second, cheap net for the
    audit table (an exception text may quote a webhook URL whose path or ``sig=`` is a secret).
    """
    text = re.sub(r"(https?://)[^/\s@]*@", r"\1***@", str(text))
    text = re.sub(r"(https?://[^/\s?#]+)[^\s]*", r"\1/***", text)
    return one_line(text, limit)


def audit(
    tx: Tx,
    *,
    at: float,
    event: str,
    incident: str | None = None,
    channel: str | None = None,
    idempotency_key: str | None = None,
    attempt: int | None = None,
    status: int | None = None,
    ok: bool | None = None,
    latency_ms: float | None = None,
    error: str = "",
    actor: str | None = None,
) -> None:
    """Append one audit row inside the caller's transaction."""
    tx.execute(
        "INSERT INTO notify_audit (at, event, incident, channel, idempotency_key, attempt, status, "
        "ok, latency_ms, error, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            at, event, incident, channel, idempotency_key, attempt, status,
            None if ok is None else int(ok), latency_ms, redact_line(error) if error else None, actor,
        ),
    )  # fmt: skip




# --------------------------------------------------------------------------- notifications

def fallback_key(original_key: str, channel: str) -> str:
    """The outbox key of the fallback copy of message ``original_key`` on ``channel``."""
    return hashlib.sha256(f"{original_key}>fallback>{channel}".encode()).hexdigest()[:40]


def encode_notification(notification: Notification) -> str:
    """JSON for the outbox (the failures are already redacted by analysis)."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(notification):
        value = getattr(notification, f.name)
        if f.name == "analyses":
            value = [a.to_dict() for a in value]
        elif f.name == "severity":
            value = value.value
        elif isinstance(value, Mapping):
            value = dict(value)
        data[f.name] = value
    return dumps(data)


def decode_notification(text: str, **changes: Any) -> Notification:
    """The ``Notification`` stored by ``encode_notification`` (with ``changes`` applied)."""
    data = json.loads(text)
    names = set(Notification.__dataclass_fields__)
    data = {k: v for k, v in data.items() if k in names}
    data["analyses"] = tuple(FailureAnalysis.from_dict(a) for a in data.get("analyses") or ())
    data["severity"] = Severity(data["severity"])
    data.update(changes)
    return Notification(**data)
