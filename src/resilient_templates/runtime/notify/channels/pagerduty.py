"""PagerDuty Events API v2: ``POST {url}`` (default ``https://events.pagerduty.com/v2/enqueue``).

``firing``/``escalation``/``reminder`` trigger, ``acknowledged`` acknowledges, ``resolved``
resolves, all with the same ``dedup_key`` (``rt-<incident_key>``, at most 255 characters), so
PagerDuty keeps one alert per incident. ``payload``: ``summary`` (at most 1024), ``source``,
``severity`` (critical/error/warning/info, our taxonomy's names), ``component`` = stage,
``group`` = workflow, ``class`` = category, ``custom_details`` (the analysis), ``links`` to the
Argo UI. The event stays below 512 KB: log tails shrink, then go, then failures beyond the
first, then the details are replaced by a note (Alertmanager does the last step only).

Responses: 202 ``{"status":"success","dedup_key":…}`` ok; 400 ``invalid event`` is final;
429 and 5xx retry (PagerDuty: "retry… with backoff").
"""

from __future__ import annotations

from typing import Any

from ..notification import Notification, OutboundMessage, SendResult
from ..templates import Templates, notification_context, safe_url
from .base import (
    ChannelBase,
    classify_http,
    clip,
    clip_tail,
    json_size,
    post_json,
    redact_obj,
)

__all__ = ["DEFAULT_URL", "MAX_EVENT_BYTES", "MAX_SUMMARY", "PagerDutyChannel", "dedup_key"]

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
#: PagerDuty refuses events above 512 KB; keep a margin for the routing key added at send time.
MAX_EVENT_BYTES = 512_000 - 1_000
ACTIONS = {
    "firing": "trigger",
    "escalation": "trigger",
    "reminder": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
}
#: Per-failure log tail kept in custom_details, then smaller, then none.
LOG_STEPS = (8_000, 2_000, 0)
MAX_FAILURES = 50


def dedup_key(incident_key: str) -> str:
    return clip(f"rt-{incident_key}", MAX_DEDUP_KEY, marker="")


def _failure(a: dict[str, Any], log_limit: int) -> dict[str, Any]:
    rc, error, workflow = a["root_cause"], a["error"], a["workflow"]
    item = {
        "workflow": workflow["name"],
        "namespace": workflow["namespace"],
        "stage": a["stage"],
        "severity": a["severity"],
        "category": rc["category"],
        "signature": rc["signature"],
        "confidence": rc["confidence"],
        "transient": rc["transient"],
        "description": clip(rc["description"] or "", 2_000),
        "evidence": [clip(line, 500) for line in rc["evidence"][:5]],
        "recommendation": clip(a["recommendation"], 1_000),
        "message": clip(error["message"] or "", 2_000),
        "exit_code": error["exit_code"],
        "reason": error["reason"],
        "attempts": error["attempts"],
        "url": safe_url(workflow["url"]),
        "seen_in_window": a["history"]["seen_count"],
    }
    if log_limit and error.get("log_tail"):
        item["log_tail"] = clip_tail(error["log_tail"], log_limit)
    return item


def _common(analyses: list[dict[str, Any]], getter: Any) -> str | None:
    values = {getter(a) for a in analyses}
    return values.pop() if len(values) == 1 else None


class PagerDutyChannel(ChannelBase):
    def render(self, notification: Notification) -> OutboundMessage:
        context = redact_obj(notification_context(notification, channel=self.name))
        templates = Templates(self.templates_dir)
        analyses = context["analyses"]
        event: dict[str, Any] = {
            "event_action": ACTIONS[notification.kind],
            "dedup_key": dedup_key(notification.incident_key),
        }
        if event["event_action"] == "trigger":
            summary = templates.render(self.type, "summary", context).text
            event["payload"] = self._payload(notification, context, clip(" ".join(summary.split()), MAX_SUMMARY))
            event["client"] = self.settings.get("client") or "resilient-templates"
            client_url = next((safe_url(a["workflow"]["url"]) for a in analyses if safe_url(a["workflow"]["url"])), None)
            if self.settings.get("client_url") or client_url:
                event["client_url"] = self.settings.get("client_url") or client_url
            links = [
                {"href": safe_url(a["workflow"]["url"]), "text": f"{a['workflow']['name']} in Argo"}
                for a in analyses[:5]
                if safe_url(a["workflow"]["url"])
            ]
            if links:
                event["links"] = links
            self._fit(event, analyses, context)
        return self.message(notification, redact_obj(event), templates)

    def _payload(self, notification: Notification, context: dict[str, Any], summary: str) -> dict[str, Any]:
        analyses = context["analyses"]
        source = self.settings.get("source") or _common(
            analyses, lambda a: "/".join(p for p in (a["workflow"]["namespace"], a["workflow"]["name"]) if p)
        ) or "argo-workflows"
        payload: dict[str, Any] = {
            "summary": summary,
            "source": source,
            "severity": notification.severity.value,
            "timestamp": notification.created_at,
        }
        for key, getter in (
            ("component", lambda a: a["stage"]),
            ("group", lambda a: a["workflow"]["name"]),
            ("class", lambda a: a["root_cause"]["category"]),
        ):
            value = _common(analyses, getter)
            if value:
                payload[key] = value
        return payload

    def _details(self, context: dict[str, Any], log_limit: int, failures: int) -> dict[str, Any]:
        analyses = context["analyses"]
        return {
            "kind": context["kind"],
            "receiver": context["receiver"],
            "incident_key": context["incident_key"],
            "group_labels": context["group_labels"],
            "count": context["count"],
            "escalation_level": context["escalation_level"],
            "repeat": context["repeat"],
            "acknowledge": f"resilient-runtime ack {context['incident_key']}",
            "failures": [_failure(a, log_limit) for a in analyses[:failures]],
            "failures_not_shown": context["count"] - min(failures, len(analyses)),
        }

    def _fit(self, event: dict[str, Any], analyses: list[dict[str, Any]], context: dict[str, Any]) -> None:
        """Put the largest custom_details that keeps the event under PagerDuty's limit."""
        steps = [(log, MAX_FAILURES) for log in LOG_STEPS] + [(0, 10), (0, 1)]
        for log_limit, failures in steps:
            event["payload"]["custom_details"] = self._details(context, log_limit, failures)
            if json_size(event) <= MAX_EVENT_BYTES:
                return
        event["payload"]["custom_details"] = {
            "error": "details removed: the analysis exceeds PagerDuty's 512 KB event limit",
            "incident_key": context["incident_key"],
        }

    def send(self, message: OutboundMessage, *, timeout: float) -> SendResult:
        settings = self.resolved("integration_key", url=DEFAULT_URL)
        if isinstance(settings, SendResult):
            return settings
        key = settings["integration_key"]
        body = {"routing_key": key, **message.body}
        response = post_json(settings["url"], body, message=message, timeout=timeout, secrets=(key,))
        if isinstance(response, SendResult):
            return response
        data = response.json()
        detail = None
        ref = message.body.get("dedup_key")
        if isinstance(data, dict):
            ref = data.get("dedup_key") or ref
            if response.status >= 300:
                errors = data.get("errors") or []
                detail = "; ".join(str(x) for x in [data.get("message") or data.get("status") or "", *errors] if x)
        result = classify_http(response, ok_statuses=(200, 202), detail=detail, provider_ref=ref)
        if key in result.error:
            result = SendResult(
                ok=result.ok, status=result.status, retryable=result.retryable,
                retry_after=result.retry_after, error=result.error.replace(key, "<secret>"),
                provider_ref=result.provider_ref,
            )
        return result
