"""Lowering: DSL values → Hera objects. The only package that imports Hera.

One small function per feature; ``pipeline_template`` assembles them. Every function returns
plain Hera objects built without an ambient ``with`` context, so they also work inside a user's
own ``with WorkflowTemplate(...)`` block (Hera registers a template created inside a context):

    from hera.workflows import DAG, WorkflowTemplate
    from resilient_templates.lower import stage_template
    from resilient_templates.stages import repository_clone

    with WorkflowTemplate(name="mine", entrypoint="main") as wt:
        clone = stage_template(repository_clone)
        with DAG(name="main"):
            clone(arguments={"repo-url": "https://github.com/argoproj/argo-workflows"})
"""

from __future__ import annotations

from .pipeline import (
    exit_handler_templates,
    gate_template,
    pipeline_template,
    stage_library,
    tick_cron_workflow,
)
from .retry import RetryLowering, lower_retry, retry_lowering
from .stage import stage_template

__all__ = [
    "RetryLowering",
    "exit_handler_templates",
    "gate_template",
    "lower_retry",
    "pipeline_template",
    "retry_lowering",
    "stage_library",
    "stage_template",
    "tick_cron_workflow",
]
