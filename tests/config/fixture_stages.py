"""Stage defaults for the `config check --stages fixture_stages` subprocess tests."""

from __future__ import annotations

from resilient_templates.policy import Exponential, Fixed, Linear, Retry

STAGES = {
    "repository_clone": Retry(3, Exponential("30s", cap="300s"), attempt_timeout="600s"),
    "test_execution": Retry(2, Linear("30s"), attempt_timeout="1800s"),
    "code_analysis": Retry(2, Fixed("60s")),
}
