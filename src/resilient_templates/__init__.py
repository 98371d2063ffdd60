"""resilient-templates: resilient Argo Workflows v4 templates from a Python DSL.

The public names load lazily (PEP 562) so that ``import resilient_templates.runtime`` inside a
failure container never pays for Hera or pydantic.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # pure policy core (stdlib only)
    "Duration": "resilient_templates.policy",
    "Retry": "resilient_templates.policy",
    "RetryOn": "resilient_templates.policy",
    "Exponential": "resilient_templates.policy",
    "Linear": "resilient_templates.policy",
    "Fixed": "resilient_templates.policy",
    "Custom": "resilient_templates.policy",
    "Jitter": "resilient_templates.policy",
    "BreakerConfig": "resilient_templates.policy",
    "Resources": "resilient_templates.policy",
    "Category": "resilient_templates.policy",
    "Severity": "resilient_templates.policy",
    # DSL values
    "Stage": "resilient_templates.dsl",
    "Pipeline": "resilient_templates.dsl",
    "ApprovalGate": "resilient_templates.dsl",
    "ExitHandler": "resilient_templates.dsl",
    # errors
    "ResilientTemplatesError": "resilient_templates.errors",
    "ConfigError": "resilient_templates.errors",
    "PolicyError": "resilient_templates.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'resilient_templates' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
