"""``resilient-templates generate``: stages + config → Argo manifests in a directory.

    resilient-templates generate --config stages/resilient.toml --out generated [--check]

Writes, for the default environment, into OUT:

  resilient-pipeline.yaml   the pipeline WorkflowTemplate (DAG, stages, gate, exit handler)
  resilient-stages.yaml     the five stages alone, for ``templateRef`` from other workflows
  rbac.yaml                 ServiceAccount + Role + RoleBinding the pipeline's pods need
  notify.yaml               ConfigMap ``resilient-notify`` (stages/notify.yaml compiled to
                            plan.json, no secrets, plus its user templates) + the
                            escalation tick CronWorkflow
  kustomization.yaml        so that ``kubectl apply -k OUT`` applies all of it

and the same set under OUT/env/<name>/ for every ``[env.<name>]`` overlay in the config.
Output is deterministic; ``--check`` writes nothing and fails (exit 1) when OUT differs.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dsl import Pipeline

__all__ = ["GeneratedFile", "generate_files", "render_pipeline", "run"]

LIBRARY_NAME = "resilient-stages"


@dataclass(frozen=True, slots=True)
class GeneratedFile:
    path: str  # relative to the output directory
    text: str


def _rbac(pipeline: Pipeline) -> list[dict[str, Any]]:
    """What Argo's executor needs to report outputs (workflowtaskresults), nothing more."""
    meta: dict[str, Any] = {
        "name": pipeline.service_account,
        "labels": {"app.kubernetes.io/managed-by": "resilient-templates"},
    }
    if pipeline.namespace:
        meta["namespace"] = pipeline.namespace
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": ["argoproj.io"],
                    "resources": ["workflowtaskresults"],
                    "verbs": ["create", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": pipeline.service_account,
            },
            "subjects": [{"kind": "ServiceAccount", "name": pipeline.service_account}],
        },
    ]


def _notify_documents(pipeline: Pipeline, notify_data: Mapping[str, str]) -> list[dict[str, Any]]:
    from .lower import tick_cron_workflow

    assert pipeline.on_exit is not None
    meta: dict[str, Any] = {
        "name": pipeline.on_exit.notify_config,
        "labels": {"app.kubernetes.io/managed-by": "resilient-templates"},
    }
    if pipeline.namespace:
        meta["namespace"] = pipeline.namespace
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                  "data": dict(notify_data)}  # fmt: skip
    return [config_map, tick_cron_workflow(pipeline, pipeline.on_exit).to_dict()]


def render_pipeline(
    pipeline: Pipeline, *, source: str, notify_plan: Mapping[str, str] | None = None
) -> list[GeneratedFile]:
    """The files of one environment (paths relative to its directory)."""
    from .lower import pipeline_template, stage_library
    from .render import dump_documents

    workflow = pipeline_template(pipeline).to_dict()
    library = stage_library(LIBRARY_NAME, pipeline.stages, namespace=pipeline.namespace).to_dict()
    files = [
        GeneratedFile(f"{pipeline.name}.yaml", dump_documents([workflow], source=source)),
        GeneratedFile(f"{LIBRARY_NAME}.yaml", dump_documents([library], source=source)),
        GeneratedFile("rbac.yaml", dump_documents(_rbac(pipeline), source=source)),
    ]
    if pipeline.on_exit is not None and notify_plan is not None:
        docs = _notify_documents(pipeline, notify_plan)
        files.append(GeneratedFile("notify.yaml", dump_documents(docs, source=source)))
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f.path for f in files],
    }
    if pipeline.namespace:
        kustomization["namespace"] = pipeline.namespace
    files.append(GeneratedFile("kustomization.yaml", dump_documents([kustomization], source=source)))
    return files


def _env_names(config_path: Path) -> list[str]:
    with config_path.open("rb") as fh:
        data = tomllib.load(fh)
    envs = data.get("env", {})
    return sorted(envs) if isinstance(envs, Mapping) else []


def compile_notify(path: Path) -> dict[str, str]:
    """stages/notify.yaml validated and compiled into the ConfigMap's data: ``plan.json`` (no
    secrets in it) and every user template of its ``templates_dir`` (key = file name).

    The pod mounts the ConfigMap as one directory, so the plan's ``templates_dir`` is ``.``:
    relative to plan.json, where the templates are.
    """
    import dataclasses

    from .runtime.notify.config import compile_plan

    plan = compile_plan(path)
    templates: dict[str, str] = {}
    if plan.templates_path:
        for template in sorted(Path(plan.templates_path).glob("*.j2")):
            templates[template.name] = template.read_text(encoding="utf-8")
        plan = dataclasses.replace(plan, templates_dir=".")
    plan = dataclasses.replace(plan, source=f"{path.parent.name}/{path.name}")
    return {"plan.json": plan.to_json(indent=2, sort_keys=True), **templates}


def generate_files(config_path: str | Path, *, env: str | None = None) -> list[GeneratedFile]:
    """Every file ``generate`` writes: the default environment, then each overlay's under env/."""
    from resilient_templates.stages import STAGES
    from resilient_templates.stages.pipeline import build_pipeline

    from .config import load_config

    config_path = Path(config_path)
    notify_path = config_path.parent / "notify.yaml"
    notify_plan = compile_notify(notify_path) if notify_path.exists() else None
    defaults = {s.name: s.retry for s in STAGES}
    envs = [env] if env else [None, *_env_names(config_path)]
    files: list[GeneratedFile] = []
    for name in envs:
        config = load_config(config_path, env=name, stages=defaults)
        label = f"{config_path.parent.name}/{config_path.name}"  # machine-independent header
        source = f"stages/ + {label}" + (f" (env {name})" if name else "")
        prefix = "" if (name is None or env) else f"env/{name}/"
        for f in render_pipeline(build_pipeline(config), source=source, notify_plan=notify_plan):
            files.append(GeneratedFile(prefix + f.path, f.text))
    return files


def _check(out: Path, files: list[GeneratedFile]) -> int:
    stale = []
    for f in files:
        target = out / f.path
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != f.text:
            stale.append(f.path)
            diff = difflib.unified_diff(
                current.splitlines(), f.text.splitlines(), str(target), f"{target} (generated)",
                lineterm="", n=1,
            )  # fmt: skip
            lines = [line if len(line) <= 160 else line[:157] + "..." for line in list(diff)[:40]]
            sys.stderr.write("\n".join(lines) + "\n")
    known = {f.path for f in files}
    extra = sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*.yaml")
        if p.relative_to(out).as_posix() not in known
    ) if out.exists() else []  # fmt: skip
    for path in extra:
        stale.append(path)
        sys.stderr.write(f"{out / path}: not generated any more (remove it)\n")
    if stale:
        sys.stderr.write(f"generated/ is stale: {len(stale)} file(s) differ; run `make generate`\n")
        return 1
    print(f"{out}: {len(files)} files up to date")
    return 0


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="resilient-templates generate", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="stages/resilient.toml", help="project config (TOML)")
    parser.add_argument("--out", default="generated", help="output directory")
    parser.add_argument("--env", help="generate only this environment overlay, into OUT itself")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 if stale")
    args = parser.parse_args(argv[1:])
    files = generate_files(args.config, env=args.env)
    out = Path(args.out)
    if args.check:
        return _check(out, files)
    for f in files:
        target = out / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text(encoding="utf-8") != f.text:
            target.write_text(f.text, encoding="utf-8")
    print(f"{out}: wrote {len(files)} files")
    return 0
