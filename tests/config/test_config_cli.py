"""``resilient-templates config schema`` and ``config check``, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import tomllib
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from resilient_templates.config.cli import run, schema_text

BROKEN = """\
[pipeline]
ttl_after_failure = "7d"

[retry.repository_clone]
max_attempts = 3
backoff_type = "exponential"
base_duration = "1d"
factor = 1.5
max_duraton = "300s"

[retry.test_execution]
max_attempts = 3
backoff_type = "fixed"
base_duration = "10m"
timeout = "10m"
budget = "30m"

[env.production.retry.repository_clone]
jitter = "sometimes"
"""


class JsonSnapshot(SingleFileSnapshotExtension):
    file_extension = "json"
    _write_mode = WriteMode.TEXT


HERE = Path(__file__).parent


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m resilient_templates config ARGS`, with fixture_stages importable."""
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "resilient_templates", "config", *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )


def test_check_prints_one_line_per_problem_and_no_traceback(tmp_path: Path) -> None:
    """A broken file exits 2 with every problem on its own line, each naming file and key."""
    path = tmp_path / "resilient.toml"
    path.write_text(BROKEN, encoding="utf-8")
    result = cli("check", str(path), "--stages", "fixture_stages")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.removeprefix("error: ").splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert [line.split(": ")[1] for line in lines] == [
        "pipeline.ttl_after_failure",
        "retry.repository_clone.base_duration",
        "retry.repository_clone.factor",
        "retry.repository_clone.max_duraton",
        "env.production.retry.repository_clone.jitter",
        "retry.test_execution.budget",
    ]
    assert result.stderr.startswith("error: ")


def test_check_prints_ok_for_a_valid_file(tmp_path: Path) -> None:
    """A valid file prints 'ok' and exits 0."""
    path = tmp_path / "resilient.toml"
    path.write_text(
        "[retry.clone]\nmax_attempts = 2\n[env.production.retry.clone]\nmax_attempts = 4\n"
    )
    result = cli("check", str(path), "--env", "production", "--stages", "none")
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\n", "")


def test_check_without_env_checks_every_env(tmp_path: Path) -> None:
    """Without --env, a problem that only one overlay creates is still found."""
    path = tmp_path / "resilient.toml"
    path.write_text(
        '[retry.x]\nmax_attempts = 2\nbackoff_type = "fixed"\nbase_duration = "1m"\n'
        "[env.production.retry.x]\nbudget = \"30s\"\n"
    )
    result = cli("check", str(path), "--stages", "none")
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {path}: env.production.retry.x.budget: schedule longer than its budget: the "
        "waits alone take 1m (1m) but the stage budget is 30s; lower max_attempts or the "
        "delays, or raise the budget (got '30s'; expected a budget of at least 1m)\n"
    )


def test_check_with_an_unknown_env_lists_the_known_ones(tmp_path: Path) -> None:
    """--env with a name the file does not define is one line."""
    path = tmp_path / "resilient.toml"
    path.write_text("[env.production]\n[env.staging]\n")
    result = cli("check", str(path), "--env", "prod", "--stages", "none")
    assert (result.returncode, result.stderr) == (
        2, f"error: {path}: env: unknown environment 'prod' (expected one of production, staging)\n"
    )


def test_check_knows_the_stage_defaults(tmp_path: Path) -> None:
    """With --stages, a key only the stage's default makes inapplicable is caught."""
    path = tmp_path / "resilient.toml"
    path.write_text("[retry.code_analysis]\nfactor = 3\n[retry.clone]\nmax_attempts = 2\n")
    result = cli("check", str(path), "--stages", "fixture_stages:STAGES")
    assert result.returncode == 2
    assert result.stderr.removeprefix("error: ").splitlines() == [
        f"{path}: retry.clone: unknown stage 'clone' (expected one of code_analysis, "
        "repository_clone, test_execution)",
        f"{path}: retry.code_analysis.factor: 'factor' does not apply to backoff_type 'fixed' "
        "(it is an exponential key) (got 3; expected one of the keys fixed backoff takes: "
        "max_attempts, backoff_type, base_duration, timeout, budget, retry_on)",
    ]


def test_check_uses_the_project_stages_by_default(tmp_path: Path) -> None:
    """Without --stages, the project's own stages decide which names exist."""
    path = tmp_path / "resilient.toml"
    path.write_text("[retry.no_such_stage]\nmax_attempts = 2\n")
    result = cli("check", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"error: {path}: retry.no_such_stage: unknown stage 'no_such_stage' (expected one of "
    )


def test_check_with_unimportable_stages_is_one_line(tmp_path: Path) -> None:
    """A --stages module that cannot be imported is reported, not a traceback."""
    path = tmp_path / "resilient.toml"
    path.write_text("")
    result = cli("check", str(path), "--stages", "no_such_module_here")
    assert (result.returncode, result.stderr) == (
        2,
        "error: --stages: cannot load the stage defaults: No module named "
        "'no_such_module_here' (got 'no_such_module_here'; expected MODULE[:ATTR] naming the "
        "stages, or 'none')\n",
    )


def test_schema_matches_its_snapshot(snapshot: object) -> None:
    """The JSON Schema editors use is deterministic and changes only deliberately."""
    assert schema_text() == snapshot(extension_class=JsonSnapshot)  # type: ignore[operator]


def test_schema_command_writes_the_same_schema(tmp_path: Path) -> None:
    """`config schema --output FILE` writes exactly what `config schema` prints."""
    out = tmp_path / "resilient.schema.json"
    assert run(["config", "schema", "--output", str(out)]) == 0
    printed = cli("schema")
    assert printed.returncode == 0
    assert out.read_text(encoding="utf-8") == printed.stdout == schema_text()


def test_schema_accepts_a_valid_file_and_rejects_an_unknown_key() -> None:
    """The schema agrees with the loader on the shape: what loads validates, typos do not."""
    schema = json.loads(schema_text())
    validator = jsonschema.Draft202012Validator(schema)
    good = tomllib.loads(
        '[pipeline]\ndeadline = "2h"\n[retry.clone]\nmax_attempts = 3\nbase_duration = 30\n'
        '[resources.clone]\ncpu_limit = 0.5\n[env.prod.retry.clone]\njitter = "full"\n'
    )
    assert list(validator.iter_errors(good)) == []
    bad = tomllib.loads('[retry.clone]\nmax_attempt = 3\nbase_duration = "1d"\n')
    messages = sorted(e.message for e in validator.iter_errors(bad))
    assert len(messages) == 2
    assert any("max_attempt" in m for m in messages)


@pytest.mark.parametrize("argv", [["config"], ["config", "frobnicate"]])
def test_bad_usage_exits_2(argv: list[str]) -> None:
    """Missing or unknown actions are argparse usage errors (exit 2)."""
    with pytest.raises(SystemExit) as caught:
        run(argv)
    assert caught.value.code == 2
