"""The FailureAnalysis document: the contract between analysis and notification.

``resilient-runtime analyze`` writes it (JSON), ``resilient-runtime notify`` reads it, the
history store keeps it. Plain stdlib dataclasses: the runtime never imports pydantic.
``SCHEMA_VERSION`` changes only with an incompatible change; readers ignore unknown keys.

Routing labels (``FailureAnalysis.labels()``) are the Alertmanager-style key/values that the
notification route tree matches on: ``workflow``, ``namespace``, ``stage``, ``category``,
``severity``, ``signature``, ``transient``, ``status``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..policy.taxonomy import Category, Severity

__all__ = [
    "SCHEMA_VERSION",
    "argo_safe",
    "ErrorDetails",
    "FailureAnalysis",
    "History",
    "Impact",
    "Recommendation",
    "RetryAdvice",
    "RootCause",
    "WorkflowRef",
]

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    name: str
    namespace: str = ""
    uid: str = ""
    status: str = ""  # Argo workflow.status: Succeeded | Failed | Error | Running
    url: str = ""  # link to the Argo UI, when known


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    message: str = ""  # the Argo node message (redacted)
    exit_code: int | None = None
    signal: str | None = None
    reason: str | None = None  # pod/container reason: OOMKilled, Evicted, DeadlineExceeded…
    phase: str | None = None  # Argo node phase: Failed | Error
    node: str | None = None  # Argo displayName of the failed node
    attempts: int | None = None  # attempts made (retries + 1)
    duration_seconds: float | None = None
    log_tail: str = ""  # last lines of output (redacted)


@dataclass(frozen=True, slots=True)
class RootCause:
    category: Category
    transient: bool
    confidence: float  # calibrated probability that category is right, in [0, 1]
    signature: str | None = None  # knowledge-base signature name; None when unknown
    description: str = ""
    evidence: tuple[str, ...] = ()  # the log/message lines that matched (redacted)


@dataclass(frozen=True, slots=True)
class Impact:
    blocked_stages: tuple[str, ...] = ()  # downstream stages that will not run
    retry_budget_left: int | None = None  # attempts still allowed by the stage's policy
    workflow_failed: bool = True


@dataclass(frozen=True, slots=True)
class Recommendation:
    action: str  # short imperative: "Wait for the rate limit to reset"
    detail: str = ""
    automated: bool = False  # True when the retry policy already does it


@dataclass(frozen=True, slots=True)
class RetryAdvice:
    retry: bool
    delay_seconds: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class History:
    seen_count: int = 0  # similar failures (same signature and stage) in the window
    window_days: int = 7
    last_seen: str | None = None  # RFC 3339
    last_resolution: str | None = None  # what resolved the last one, when recorded

    @property
    def summary(self) -> str:
        """``seen 3 times in 7 days; last resolved by …``; empty when nothing similar is known."""
        parts = []
        if self.seen_count > 0:
            plural = "" if self.seen_count == 1 else "s"
            parts.append(f"seen {self.seen_count} time{plural} in {self.window_days} days")
        if self.last_resolution:
            parts.append(f"last resolved by {self.last_resolution}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class FailureAnalysis:
    failure_id: str
    workflow: WorkflowRef
    stage: str
    created_at: str  # RFC 3339, UTC
    error: ErrorDetails
    root_cause: RootCause
    severity: Severity
    impact: Impact = field(default_factory=Impact)
    recommendations: tuple[Recommendation, ...] = ()
    retry_advice: RetryAdvice = field(default_factory=lambda: RetryAdvice(retry=False))
    history: History = field(default_factory=History)
    degraded: tuple[str, ...] = ()  # why parts of the analysis are missing, if any
    schema_version: int = SCHEMA_VERSION

    @property
    def summary(self) -> str:
        """One line for a pager or a chat title."""
        cause = self.root_cause.signature or self.root_cause.category.value
        return f"{self.workflow.name}/{self.stage} failed: {cause}"

    def labels(self) -> dict[str, str]:
        return {
            "workflow": self.workflow.name,
            "namespace": self.workflow.namespace,
            "stage": self.stage,
            "category": self.root_cause.category.value,
            "severity": self.severity.value,
            "signature": self.root_cause.signature or "",
            "transient": "true" if self.root_cause.transient else "false",
            "status": self.workflow.status,
        }

    def to_dict(self) -> dict[str, Any]:
        return _encode(self)

    def to_json(self, **kwargs: Any) -> str:
        """JSON safe to pass through Argo parameters: a ``{{`` in failure text (a log line can
        contain ``{{=expr}}``) is written as ``{\\u007b``, which Argo's templating does not see
        and every JSON reader decodes back to ``{{``."""
        return argo_safe(json.dumps(self.to_dict(), ensure_ascii=False, **kwargs))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailureAnalysis:
        rc = data.get("root_cause") or {}
        return cls(
            failure_id=str(data["failure_id"]),
            workflow=_build(WorkflowRef, data.get("workflow") or {"name": ""}),
            stage=str(data.get("stage", "")),
            created_at=str(data.get("created_at", "")),
            error=_build(ErrorDetails, data.get("error") or {}),
            root_cause=RootCause(
                category=Category(rc.get("category", "unknown")),
                transient=bool(rc.get("transient", False)),
                confidence=float(rc.get("confidence", 0.0)),
                signature=rc.get("signature"),
                description=rc.get("description", ""),
                evidence=tuple(rc.get("evidence", ())),
            ),
            severity=Severity(data.get("severity", "error")),
            impact=_build(Impact, data.get("impact") or {}),
            recommendations=tuple(
                _build(Recommendation, r) for r in data.get("recommendations") or ()
            ),
            retry_advice=_build(RetryAdvice, data.get("retry_advice") or {"retry": False}),
            history=_build(History, data.get("history") or {}),
            degraded=tuple(data.get("degraded") or ()),
            schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
        )

    @classmethod
    def from_json(cls, text: str) -> FailureAnalysis:
        return cls.from_dict(json.loads(text))


def argo_safe(json_text: str) -> str:
    """Escape ``{{`` in JSON text so Argo never evaluates failure text as a template tag.

    ``{{`` can only occur inside JSON strings (structural braces are followed by ``"`` or
    ``}``), where ``\\u007b`` is an equivalent escape.
    """
    return json_text.replace("{{", "{\\u007b")


def _build(kind: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
    return kind(**values)


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (Category, Severity)):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value
