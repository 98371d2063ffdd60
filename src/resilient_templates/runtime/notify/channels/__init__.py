"""The five channels, built from a compiled plan: ``build_channel(channel_plan)``.

Each channel type lives in its own module and is imported only when a plan uses it.
"""

from __future__ import annotations

import importlib

from ..plan import CHANNEL_TYPES, ChannelPlan
from .base import Channel

__all__ = ["CHANNEL_TYPES", "Channel", "build_channel"]

_CLASSES = {
    "slack": ("slack", "SlackChannel"),
    "email": ("email", "EmailChannel"),
    "pagerduty": ("pagerduty", "PagerDutyChannel"),
    "webhook": ("webhook", "WebhookChannel"),
    "teams": ("teams", "TeamsChannel"),
}


def build_channel(plan: ChannelPlan, *, templates_dir: str | None = None) -> Channel:
    """The channel object for ``plan`` (``templates_dir`` overrides the packaged templates)."""
    if plan.type not in _CLASSES:
        raise ValueError(f"unknown channel type {plan.type!r} (expected one of {', '.join(_CLASSES)})")
    module_name, class_name = _CLASSES[plan.type]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)(plan, templates_dir)
