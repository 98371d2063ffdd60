"""The one failure taxonomy shared by every layer.

The same words decide retry (lowering), classification (runtime analysis), severity and routing
(notification) and metric labels. Nothing here imports anything beyond the stdlib.

Categories are the spec's five root causes; ``unknown`` is the honest answer below the
confidence threshold. ``transient`` is a separate axis: worth retrying with the same inputs.

The stage wrapper passes a short hint to Argo through the container's termination message
(``/dev/termination-log``), which Argo appends to the node message: ``main: Error (exit code 1):
rt:transient category=external_dependency signature=github-rate-limit``. That text reaches
``{{lastRetry.message}}`` (retry expressions) and ``{{workflow.failures}}`` (exit handlers).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "Category",
    "EXIT_TIMEOUT",
    "EXIT_TRANSIENT",
    "Hint",
    "HINT_PERMANENT",
    "HINT_TRANSIENT",
    "Severity",
    "default_severity",
    "format_hint",
    "parse_hint",
]


class Category(str, enum.Enum):
    INFRASTRUCTURE = "infrastructure"  # Kubernetes, nodes, network, storage
    CONFIGURATION = "configuration"  # invalid settings, missing Secrets/ConfigMaps, RBAC
    EXTERNAL_DEPENDENCY = "external_dependency"  # GitHub API, registries, third parties
    CODE_QUALITY = "code_quality"  # compile errors, test failures, lint, coverage gates
    RESOURCE_EXHAUSTION = "resource_exhaustion"  # memory, CPU, disk, file descriptors
    UNKNOWN = "unknown"  # below the confidence threshold: we do not guess


class Severity(str, enum.Enum):
    """PagerDuty Events v2 severities, most severe first."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.ERROR: 1, Severity.WARNING: 2, Severity.INFO: 3}

_DEFAULT_SEVERITY = {
    Category.INFRASTRUCTURE: Severity.CRITICAL,
    Category.CONFIGURATION: Severity.ERROR,
    Category.EXTERNAL_DEPENDENCY: Severity.ERROR,
    Category.CODE_QUALITY: Severity.WARNING,
    Category.RESOURCE_EXHAUSTION: Severity.ERROR,
    Category.UNKNOWN: Severity.ERROR,
}


def default_severity(category: Category | str) -> Severity:
    """The severity of a category when its signature does not set one."""
    return _DEFAULT_SEVERITY[Category(category)]


#: sysexits EX_TEMPFAIL: a stage command (or its wrapper) declares the failure safe to retry.
EXIT_TRANSIENT = 75
#: GNU timeout's code; the wrapper uses it when the attempt's soft deadline killed the command.
EXIT_TIMEOUT = 124

HINT_TRANSIENT = "rt:transient"
HINT_PERMANENT = "rt:permanent"
_HINT = re.compile(
    r"rt:(?P<kind>transient|permanent)"
    r"(?:\s+category=(?P<category>[a-z_]+))?"
    r"(?:\s+signature=(?P<signature>[A-Za-z0-9_.-]+))?"
    r"(?:\s+exit=(?P<exit>-?[0-9]+))?"
    r"(?:\s+signal=(?P<signal>[A-Z0-9]+))?"
    r"(?:\s+delay=(?P<delay>[0-9]+))?"
)


@dataclass(frozen=True, slots=True)
class Hint:
    transient: bool
    category: Category | None = None
    signature: str | None = None
    exit_code: int | None = None
    signal: str | None = None
    delay: int | None = None


def format_hint(hint: Hint) -> str:
    """The termination-message text; the wrapper's shell produces the same shape."""
    parts = [HINT_TRANSIENT if hint.transient else HINT_PERMANENT]
    if hint.category is not None:
        parts.append(f"category={Category(hint.category).value}")
    if hint.signature:
        parts.append(f"signature={hint.signature}")
    if hint.exit_code is not None:
        parts.append(f"exit={hint.exit_code}")
    if hint.signal:
        parts.append(f"signal={hint.signal}")
    if hint.delay is not None:
        parts.append(f"delay={hint.delay}")
    return " ".join(parts)


def parse_hint(message: str | None) -> Hint | None:
    """Find the wrapper's hint anywhere in an Argo node message; None when absent."""
    if not message:
        return None
    match = _HINT.search(message)
    if match is None:
        return None
    category = match["category"]
    try:
        cat = Category(category) if category else None
    except ValueError:
        cat = None
    return Hint(
        transient=match["kind"] == "transient",
        category=cat,
        signature=match["signature"],
        exit_code=int(match["exit"]) if match["exit"] else None,
        signal=match["signal"],
        delay=int(match["delay"]) if match["delay"] else None,
    )
