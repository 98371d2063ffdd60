"""Representative analyses and notifications for notification tests (deterministic, no clock)."""

from __future__ import annotations

from resilient_templates.policy.taxonomy import Category, Severity
from resilient_templates.runtime.model import (
    ErrorDetails,
    FailureAnalysis,
    History,
    Impact,
    Recommendation,
    RetryAdvice,
    RootCause,
    WorkflowRef,
)
from resilient_templates.runtime.notify.notification import (
    Notification,
    group_key,
    highest_severity,
)

CREATED = "2026-09-01T12:00:00Z"

RATE_LIMIT_LOG = """\
Cloning into 'repo'...
remote: Enumerating objects: 1024, done.
POST https://api.github.com/repos/acme/widgets/pulls
HTTP/2 403
x-ratelimit-remaining: 0
x-ratelimit-reset: 1788264000
{"message":"API rate limit exceeded for installation ID 4242.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}
error: gh pr create failed: rate limit exceeded
"""


def make_analysis(
    workflow: str = "release-7f3k2",
    *,
    stage: str = "pr_operations",
    namespace: str = "ci",
    category: Category = Category.EXTERNAL_DEPENDENCY,
    signature: str | None = "github-rate-limit",
    severity: Severity = Severity.ERROR,
    transient: bool = True,
    confidence: float = 0.93,
    log_tail: str = RATE_LIMIT_LOG,
    message: str = "main: Error (exit code 1): rt:transient category=external_dependency signature=github-rate-limit",
    evidence: tuple[str, ...] = ('{"message":"API rate limit exceeded for installation ID 4242."}',),
    description: str = "GitHub's API refused the request because the installation's hourly rate limit is spent.",
    recommendation: str = "Wait for the rate limit to reset (x-ratelimit-reset), then retry",
    status: str = "Failed",
    url: str = "https://argo.example.com/workflows/ci/release-7f3k2",
) -> FailureAnalysis:
    return FailureAnalysis(
        failure_id=f"{namespace}/{workflow}/{stage}",
        workflow=WorkflowRef(name=workflow, namespace=namespace, uid="3b1e-uid", status=status, url=url),
        stage=stage,
        created_at=CREATED,
        error=ErrorDetails(
            message=message,
            exit_code=1,
            reason="Error",
            phase="Failed",
            node=stage,
            attempts=3,
            duration_seconds=42.5,
            log_tail=log_tail,
        ),
        root_cause=RootCause(
            category=category,
            transient=transient,
            confidence=confidence,
            signature=signature,
            description=description,
            evidence=evidence,
        ),
        severity=severity,
        impact=Impact(blocked_stages=("deploy", "announce"), retry_budget_left=0),
        recommendations=(Recommendation(action=recommendation, detail="", automated=True),),
        retry_advice=RetryAdvice(retry=True, delay_seconds=900, reason="rate limit resets hourly"),
        history=History(seen_count=4, window_days=7, last_seen="2026-08-31T09:00:00Z"),
    )


def make_notification(
    analyses: tuple[FailureAnalysis, ...] | None = None,
    *,
    kind: str = "firing",
    receiver: str = "oncall",
    group_labels: dict[str, str] | None = None,
    title: str | None = None,
    escalation_level: int = 0,
    repeat: int = 0,
    count: int | None = None,
) -> Notification:
    analyses = (make_analysis(),) if analyses is None else analyses
    labels = group_labels if group_labels is not None else {"signature": "github-rate-limit"}
    if title is None:
        title = (
            f"{len(analyses)} workflows failing: {analyses[0].root_cause.signature}"
            if len(analyses) > 1
            else (analyses[0].summary if analyses else "release-7f3k2 recovered")
        )
    return Notification(
        kind=kind,
        incident_key=group_key(receiver, labels),
        group_key=group_key(receiver, labels),
        receiver=receiver,
        group_labels=labels,
        analyses=analyses,
        severity=highest_severity(analyses) if analyses else Severity.ERROR,
        title=title,
        created_at=CREATED,
        escalation_level=escalation_level,
        repeat=repeat,
        count=len(analyses) if count is None else count,
    )


def outage(n: int = 23) -> tuple[FailureAnalysis, ...]:
    """``n`` workflows failing on the same GitHub rate limit (a widespread outage)."""
    return tuple(
        make_analysis(f"release-{i:03d}", url=f"https://argo.example.com/workflows/ci/release-{i:03d}")
        for i in range(n)
    )


def huge_analysis() -> FailureAnalysis:
    """An analysis far beyond every provider limit: 2 MB of log, long texts, 5,000 evidence lines."""
    log = "".join(f"2026-09-01T11:59:{i % 60:02d}Z step {i}: <noise> & more noise {'x' * 80}\n" for i in range(20_000))
    return make_analysis(
        "monorepo-build-9x8",
        stage="build",
        category=Category.RESOURCE_EXHAUSTION,
        signature="oom-killed",
        severity=Severity.CRITICAL,
        transient=False,
        log_tail=log + "FATAL: container killed: OOMKilled (memory limit 2Gi)\n",
        evidence=tuple(f"evidence line {i}: OOMKilled {'y' * 200}" for i in range(5_000)),
        description="The build ran out of memory. " * 2_000,
        recommendation="Raise the build stage's memory limit to 4Gi or split the build",
        message="OOMKilled " + "z" * 50_000,
    )


def templated_log_analysis() -> FailureAnalysis:
    """An analysis whose failure text looks like template code and markup."""
    return make_analysis(
        "inject-1",
        log_tail="{{ 7*7 }} {% for x in range(3) %}loop{% endfor %} <script>alert(1)</script> & <@U123>\n",
        message="{{ config }} <b>bold</b> & <!channel>",
        evidence=("{{ 7*7 }} <!here>",),
        description="{% raw %}x{% endraw %} {{ self.__init__.__globals__ }}",
        recommendation="Check <https://evil.example|this link> & {{ 7*7 }}",
    )
