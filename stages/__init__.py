"""The five stages of the spec, importable into any Hera pipeline.

    from resilient_templates.stages import repository_clone, test_execution
    from resilient_templates.lower import stage_template

Each stage carries the spec's resilience defaults; ``stages/resilient.toml`` (the project's
config) overrides them per environment at generation time.
"""

from .analysis import code_analysis
from .coverage import coverage_analysis
from .pull_request import pr_operations
from .repository import repository_clone
from .tests import test_execution

#: Pipeline order: clone → analysis → tests → coverage → PR.
STAGES = (repository_clone, code_analysis, test_execution, coverage_analysis, pr_operations)

__all__ = [
    "STAGES",
    "code_analysis",
    "coverage_analysis",
    "pr_operations",
    "repository_clone",
    "test_execution",
]
