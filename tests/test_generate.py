"""`make generate`: deterministic, fresh, valid Argo v4 manifests that match `explain`.

Snapshots pin every generated file; update them deliberately with
`.venv/bin/python -m pytest tests/test_generate.py --snapshot-update` and read the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from resilient_templates.generate import generate_files
from resilient_templates.policy import Duration
from resilient_templates.stages import STAGES

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "stages" / "resilient.toml"


@pytest.fixture(scope="module")
def files():
    return {f.path: f.text for f in generate_files(CONFIG)}


@pytest.fixture(scope="module")
def pipeline(files):
    return yaml.safe_load(files["resilient-pipeline.yaml"])


def templates(doc) -> dict:
    return {t["name"]: t for t in doc["spec"]["templates"]}


def test_generated_files(files, snapshot):
    """Every generated file, byte for byte (review snapshot diffs like code)."""
    assert sorted(files) == [
        "env/production/kustomization.yaml",
        "env/production/notify.yaml",
        "env/production/rbac.yaml",
        "env/production/resilient-pipeline.yaml",
        "env/production/resilient-stages.yaml",
        "kustomization.yaml",
        "notify.yaml",
        "rbac.yaml",
        "resilient-pipeline.yaml",
        "resilient-stages.yaml",
    ]
    for path, text in sorted(files.items()):
        assert text == snapshot(name=path)


def test_generated_directory_is_fresh(files):
    """generated/ in the repository is exactly what `make generate` writes now."""
    on_disk = {
        p.relative_to(ROOT / "generated").as_posix(): p.read_text()
        for p in (ROOT / "generated").rglob("*.yaml")
    }
    assert on_disk == files, "generated/ is stale: run `make generate`"


def test_output_is_deterministic_across_processes(files):
    """A second process (fresh imports, different hash seed) writes identical bytes."""
    code = (
        "import json, sys; from resilient_templates.generate import generate_files; "
        f"json.dump({{f.path: f.text for f in generate_files({str(CONFIG)!r})}}, sys.stdout)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    import json

    assert json.loads(out.stdout) == files


def test_yaml_rendering_ignores_heras_global_pyyaml_changes():
    """Hera registers representers on PyYAML's global Dumper; our renderer's output is unchanged."""
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
           "data": {"script": "line1\nline2\n", "expr": "{{=sprig.x}}" * 20}}  # fmt: skip
    code = (
        "import json, sys\n"
        "from resilient_templates.render import dump_documents\n"
        f"print(dump_documents([{doc!r}], source='t'), end='')\n"
    )
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    with_hera = subprocess.run(
        [sys.executable, "-c", "import hera.workflows, hera._yaml\n" + code],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "hera" not in plain.stdout and plain.stdout == with_hera.stdout
    assert "  script: |\n    line1\n    line2\n" in plain.stdout


def _schedule_from_yaml(template: dict) -> list[int]:
    """Re-derive the delays (seconds) Argo + the wrapper will wait, from the YAML alone."""
    strategy = template["retryStrategy"]
    limit = int(strategy["limit"])
    backoff = strategy.get("backoff", {})
    base = Duration.parse(backoff.get("duration", "0")).seconds
    factor = int(backoff.get("factor", "1"))
    cap = Duration.parse(backoff["cap"]).seconds if "cap" in backoff else None
    native = [base * factor**n for n in range(limit)]
    native = [min(d, cap) if cap is not None else d for d in native]
    env = {e["name"]: e.get("value") for e in template["container"]["env"]}
    sleeps = [int(s) for s in env["RT_SLEEPS"].split()] if "RT_SLEEPS" in env else [0] * limit
    return [int(n + s) for n, s in zip(native, sleeps, strict=True)]


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_yaml_schedule_matches_explain(pipeline, stage):
    """The delays encoded in the generated YAML are exactly the configured schedule."""
    from resilient_templates.config import load_config

    config = load_config(CONFIG, stages={s.name: s.retry for s in STAGES})
    retry = config.retry_for(stage.name, stage.retry)
    template = templates(pipeline)[stage.template_name]
    assert _schedule_from_yaml(template) == [int(d.seconds) for d in retry.schedule()]
    assert template["retryStrategy"]["limit"] == str(retry.max_attempts - 1)


def test_production_jitter_bounds_match_the_yaml(files):
    """The production overlay's full-jitter clone draws within the schedule's bounds, per YAML."""
    from resilient_templates.config import load_config

    config = load_config(CONFIG, env="production", stages={s.name: s.retry for s in STAGES})
    retry = config.retry_for("repository_clone", STAGES[0].retry)
    doc = yaml.safe_load(files["env/production/resilient-pipeline.yaml"])
    env = {e["name"]: e.get("value") for e in templates(doc)["repository-clone"]["container"]["env"]}
    bounds = [tuple(int(x) for x in pair.split(":")) for pair in env["RT_BOUNDS"].split()]
    assert env["RT_JITTER"] == "full" and env["RT_FLOOR"] == "0"
    assert bounds == [(int(lo.seconds), int(hi.seconds)) for lo, hi in retry.bounds()]


def test_explain_prints_each_stage_schedule():
    """`resilient-templates explain` prints the five stages' timelines from the same config."""
    out = subprocess.run(
        [sys.executable, "-m", "resilient_templates", "explain", "--config", str(CONFIG)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    for stage in STAGES:
        assert f"stage {stage.name}  (template {stage.template_name})" in out.stdout
    assert "retry 1    waits 30s (Argo, pod-less)\n    attempt 2  starts at +30s" in out.stdout
    assert "retry 2    waits 1m (Argo, pod-less)\n    attempt 3  starts at +1m30s" in out.stdout


def test_happy_path_creates_no_extra_pods(pipeline):
    """On success the exit handler's steps are skipped: no pod beyond the stages' own."""
    spec = pipeline["spec"]
    handler = templates(pipeline)[spec["onExit"]]
    for group in handler["steps"]:
        for step in group:
            assert step["when"] == "'{{workflow.status}}' != 'Succeeded'"


def test_gate_guards_pull_request_with_a_default_decision(pipeline):
    """The PR stage waits for the approval gate and runs only on 'approve'; timeout -> default."""
    t = templates(pipeline)
    gate = t["approve-pr"]
    assert gate["suspend"] == {"duration": "4h"}
    assert gate["outputs"]["parameters"][0]["valueFrom"] == {"default": "reject", "supplied": {}}
    tasks = {task["name"]: task for task in t["main"]["dag"]["tasks"]}
    assert tasks["approve-pr"]["depends"] == "coverage-analysis"
    assert tasks["pr-operations"]["depends"] == "approve-pr"
    assert tasks["pr-operations"]["when"] == (
        "'{{tasks.approve-pr.outputs.parameters.decision}}' == 'approve'"
    )


def test_exit_handler_passes_status_and_failures_to_the_runtime(pipeline):
    """analyze gets workflow.status and workflow.failures; notify runs even if analyze failed."""
    t = templates(pipeline)
    args = t["rt-analyze"]["container"]["args"]
    assert args[args.index("--status") + 1] == "{{workflow.status}}"
    assert args[args.index("--failures") + 1] == "{{workflow.failures}}"
    analyze_step = t["exit-handler"]["steps"][0][0]
    assert analyze_step["continueOn"] == {"failed": True, "error": True}
    assert t["rt-analyze"]["outputs"]["parameters"][0]["valueFrom"]["default"] == "[]"


def test_workflow_settings(pipeline):
    """Deadline, podGC keeping failed pods, TTLs and the service account come from the config."""
    spec = pipeline["spec"]
    assert spec["activeDeadlineSeconds"] == 8 * 3600
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["ttlStrategy"] == {"secondsAfterSuccess": 3600, "secondsAfterFailure": 168 * 3600}
    assert spec["serviceAccountName"] == "resilient-pipeline"
    assert "retryStrategy" not in spec  # spec-level retries would multiply (argo-semantics §1.8)


def test_generated_manifests_pass_strict_validation(tmp_path, files):
    """All generated manifests pass the patched strict Argo schema and the semantic checks."""
    from resilient_templates.errors import ValidationError
    from resilient_templates.validate import load_schema, validate_paths

    try:
        schema = load_schema(download=False)
    except ValidationError as exc:
        if os.environ.get("RT_REQUIRE_SCHEMA") == "1":
            raise
        pytest.skip(f"strict schema validation of generated/ is NOT tested: {exc}")
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    report = validate_paths([tmp_path], schema=schema, require_schema=True)
    assert [str(p) for p in report.problems] == [] and report.checked == 6


def test_kustomize_builds_offline(tmp_path, files):
    """`kubectl kustomize generated/` builds every environment offline."""
    kubectl = shutil.which("kubectl", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if kubectl is None:
        pytest.skip("kubectl not installed: the kustomize build is NOT tested")
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    for directory in (tmp_path, tmp_path / "env" / "production"):
        out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout)]
        assert sorted(kinds) == ["ConfigMap", "CronWorkflow", "Role", "RoleBinding",
                                 "ServiceAccount", "WorkflowTemplate", "WorkflowTemplate"]  # fmt: skip


def test_check_mode_fails_on_a_stale_directory(tmp_path):
    """`generate --check` writes nothing and exits 1 when a file differs or is missing."""
    cmd = [sys.executable, "-m", "resilient_templates", "generate", "--config", str(CONFIG),
           "--out", str(tmp_path)]  # fmt: skip
    assert subprocess.run([*cmd, "--check"], capture_output=True).returncode == 1
    assert list(tmp_path.iterdir()) == []
    subprocess.run(cmd, check=True, capture_output=True)
    assert subprocess.run([*cmd, "--check"], capture_output=True).returncode == 0
    (tmp_path / "rbac.yaml").write_text("# edited by hand\n")
    result = subprocess.run([*cmd, "--check"], capture_output=True, text=True)
    assert result.returncode == 1 and "generated/ is stale" in result.stderr


def test_broken_config_is_one_line_without_traceback(tmp_path):
    """A config mistake prints `error: FILE: KEY: …` and exits 2, never a traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[retry.repository_clone]\nbase_duration = "1d"\n')
    result = subprocess.run(
        [sys.executable, "-m", "resilient_templates", "generate", "--config", str(bad),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {bad}: retry.repository_clone.base_duration:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_notify_plan_ships_as_a_configmap_without_secrets(files):
    """stages/notify.yaml is compiled into the ConfigMap the runtime loads (stdlib JSON path);
    secrets stay ${ENV} references, resolved in the pod at send time."""
    import json

    from resilient_templates.runtime.notify.plan import Plan

    config_map, cron = yaml.safe_load_all(files["notify.yaml"])
    plan_text = config_map["data"]["plan.json"]
    plan = Plan.from_json(plan_text)
    assert {c.type for c in plan.channels.values()} == {"slack", "pagerduty", "teams", "email"}
    assert plan.source == "stages/notify.yaml"
    settings = [c["settings"] for c in json.loads(plan_text)["channels"]]
    secret_values = [s[k] for s in settings for k in ("webhook_url", "integration_key", "password")
                     if k in s]  # fmt: skip
    assert secret_values and all(v.startswith("${") and v.endswith("}") for v in secret_values)
    assert cron["kind"] == "CronWorkflow" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    tick = cron["spec"]["workflowSpec"]["templates"][0]["container"]
    assert tick["command"] == ["resilient-runtime", "tick"]


def test_resolve_on_success_is_opt_in():
    """By default nothing runs on success; resolve_on_success adds one step that does."""
    from resilient_templates.dsl import ExitHandler
    from resilient_templates.lower import pipeline_template
    from resilient_templates.stages.pipeline import build_pipeline

    base = build_pipeline()
    opted = base.with_(on_exit=ExitHandler(runtime_image="rt:1", resolve_on_success=True))
    for pipeline, expected in ((base, []), (opted, ["'{{workflow.status}}' == 'Succeeded'"])):
        spec = pipeline_template(pipeline, hints=[]).to_dict()["spec"]
        handler = {t["name"]: t for t in spec["templates"]}["exit-handler"]
        on_success = [s["when"] for g in handler["steps"] for s in g if "== 'Succeeded'" in s["when"]]
        assert on_success == expected
