"""Snapshots of every channel's rendered payload for representative notifications.

Review a diff with ``pytest tests/runtime/notify/core/test_snapshots.py --snapshot-update`` and
``git diff``: a changed snapshot is a changed message someone will read at 3 am.
Strings longer than 4,000 characters are stored as head, tail and a SHA-256 so the huge-log
snapshots stay readable while still locking the exact content.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from samples import huge_analysis, make_analysis, make_notification, outage, templated_log_analysis
from syrupy.extensions.json import JSONSnapshotExtension

from resilient_templates.policy.taxonomy import Category, Severity
from resilient_templates.runtime.notify.channels import build_channel
from resilient_templates.runtime.notify.plan import ChannelPlan

SETTINGS = {
    "slack": {"webhook_url": "${SLACK_WEBHOOK_URL}"},
    "teams": {"webhook_url": "${TEAMS_WORKFLOW_URL}"},
    "pagerduty": {"integration_key": "${PAGERDUTY_KEY}"},
    "webhook": {"url": "https://audit.example.com/hook", "secret": "${WEBHOOK_HMAC_SECRET}"},
    "email": {"smtp_host": "smtp.example.com", "from": "rt@example.com", "to": ["team@example.com"]},
}


def mixed_group() -> tuple:  # type: ignore[type-arg]
    """Three failures with different causes in one group (group_by: [namespace])."""
    return (
        make_analysis("release-1", severity=Severity.CRITICAL, url="https://argo.example.com/workflows/ci/release-1"),
        make_analysis(
            "nightly-2", stage="test", category=Category.CODE_QUALITY, signature="pytest-failures",
            severity=Severity.WARNING, transient=False, confidence=0.81,
            log_tail="FAILED tests/test_api.py::test_create - AssertionError: 500 != 201\n",
            evidence=("FAILED tests/test_api.py::test_create - AssertionError: 500 != 201",),
            description="Unit tests failed.", recommendation="Fix the failing test",
            message="main: Error (exit code 1)", url="https://argo.example.com/workflows/ci/nightly-2",
        ),
        make_analysis(
            "deploy-3", stage="deploy", category=Category.UNKNOWN, signature=None, confidence=0.31, transient=False,
            log_tail="Error from server (Forbidden): deployments.apps is forbidden\n", evidence=(), description="",
            recommendation="Read the log; no known signature matched", message="main: Error (exit code 1)",
            url="https://argo.example.com/workflows/ci/deploy-3",
        ),
    )


SCENARIOS = {
    "single": lambda: make_notification(),
    "outage23": lambda: make_notification(outage(23)),
    "mixed_group": lambda: make_notification(mixed_group(), group_labels={"namespace": "ci"}, title="3 failures in ci"),
    "escalation": lambda: make_notification(kind="escalation", escalation_level=2),
    "reminder": lambda: make_notification(kind="reminder", repeat=3),
    "acknowledged": lambda: make_notification((), kind="acknowledged", title="release-7f3k2/pr_operations failed: github-rate-limit"),
    "resolved": lambda: make_notification((), kind="resolved", count=23, title="23 workflows recovered: github-rate-limit"),
    "huge_log": lambda: make_notification((huge_analysis(),)),
    "template_injection": lambda: make_notification((templated_log_analysis(),)),
}


def abbreviate(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: abbreviate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [abbreviate(v) for v in value]
    if isinstance(value, str) and len(value) > 4_000:
        digest = hashlib.sha256(value.encode()).hexdigest()[:16]
        return {"chars": len(value), "sha256": digest, "head": value[:300], "tail": value[-600:]}
    return value


@pytest.fixture
def snapshot_json(snapshot):  # type: ignore[no-untyped-def]
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kind", SETTINGS)
def test_rendered_payload(snapshot_json, kind: str, scenario: str) -> None:  # type: ignore[no-untyped-def]
    """The rendered payload of each channel for each scenario matches its reviewed snapshot."""
    channel = build_channel(ChannelPlan(f"{kind}-main", kind, settings=SETTINGS[kind]))
    message = channel.render(SCENARIOS[scenario]())
    assert abbreviate({"idempotency_key": message.idempotency_key, "meta": dict(message.meta), "body": dict(message.body)}) == snapshot_json


@pytest.mark.parametrize("kind", SETTINGS)
def test_render_is_deterministic(kind: str) -> None:
    """Rendering the same notification twice gives identical bytes (outbox rows are stable)."""
    channel = build_channel(ChannelPlan(f"{kind}-main", kind, settings=SETTINGS[kind]))
    first, second = (channel.render(make_notification(outage(5))).to_json() for _ in range(2))
    assert first == second
