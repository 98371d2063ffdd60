"""A generic signed JSON webhook, shaped like Alertmanager's webhook payload.

Body: ``version``, ``groupKey`` (the group's stable key, shared by every incident of the
group, as Alertmanager's), ``incidentKey`` (this incident's id, what ``ack`` takes),
``status`` (firing/resolved), ``kind``, ``receiver``,
``groupLabels``, ``commonLabels``, ``title``, ``severity``, ``truncatedAlerts`` and
``alerts[]`` (labels, startsAt, generatorURL, fingerprint and the full ``analysis``).
``max_alerts`` (0 = all) caps ``alerts`` as in Alertmanager; the body stays under
``MAX_BODY_BYTES`` by shortening log tails, then dropping them, then dropping alerts.

Authenticity: each send adds ``X-RT-Timestamp`` (Unix seconds) and ``X-RT-Signature:
sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``; receivers check it with
``verify_signature``, which also refuses timestamps outside a tolerance (replays). The body
sent carries ``idempotencyKey`` (added at send time, so it is the outbox's key): it is signed,
and receivers drop duplicates of an at-least-once delivery, or a replay, by it (see
``verify_signature``). ``X-RT-Idempotency-Key`` repeats it for logging and proxies.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from ..notification import Notification, OutboundMessage, SendResult
from ..templates import Templates, notification_context
from .base import (
    ChannelBase,
    classify_http,
    clip,
    clip_tail,
    encode_json,
    json_size,
    post_json,
    redact_obj,
)

__all__ = ["MAX_BODY_BYTES", "WebhookChannel", "sign", "verify_signature"]

VERSION = "1"
MAX_BODY_BYTES = 1_000_000
LOG_STEPS = (64_000, 8_000, 0)
MAX_TEXT = 10_000
MAX_EVIDENCE = 20


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>.<body>"``."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: str | int,
    body: bytes | str,
    signature: str,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` is ours for ``timestamp`` and ``body``, and the timestamp is fresh.

    The comparison is constant-time; a timestamp more than ``tolerance`` seconds away from
    ``now`` (default: the clock) is refused so a captured request cannot be replayed later.

    Deduplicating (receivers should): delivery is at-least-once, and within ``tolerance`` a
    captured request can be replayed. The body's ``idempotencyKey`` is the same on every retry
    of one message and, being inside the signed body, cannot be changed without breaking the
    signature. So after this check passes, look the body's ``idempotencyKey`` up in a store of
    keys already processed, drop the request if it is there, and record it once processed
    (keep keys for a day: longer than any retry schedule and than ``tolerance``). Do not
    dedupe on the ``X-RT-Idempotency-Key`` header alone: it carries the same value but is not
    signed, so a replay could pair a captured body with a fresh header.
    """
    try:
        sent_at = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, sent_at, raw)
    given = signature.strip()
    if not given.startswith("sha256="):
        given = "sha256=" + given
    return hmac.compare_digest(expected.encode(), given.encode())


def _bounded(a: dict[str, Any], log_limit: int) -> dict[str, Any]:
    """The analysis as sent: derived template keys removed, unbounded texts cut."""
    analysis = {
        k: v for k, v in a.items() if k not in ("labels", "summary", "evidence_first", "cause", "recommendation")
    }
    rc, error = analysis["root_cause"], analysis["error"]
    evidence = rc.get("evidence") or []
    analysis["root_cause"] = {
        **rc,
        "description": clip(rc.get("description") or "", MAX_TEXT),
        "evidence": [clip(line, 1_000) for line in evidence[:MAX_EVIDENCE]],
    }
    log = error.get("log_tail") or ""
    analysis["error"] = {
        **error,
        "message": clip(error.get("message") or "", MAX_TEXT),
        "log_tail": clip_tail(log, log_limit) if log_limit else "",
    }
    return analysis


def _common_labels(label_sets: list[dict[str, str]]) -> dict[str, str]:
    if not label_sets:
        return {}
    common = dict(label_sets[0])
    for labels in label_sets[1:]:
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return {k: v for k, v in sorted(common.items()) if v}


class WebhookChannel(ChannelBase):
    def render(self, notification: Notification) -> OutboundMessage:
        context = redact_obj(notification_context(notification, channel=self.name))
        templates = Templates(self.templates_dir)
        title = templates.render(self.type, "title", context).text
        analyses = context["analyses"]
        limit = int(self.settings.get("max_alerts") or 0) or len(analyses)
        body: dict[str, Any] = {}
        for log_limit in LOG_STEPS:
            body = self._body(notification, context, title, analyses[:limit], log_limit)
            if json_size(body) <= MAX_BODY_BYTES:
                break
        while json_size(body) > MAX_BODY_BYTES and len(body["alerts"]) > 1:
            keep = len(body["alerts"]) // 2
            body = self._body(notification, context, title, analyses[:keep], 0)
        return self.message(notification, redact_obj(body), templates)

    def _body(
        self,
        notification: Notification,
        context: dict[str, Any],
        title: str,
        analyses: list[dict[str, Any]],
        log_limit: int,
    ) -> dict[str, Any]:
        status = "resolved" if notification.kind == "resolved" else "firing"
        alerts = []
        for a in analyses:
            analysis = _bounded(a, log_limit)
            alerts.append(
                {
                    "status": status,
                    "labels": a["labels"],
                    "startsAt": a["created_at"],
                    "generatorURL": a["workflow"]["url"],
                    "fingerprint": a["failure_id"],
                    "summary": a["summary"],
                    "analysis": analysis,
                }
            )
        return {
            "version": VERSION,
            "groupKey": notification.group_key or notification.incident_key,
            "incidentKey": notification.incident_key,
            "status": status,
            "kind": notification.kind,
            "receiver": notification.receiver,
            "groupLabels": dict(sorted(context["group_labels"].items())),
            "commonLabels": _common_labels([a["labels"] for a in analyses]),
            "title": title,
            "severity": notification.severity.value,
            "escalationLevel": notification.escalation_level,
            "repeat": notification.repeat,
            "createdAt": notification.created_at,
            "count": notification.count,
            "truncatedAlerts": notification.count - len(alerts),
            "alerts": alerts,
        }

    def send(self, message: OutboundMessage, *, timeout: float) -> SendResult:
        settings = self.resolved("url", "secret")
        if isinstance(settings, SendResult):
            return settings
        url, secret = settings["url"], settings["secret"]
        body = encode_json({**message.body, "idempotencyKey": message.idempotency_key})  # signed
        timestamp = int(time.time())
        headers = {"X-RT-Timestamp": str(timestamp), "X-RT-Signature": sign(secret, timestamp, body)}
        response = post_json(url, body, message=message, timeout=timeout, headers=headers, secrets=(secret,))
        if isinstance(response, SendResult):
            return response
        return classify_http(response)
