"""Coverage analysis: measure coverage and enforce the threshold.

Spec default: 2 attempts, exponential backoff (one retry after 30s). A coverage value below the
threshold is a code-quality failure; the command should exit non-zero with a message that says so.
"""

from resilient_templates.dsl import Output, Param, Stage
from resilient_templates.policy import Exponential, Resources, Retry

coverage_analysis = Stage(
    name="coverage_analysis",
    description="Measure test coverage and fail below the threshold.",
    image="{{inputs.parameters.coverage-image}}",
    # No pipe into tee: dash has no pipefail, so `cmd | tee` would hide a failed threshold.
    script=(
        "set -u\ncd /workspace/repo\n"
        'sh -c "$COVERAGE_COMMAND" >/tmp/rt/coverage.txt 2>&1 && rc=0 || rc=$?\n'
        "cat /tmp/rt/coverage.txt\n"
        "exit $rc\n"
    ),
    inputs=(
        Param("coverage-image", default="python:3.12-slim", description="Image with the coverage tool."),
        Param("coverage-command",
              default="pip install -q coverage && coverage run -m unittest discover && "
                      "coverage report --fail-under=80",
              description="Coverage command; exits non-zero below the threshold."),
    ),  # fmt: skip
    env={"COVERAGE_COMMAND": "{{inputs.parameters.coverage-command}}"},
    outputs=(Output("report", path="/tmp/rt/coverage.txt", description="Coverage report text."),),
    retry=Retry(2, Exponential("30s", factor=2), attempt_timeout="20m", budget="41m"),
    resources=Resources(cpu_request="1", cpu_limit="2", memory_request="1Gi", memory_limit="4Gi"),
)
