"""The command line, run as users run it: ``python -m resilient_templates validate ...`` in a
subprocess. Output is one line per problem and a summary; never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: good
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      image: busybox
"""

BAD = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: bad
spec:
  entrypoint: main
  templates:
  - name: main
    retryStrategy:
      limitt: "2"
      backoff: {duration: "5s", factor: "1.5"}
    container:
      image: busybox
"""


def validate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resilient_templates", "validate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def schema_env(schema_file: Path) -> dict[str, str]:
    return {**os.environ, "ARGO_SCHEMA": str(schema_file)}


def test_valid_manifests_exit_zero_with_a_summary(tmp_path: Path, schema_env: dict[str, str]) -> None:
    """Exit 0, the summary on stdout, the schema's origin on stderr."""
    (tmp_path / "good.yaml").write_text(GOOD)
    result = validate(str(tmp_path), env=schema_env)
    assert (result.returncode, result.stdout) == (0, "1 Argo documents checked, 0 invalid, 0 other documents skipped\n")
    assert result.stderr == f"schema: ARGO_SCHEMA={schema_env['ARGO_SCHEMA']}\n"


def test_problems_are_printed_one_per_line_and_exit_one(tmp_path: Path, schema_env: dict[str, str]) -> None:
    """Each problem is one line naming file, document, path, value and rule; exit 1."""
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = validate(str(path), env=schema_env)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}#0 WorkflowTemplate/bad spec.templates[0].retryStrategy.backoff.factor: backoff factor must be an "
        "integer: Argo parses it with strconv.Atoi and errors the node at run time "
        '(got "1.5"; expected an integer such as 2 or "2") [integer]',
        f"{path}#0 WorkflowTemplate/bad spec.templates[0].retryStrategy.limit: retryStrategy has no limit, so Argo "
        "would retry forever and skip the backoff (expected an explicit limit, the number of retries after the "
        'first attempt, e.g. limit: "2") [retry-limit]',
        f'{path}#0 WorkflowTemplate/bad spec.templates[0].retryStrategy.limitt: unknown field "limitt" (expected '
        'one of: affinity, backoff, expression, limit, retryPolicy; did you mean "limit"?) [schema]',
        "1 Argo documents checked, 1 invalid, 0 other documents skipped",
    ]
    assert "Traceback" not in result.stderr


def test_a_missing_path_exits_two_with_one_line(tmp_path: Path, schema_env: dict[str, str]) -> None:
    """A wrong argument is a one-line error and exit 2."""
    result = validate(str(tmp_path / "nope"), env=schema_env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {tmp_path / 'nope'}: no such file or directory\n"


def test_an_unreadable_schema_option_exits_two_with_one_line(tmp_path: Path, schema_env: dict[str, str]) -> None:
    """--schema naming a missing file is a one-line error, not a traceback."""
    (tmp_path / "good.yaml").write_text(GOOD)
    result = validate(str(tmp_path), "--schema", str(tmp_path / "s.json"), env=schema_env)
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path / 's.json'}: cannot read the Argo schema (No such file or directory)\n"


def test_broken_yaml_is_reported_not_raised(tmp_path: Path, schema_env: dict[str, str]) -> None:
    """A YAML syntax error is a problem line with its position; exit 1, no traceback."""
    path = tmp_path / "broken.yaml"
    path.write_text("kind: [unclosed\n")
    result = validate(str(path), env=schema_env)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(f"{path}#0 ?/? (document): not valid YAML: line 2, column 1: ")
    assert "Traceback" not in result.stderr


def test_without_a_schema_the_skip_is_announced_loudly(
    tmp_path: Path, no_schema_env: dict[str, str]
) -> None:
    """Semantic problems are still printed, and stderr carries a banner saying schema checks were SKIPPED."""
    (tmp_path / "bad.yaml").write_text(BAD)
    result = validate(str(tmp_path), env=no_schema_env)
    assert result.returncode == 1
    assert [line.split(" [")[-1] for line in result.stdout.splitlines()[:-1]] == ["integer]", "retry-limit]"]
    banner = result.stderr.splitlines()
    assert banner[0] == "!" * 78
    assert banner[1] == "!! WARNING: Argo JSON schema validation was SKIPPED."
    assert banner[2].startswith("!! Why: ARGO_SCHEMA is not set; no cached copy at ")
    assert "Connection refused" in banner[2]


def test_require_schema_makes_the_skip_an_error(tmp_path: Path, no_schema_env: dict[str, str]) -> None:
    """--require-schema exits 2 when no schema is available, saying so on stderr."""
    (tmp_path / "good.yaml").write_text(GOOD)
    result = validate(str(tmp_path), "--require-schema", env=no_schema_env)
    assert (result.returncode, result.stdout) == (2, "")
    assert "!! ERROR: Argo JSON schema validation was SKIPPED." in result.stderr
    assert result.stderr.endswith("error: --require-schema: no Argo schema available; nothing was validated\n")
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_two(schema_env: dict[str, str]) -> None:
    """No PATH is a usage error from argparse (exit 2), not a crash."""
    result = validate(env=schema_env)
    assert result.returncode == 2
    assert "usage: resilient-templates validate" in result.stderr
