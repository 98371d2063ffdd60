"""Failure analysis: signatures matched in one pass, a calibrated root cause, history.

Public API (imported lazily, so ``import resilient_templates.runtime.analysis`` stays cheap):

* ``analyze_text(text, *, stage, workflow, exit_code, pod_reason, node_message, hint, now)``
* ``analyze_context(context_json_bytes, ...)``: the stage wrapper's error-context JSON
* ``analyze_workflow(status, failures, *, workflow, contexts, stages, store, now)``
* ``wrapper_hints()``: (signature, category, transient, POSIX ERE) for the stage wrapper

Each returns ``runtime.model.FailureAnalysis`` (redacted). See ``analyzer.py`` for how the
confidence is computed and ``signatures.yaml`` for the knowledge base.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["analyze_context", "analyze_text", "analyze_workflow", "wrapper_hints"]

_EXPORTS = {
    "analyze_text": "api",
    "analyze_context": "api",
    "analyze_workflow": "api",
    "wrapper_hints": "knowledge",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
