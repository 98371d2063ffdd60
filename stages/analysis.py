"""Code analysis: run the project's linters/static analysis on the checkout.

Spec default: 2 attempts, fixed 60s between them. The image and command are workflow
parameters, so one pipeline serves many projects.
"""

from resilient_templates.dsl import Param, Stage
from resilient_templates.policy import Fixed, Resources, Retry

code_analysis = Stage(
    name="code_analysis",
    description="Run static analysis on /workspace/repo.",
    image="{{inputs.parameters.analysis-image}}",
    script='set -eu\ncd /workspace/repo\nsh -c "$ANALYSIS_COMMAND"\n',
    inputs=(
        Param("analysis-image", default="python:3.12-slim", description="Image with the linters."),
        Param("analysis-command", default="python -m compileall -q .",
              description="Analysis command, run in the checkout."),
    ),  # fmt: skip
    env={"ANALYSIS_COMMAND": "{{inputs.parameters.analysis-command}}"},
    retry=Retry(2, Fixed("60s"), attempt_timeout="15m", budget="32m"),
    resources=Resources(
        cpu_request="500m", cpu_limit="2", memory_request="512Mi", memory_limit="2Gi"
    ),
)
