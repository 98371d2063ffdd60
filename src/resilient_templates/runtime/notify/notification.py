"""What the notification pipeline hands to a channel, and what a channel hands back.

``Notification`` is one message-worthy event for one receiver: a group of failures firing,
an escalation, a reminder, or the group resolving. A channel renders it into an
``OutboundMessage`` (stored in the outbox: no secrets, only the payload) and later sends that
message once, returning a ``SendResult``. Stdlib only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...policy.taxonomy import Severity
from ..model import FailureAnalysis
from .text import dumps

__all__ = [
    "KINDS",
    "Notification",
    "OutboundMessage",
    "SendResult",
    "group_key",
    "highest_severity",
    "idempotency_key",
]

#: The kinds of notification, in the order an incident lives through them.
KINDS = ("firing", "escalation", "reminder", "acknowledged", "resolved")


def group_key(receiver: str, group_labels: Mapping[str, str], route_key: str = "") -> str:
    """The stable key of one aggregation group: a hash of route, receiver and group labels.

    Alertmanager keys a group by route and group labels; the receiver is part of the route.
    ``route_key`` keeps two routes to the same receiver apart (empty when not needed). The
    key outlives incidents: every incident of the group (one per episode) shares it.
    """
    canonical = dumps([route_key, receiver, sorted(group_labels.items())])
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def idempotency_key(
    incident: str, kind: str, escalation_level: int, repeat: int, channel: str, sequence: int = 0
) -> str:
    """Unique per (incident, kind, escalation level, repeat, sequence, channel): the outbox
    dedup key. ``sequence`` enters only when non-zero, so a group's first message keeps the
    key it always had."""
    canonical = f"{incident}\x1f{kind}\x1f{escalation_level}\x1f{repeat}\x1f{channel}"
    if sequence:
        canonical += f"\x1f{sequence}"
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


def highest_severity(analyses: tuple[FailureAnalysis, ...]) -> Severity:
    """The most severe severity among ``analyses`` (``info`` for none)."""
    if not analyses:
        return Severity.INFO
    return min((a.severity for a in analyses), key=lambda s: s.rank)


@dataclass(frozen=True, slots=True)
class Notification:
    kind: str  # "firing" | "escalation" | "reminder" | "acknowledged" | "resolved"
    incident_key: str  # the incident's short id (10 chars [a-z2-7]); PagerDuty dedup_key
    receiver: str  # receiver name from the config
    group_labels: Mapping[str, str]  # the group_by label values (Alertmanager semantics)
    analyses: tuple[FailureAnalysis, ...]  # >= 1 for firing/escalation/reminder
    severity: Severity  # the highest severity among analyses
    title: str  # "23 workflows failing: github-rate-limit" or the single analysis summary
    created_at: str  # RFC 3339 UTC
    escalation_level: int = 0  # 0 initial, 1.. escalations
    repeat: int = 0  # reminder number
    count: int = 1  # group size (may exceed len(analyses) when truncated)
    sequence: int = 0  # firing only: 0 first message, 1, 2, ... group updates (group_interval)
    group_key: str = ""  # the group's stable key (``group_key()``); outlives the incident

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"notification kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind in ("firing", "escalation", "reminder") and not self.analyses:
            raise ValueError(f"a {self.kind} notification needs at least one analysis")

    def idempotency_key(self, channel: str) -> str:
        return idempotency_key(
            self.incident_key, self.kind, self.escalation_level, self.repeat, channel, self.sequence
        )

    @property
    def truncated(self) -> int:
        """How many failures of the group are counted but not carried in ``analyses``."""
        return max(0, self.count - len(self.analyses))


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What the outbox stores: the rendered payload, never a secret (resolved at send time)."""

    channel: str  # channel name from the config
    channel_type: str  # slack | email | pagerduty | webhook | teams
    idempotency_key: str  # unique per (incident_key, kind, escalation_level, repeat, channel)
    body: Mapping[str, Any]  # JSON-serialisable payload
    meta: Mapping[str, Any] = field(default_factory=dict)  # kind, incident_key, … (for audit)

    def to_json(self) -> str:
        return dumps(
            {
                "channel": self.channel,
                "channel_type": self.channel_type,
                "idempotency_key": self.idempotency_key,
                "body": self.body,
                "meta": self.meta,
            }
        )

    @classmethod
    def from_json(cls, s: str) -> OutboundMessage:
        data = json.loads(s)
        return cls(
            channel=data["channel"],
            channel_type=data["channel_type"],
            idempotency_key=data["idempotency_key"],
            body=data["body"],
            meta=data.get("meta") or {},
        )


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    status: int | None = None  # HTTP status or SMTP code
    retryable: bool = False  # network error, 5xx, 429 -> True; other 4xx -> False
    retry_after: float | None = None  # seconds, from Retry-After (seconds or HTTP-date)
    error: str = ""  # one line, redacted
    provider_ref: str | None = None  # e.g. PagerDuty dedup_key
