"""Microsoft Teams through a Workflows (Power Automate) webhook, with an Adaptive Card 1.4.

Body: ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <AdaptiveCard>}]}``
(the shape Alertmanager's ``msteamsv2`` sends). The card has a title, a summary, a FactSet of
the failure's labels, the root cause as wrapped TextBlocks, a monospace log tail and
``Action.OpenUrl`` buttons to the Argo UI. TextBlocks and fact values are Markdown in Teams,
so every piece of failure text is escaped (templates' ``teams`` format, ``escape_teams``):
a log line ``[login](https://evil)`` is shown as written, never as a link. Teams refuses messages above about 28 KB; the card
sheds the log tail first, then extra detailed failures, then listed ones.

Office 365 connector URLs (``*.webhook.office.com/webhookb2/…``) were retired by Microsoft
and are refused: the config check rejects them, and so does ``send``.

Responses: 200/202 ok; 400 and 413 final; 429 (``Retry-After``) and 5xx retry.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..notification import Notification, OutboundMessage, SendResult
from ..templates import Templates, escape_teams, notification_context, safe_url, split_detailed
from .base import (
    ChannelBase,
    classify_http,
    clip,
    clip_tail,
    json_size,
    post_json,
    redact_obj,
)

__all__ = ["CARD_VERSION", "MAX_BYTES", "TeamsChannel", "is_retired_connector_url"]

CARD_VERSION = "1.4"
#: Teams answers "Request entity too large" above ~28 KB; stay under it with a margin.
MAX_BYTES = 27_000
ADAPTIVE = "application/vnd.microsoft.card.adaptive"
RETIRED = (
    "Office 365 connector webhooks (*.webhook.office.com/webhookb2/) were retired by Microsoft; "
    "create a Teams Workflows webhook ('Post to a channel when a webhook request is received') "
    "and use its URL"
)
_COLOR = {"critical": "Attention", "error": "Attention", "warning": "Warning", "info": "Default"}


def is_retired_connector_url(url: str) -> bool:
    """Whether ``url`` is a retired Office 365 connector incoming webhook."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if host.endswith("webhook.office.com") and "/webhookb2/" in parts.path:
        return True
    return host == "outlook.office.com" and parts.path.startswith("/webhook/")


def _paragraphs(text: str) -> str:
    """Teams renders a TextBlock's single newlines as spaces: make each line a paragraph."""
    return "\n\n".join(line for line in text.splitlines() if line.strip())


def _text(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def _fit(text: str, limit: int) -> str:
    """``clip`` for escaped Markdown: never leave a dangling ``\\`` that would escape the marker."""
    cut = clip(text, limit)
    if cut == text:
        return cut
    kept = cut[:-1]
    if (len(kept) - len(kept.rstrip("\\"))) % 2:
        kept = kept[:-1]
    return kept + cut[-1]


def _facts(a: dict[str, Any]) -> dict[str, Any]:
    rc, error = a["root_cause"], a["error"]
    pairs = [
        ("Workflow", a["workflow"]["name"]),
        ("Namespace", a["workflow"]["namespace"]),
        ("Stage", a["stage"]),
        ("Category", rc["category"]),
        ("Signature", rc["signature"] or ""),
        ("Confidence", f"{round(rc['confidence'] * 100)}%"),
        ("Transient", "yes" if rc["transient"] else "no"),
        ("Severity", a["severity"]),
        ("Exit code", "" if error["exit_code"] is None else str(error["exit_code"])),
        ("Attempts", "" if error["attempts"] is None else str(error["attempts"])),
    ]
    return {
        "type": "FactSet",
        "facts": [
            {"title": title, "value": _fit(escape_teams(str(value)), 200)} for title, value in pairs if value
        ],
    }


class TeamsChannel(ChannelBase):
    def render(self, notification: Notification) -> OutboundMessage:
        context = redact_obj(notification_context(notification, channel=self.name))
        templates = Templates(self.templates_dir)
        steps = [(4_000, 3, None), (1_000, 3, None), (0, 3, None), (0, 1, None), (0, 1, 10), (0, 1, 0)]
        message: dict[str, Any] = {}
        for log_limit, detailed, listed in steps:
            message = self._message(notification, context, templates, log_limit, detailed, listed)
            if json_size(message) <= MAX_BYTES:
                break
        return self.message(notification, redact_obj(message), templates)

    def _message(
        self,
        notification: Notification,
        context: dict[str, Any],
        templates: Templates,
        log_limit: int,
        detailed: int,
        listed: int | None,
    ) -> dict[str, Any]:
        render = templates.render
        color = "Good" if notification.kind in ("resolved", "acknowledged") else _COLOR[notification.severity.value]
        def markdown(field: str, ctx: dict[str, Any] = context) -> str:
            return render(self.type, field, ctx, fmt="teams").text

        body: list[dict[str, Any]] = [
            _text(_fit(markdown("title"), 400), weight="Bolder", size="Medium", color=color),
            _text(_fit(_paragraphs(markdown("summary")), 2_000)),
            _text(
                escape_teams(
                    f"Severity {context['severity']} · receiver {context['receiver']} · {context['created_at']}"
                ),
                isSubtle=True, spacing="None", size="Small",
            ),
        ]
        shown, others = split_detailed(context["analyses"], detailed)
        for index, a in enumerate(shown):
            items = [
                _text(_fit(_paragraphs(markdown("analysis", {**context, "a": a})), 4_000)),
                _facts(a),
            ]
            log = a["error"].get("log_tail") or ""
            if index == 0 and log_limit and log.strip():
                tail = escape_teams(clip_tail(log.strip("\n"), log_limit))
                items.append(_text(tail, fontType="Monospace", size="Small"))
            body.append({"type": "Container", "separator": True, "items": items})
        hidden = context["truncated"]
        if listed is not None:
            hidden += max(0, len(others) - listed)
            others = others[:listed]
        if (others or hidden) and notification.kind in ("firing", "escalation", "reminder"):
            text = markdown("others", {**context, "others": others, "hidden": hidden})
            body.append(_text(_fit(_paragraphs(text), 6_000), separator=True))
        actions = [
            {"type": "Action.OpenUrl", "title": f"Open {a['workflow']['name']} in Argo", "url": safe_url(a["workflow"]["url"])}
            for a in shown
            if safe_url(a["workflow"]["url"])
        ]
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": CARD_VERSION,
            "body": body,
            "msteams": {"width": "Full"},
        }
        if actions:
            card["actions"] = actions
        return {
            "type": "message",
            "attachments": [{"contentType": ADAPTIVE, "contentUrl": None, "content": card}],
        }

    def send(self, message: OutboundMessage, *, timeout: float) -> SendResult:
        settings = self.resolved("webhook_url")
        if isinstance(settings, SendResult):
            return settings
        url = settings["webhook_url"]
        if is_retired_connector_url(url):
            return SendResult(ok=False, error=f"channel {self.name}: {RETIRED}")
        response = post_json(url, message.body, message=message, timeout=timeout)
        if isinstance(response, SendResult):
            return response
        data = response.json()
        detail = None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            error = data["error"]
            detail = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
        return classify_http(response, ok_statuses=(200, 202), detail=detail)
