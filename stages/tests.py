"""Test execution: run the test suite; a second attempt absorbs flaky tests.

Spec default: 2 attempts, linear backoff in 30s increments (the first retry waits 30s; a third
attempt would wait 60s). With two attempts the whole delay is Argo's pod-less floor.
"""

from resilient_templates.dsl import Param, Stage
from resilient_templates.policy import Linear, Resources, Retry

test_execution = Stage(
    name="test_execution",
    description="Run the test suite in /workspace/repo.",
    image="{{inputs.parameters.test-image}}",
    script='set -eu\ncd /workspace/repo\nsh -c "$TEST_COMMAND"\n',
    inputs=(
        Param("test-image", default="python:3.12-slim", description="Image with the test toolchain."),
        Param("test-command", default="python -m unittest discover -v",
              description="Test command, run in the checkout."),
    ),  # fmt: skip
    env={"TEST_COMMAND": "{{inputs.parameters.test-command}}"},
    retry=Retry(2, Linear("30s"), attempt_timeout="1800s", budget="61m"),
    resources=Resources(cpu_request="1", cpu_limit="2", memory_request="1Gi", memory_limit="4Gi"),
)
