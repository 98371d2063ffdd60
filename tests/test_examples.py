"""examples/: a user's own Hera pipeline importing resilient stages produces valid Argo YAML."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_output(example, snapshot, tmp_path):
    """Each example prints a manifest that matches its snapshot and passes strict validation."""
    out = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, check=True)
    assert out.stdout == snapshot
    doc = yaml.safe_load(out.stdout)
    assert doc["kind"] == "WorkflowTemplate"
    (tmp_path / "example.yaml").write_text(out.stdout)
    from resilient_templates.errors import ValidationError
    from resilient_templates.validate import load_schema, validate_paths

    try:
        schema = load_schema(download=False)
    except ValidationError as exc:
        if os.environ.get("RT_REQUIRE_SCHEMA") == "1":
            raise
        pytest.skip(f"strict schema validation of the example is NOT tested: {exc}")
    report = validate_paths([tmp_path], schema=schema, require_schema=True)
    assert [str(p) for p in report.problems] == []


def test_stages_work_inside_a_users_hera_context():
    """stage_template() called inside `with WorkflowTemplate(...)` registers the template there."""
    from hera.workflows import DAG, WorkflowTemplate

    from resilient_templates.lower import stage_template
    from resilient_templates.stages import pr_operations

    with WorkflowTemplate(name="mine", entrypoint="main") as wt:
        pr = stage_template(pr_operations, hints=[])
        with DAG(name="main"):
            pr(arguments={"repo": "o/r", "head": "feature"})
    names = [t["name"] for t in wt.to_dict()["spec"]["templates"]]
    assert names == ["pr-operations", "main"]
