"""Slack incoming webhook with Block Kit.

Limits (Slack's, enforced here): at most 50 blocks, section text at most 3000 characters,
header at most 150 (plain text), a top-level ``text`` fallback for notifications. A message
that would carry more than ``TEXT_BUDGET`` characters of block text is shrunk in this order,
so the root cause survives: the log tail first, then detailed failures beyond the first; every
section is finally cut to its limit from the end (the root cause is at the top).

Failure text is escaped for mrkdwn (``& < >``) by the templates' ``mrkdwn`` format.
Responses: 200 ``ok``; 400 ``invalid_payload``/``invalid_blocks``/``no_text``, 403, 404
``no_service``, 410 ``channel_is_archived`` are final; 429 (``Retry-After``) and 5xx retry.
"""

from __future__ import annotations

from typing import Any

from ..notification import Notification, OutboundMessage, SendResult
from ..templates import Templates, escape_mrkdwn, notification_context, split_detailed
from .base import (
    ChannelBase,
    classify_http,
    clip,
    clip_tail,
    post_json,
    redact_obj,
)

__all__ = ["MAX_BLOCKS", "MAX_HEADER", "MAX_SECTION", "SlackChannel"]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_CONTEXT = 2000
MAX_FALLBACK = 3000
#: Characters of block text above which the message sheds detail (logs first).
TEXT_BUDGET = 12_000
#: Kinds about failures still going on (the others are acknowledged and resolved).
ACTIVE_KINDS = ("firing", "escalation", "reminder")
#: Failures shown in detail; beyond this a group is listed one line per failure.
MAX_DETAILED = 3


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def _code_block(log: str) -> str:
    """A mrkdwn code block holding the end of ``log``, escaped, within the section limit."""
    limit = MAX_SECTION - len("```\n\n```")
    log = log.strip("\n")
    raw = limit
    while True:
        escaped = escape_mrkdwn(clip_tail(log, raw))
        if len(escaped) <= limit or raw <= 16:
            break
        raw -= len(escaped) - limit  # escaping grew the text: keep fewer raw characters
    return f"```\n{clip(escaped, limit)}\n```"


def _block_text(blocks: list[dict[str, Any]]) -> int:
    total = 0
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            total += len(text.get("text", ""))
        for element in block.get("elements") or ():
            total += len(element.get("text", ""))
    return total


class SlackChannel(ChannelBase):
    def render(self, notification: Notification) -> OutboundMessage:
        templates = Templates(self.templates_dir)
        context = redact_obj(notification_context(notification, channel=self.name))
        for include_logs, detailed in ((True, MAX_DETAILED), (False, MAX_DETAILED), (False, 1)):
            blocks = self._blocks(templates, context, include_logs=include_logs, detailed=detailed)
            if _block_text(blocks) <= TEXT_BUDGET:
                break
        title = templates.render(self.type, "title", context).text
        causes = {a["cause"] for a in context["analyses"]}
        cause = causes.pop() if len(causes) == 1 else ""
        fallback = escape_mrkdwn(f"{title}" + (f" ({cause})" if cause and cause not in title else ""))
        body = {"text": clip(fallback, MAX_FALLBACK), "blocks": blocks[:MAX_BLOCKS]}
        return self.message(notification, redact_obj(body), templates)

    def _blocks(
        self, templates: Templates, context: dict[str, Any], *, include_logs: bool, detailed: int
    ) -> list[dict[str, Any]]:
        render = templates.render
        title = render(self.type, "title", context).text
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": clip(title, MAX_HEADER), "emoji": True}},
            _section(render(self.type, "summary", context, fmt="mrkdwn").text),
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": clip(
                            escape_mrkdwn(
                                f"severity {context['severity']} · receiver {context['receiver']}"
                                f" · incident {context['incident_key']} · {context['created_at']}"
                            ),
                            MAX_CONTEXT,
                        ),
                    }
                ],
            },
        ]
        shown, others = split_detailed(context["analyses"], detailed)
        for index, analysis in enumerate(shown):
            text = render(self.type, "analysis", {**context, "a": analysis}, fmt="mrkdwn").text
            blocks.append(_section(text))
            log = analysis["error"].get("log_tail") or ""
            if include_logs and index == 0 and log.strip():
                blocks.append(_section(_code_block(log)))
        hidden = context["truncated"]
        if (others or hidden) and context["kind"] in ACTIVE_KINDS:
            blocks.append(_section(self._others(templates, context, others, hidden)))
        return blocks

    def _others(
        self, templates: Templates, context: dict[str, Any], others: list[dict[str, Any]], hidden: int
    ) -> str:
        """The one-line-per-failure list, cut at whole lines to fit one section."""
        count = len(others)
        while True:
            text = templates.render(
                self.type, "others", {**context, "others": others[:count], "hidden": hidden + len(others) - count},
                fmt="mrkdwn",
            ).text
            if len(text) <= MAX_SECTION or count == 0:
                return text
            count = max(0, count - max(1, (len(text) - MAX_SECTION) // 60 + 1))

    def send(self, message: OutboundMessage, *, timeout: float) -> SendResult:
        settings = self.resolved("webhook_url")
        if isinstance(settings, SendResult):
            return settings
        response = post_json(settings["webhook_url"], message.body, message=message, timeout=timeout)
        if isinstance(response, SendResult):
            return response
        return classify_http(response, ok_statuses=(200,))
