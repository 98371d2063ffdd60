"""The pure policy core: durations, retry schedules, breaker state, resources, taxonomy.

Stdlib only: no Hera, no pydantic, no I/O. The runtime imports it too, so names load lazily
(PEP 562): ``from resilient_templates.policy.taxonomy import Category`` in a failure container
does not pay for the retry or breaker modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BreakerConfig": "breaker",
    "BreakerState": "breaker",
    "Circuit": "breaker",
    "Decision": "breaker",
    "Event": "breaker",
    "transition": "breaker",
    "check_fits": "deadline",
    "Duration": "duration",
    "DurationLike": "duration",
    "Quantity": "resources",
    "Resources": "resources",
    "Backoff": "retry",
    "Custom": "retry",
    "Exponential": "retry",
    "Fixed": "retry",
    "Jitter": "retry",
    "Linear": "retry",
    "Retry": "retry",
    "RetryOn": "retry",
    "EXIT_TIMEOUT": "taxonomy",
    "EXIT_TRANSIENT": "taxonomy",
    "Category": "taxonomy",
    "Hint": "taxonomy",
    "Severity": "taxonomy",
    "default_severity": "taxonomy",
    "format_hint": "taxonomy",
    "parse_hint": "taxonomy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'resilient_templates.policy' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
