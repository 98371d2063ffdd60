"""The FailureAnalysis document round-trips and is safe to pass through Argo parameters."""

from __future__ import annotations

from resilient_templates.policy.taxonomy import Category, Severity
from resilient_templates.runtime.model import (
    ErrorDetails, FailureAnalysis, RootCause, WorkflowRef, argo_safe,
)  # fmt: skip


def _analysis(text: str) -> FailureAnalysis:
    return FailureAnalysis(
        failure_id="f1", workflow=WorkflowRef("wf-1", "ci"), stage="tests", created_at="2026-11-28T00:00:00Z",
        error=ErrorDetails(message=text, log_tail=text),
        root_cause=RootCause(Category.CODE_QUALITY, False, 0.9, "pytest-failure", evidence=(text,)),
        severity=Severity.WARNING,
    )  # fmt: skip


def test_failure_text_cannot_become_an_argo_template_tag():
    """A log line with {{…}} or {{=…}} reaches Argo's parameters escaped, and decodes unchanged."""
    text = "boom {{workflow.name}} {{=sprig.trunc(3, 'abcdef')}} {{inputs.parameters.x}} }} {"
    analysis = _analysis(text)
    encoded = analysis.to_json()
    assert "{{" not in encoded
    assert FailureAnalysis.from_json(encoded) == analysis


def test_argo_safe_only_touches_double_braces():
    """Plain JSON without {{ is unchanged."""
    assert argo_safe('{"a": {"b": "x{y}"}}') == '{"a": {"b": "x{y}"}}'
