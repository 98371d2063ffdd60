"""The spec's pipeline: clone → analysis → tests → coverage → (approval) → PR, with the failure path.

``build_pipeline(config)`` applies the project config (stages/resilient.toml, optionally an
environment overlay) to the stages' defaults; ``make generate`` lowers the result.
"""

from __future__ import annotations

from resilient_templates.dsl import ApprovalGate, ExitHandler, Param, Pipeline

from . import STAGES

#: Workflow arguments; stage inputs of the same name receive them.
PARAMETERS = (
    Param("repo-url", description="Git URL of the repository under test."),
    Param("revision", default="HEAD", description="Branch, tag or commit to check out."),
    Param("repo", description="GitHub repository (owner/name) for the pull request."),
    Param("head", description="Branch with the changes."),
    Param("base", default="main", description="Branch to merge into."),
    Param("pr-title", default="Automated changes", description="Pull request title."),
    Param("analysis-image", default="python:3.12-slim"),
    Param("analysis-command", default="python -m compileall -q ."),
    Param("test-image", default="python:3.12-slim"),
    Param("test-command", default="python -m unittest discover -v"),
    Param("coverage-image", default="python:3.12-slim"),
    Param(
        "coverage-command",
        default="pip install -q coverage && coverage run -m unittest discover && "
        "coverage report --fail-under=80",
    ),
)


def build_pipeline(config=None) -> Pipeline:
    """The pipeline with ``config`` (a ``resilient_templates.config.ProjectConfig``) applied."""
    stages = STAGES
    if config is None:
        return Pipeline(
            name="resilient-pipeline",
            stages=stages,
            parameters=PARAMETERS,
            gate=ApprovalGate(before="pr_operations", name="approve-pr"),
            on_exit=ExitHandler(runtime_image="ghcr.io/resilient-templates/runtime:0.1.0"),
        )
    settings = config.pipeline
    stages = tuple(
        s.with_(retry=config.retry_for(s.name, s.retry), resources=config.resources_for(s.name, s.resources))
        for s in stages
    )
    return Pipeline(
        name=settings.name,
        namespace=settings.namespace,
        stages=stages,
        parameters=PARAMETERS,
        deadline=settings.deadline,
        service_account=settings.service_account,
        pod_gc=settings.pod_gc,
        ttl_after_success=settings.ttl_after_success,
        ttl_after_failure=settings.ttl_after_failure,
        gate=ApprovalGate(
            before="pr_operations",
            name="approve-pr",
            timeout=settings.approval_timeout,
            default=settings.approval_default,
            description="Open the pull request? approve or reject.",
        ),
        on_exit=ExitHandler(runtime_image=settings.runtime_image),
    )
