"""``resilient-templates config``: ``schema`` (JSON Schema for editors) and ``check FILE``.

``check`` lays the file over the stages' defaults (``--stages``, default the project's five
stages), so unknown stage names and problems only a default reveals are reported too.

ConfigError propagates to the top-level CLI, which prints ``error: <message>`` (one line per
problem) and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError
from ..policy import Resources, Retry
from .load import load_config
from .models import json_schema
from .problems import raise_all

__all__ = ["DEFAULT_STAGES", "run", "schema_text"]

#: The project's five stages; ``--stages`` points elsewhere for a user's own pipeline.
DEFAULT_STAGES = "resilient_templates.stages:STAGES"


def schema_text() -> str:
    """The JSON Schema of ``resilient.toml`` as deterministic, indented JSON."""
    return json.dumps(json_schema(), indent=2) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resilient-templates config", description="Work with resilient.toml."
    )
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of the config file (for Taplo / Even Better TOML)",
        description="Print the JSON Schema; point '#:schema FILE' at it in the TOML file.",
    )
    schema.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    check = commands.add_parser(
        "check", help="validate a config file", description="Validate FILE; print 'ok'."
    )
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--env",
        metavar="NAME",
        help="check the root with [env.NAME] laid over it (default: the root and every env)",
    )
    check.add_argument(
        "--stages",
        metavar="MODULE[:ATTR]",
        default=DEFAULT_STAGES,
        help="the stages whose defaults the tables override, as a sequence of Stage objects "
        f"or a mapping name -> Retry (default: {DEFAULT_STAGES}); 'none' checks the file alone",
    )
    return parser


def run(argv: list[str]) -> int:
    """``argv[0]`` is ``config``."""
    args = _parser().parse_args(argv[1:])
    if args.action == "schema":
        text = schema_text()
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0
    retries, resources = _stage_defaults(args.stages)
    _check(args.file, args.env, retries, resources)
    print("ok")
    return 0


def _stage_defaults(
    spec: str,
) -> tuple[Mapping[str, Retry] | None, Mapping[str, Resources] | None]:
    """Import ``MODULE[:ATTR]`` (ATTR defaults to STAGES) and read each stage's defaults."""
    if spec == "none":
        return None, None
    module_name, _, attr = spec.partition(":")
    try:
        value = getattr(importlib.import_module(module_name), attr or "STAGES")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load the stage defaults: {exc}", key="--stages", value=spec,
            expected="MODULE[:ATTR] naming the stages, or 'none'",
        ) from None
    if isinstance(value, Mapping):
        return dict(value), None
    stages = list(value)
    return {s.name: s.retry for s in stages}, {s.name: s.resources for s in stages}


def _check(
    path: str,
    env: str | None,
    retries: Mapping[str, Retry] | None,
    resources: Mapping[str, Resources] | None,
) -> None:
    """Check the root (or one env); without --env also every defined env, all problems at once."""
    if env is not None:
        load_config(path, env=env, stages=retries, resources=resources)
        return
    problems: list[ConfigError] = []
    for name in [None, *_env_names(path)]:
        try:
            load_config(path, env=name, stages=retries, resources=resources)
        except ConfigError as exc:
            seen = {str(p) for p in problems}
            problems.extend(p for p in exc.problems if str(p) not in seen)
    raise_all(problems)


def _env_names(path: str) -> list[str]:
    import tomllib

    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    envs = doc.get("env")
    return list(envs) if isinstance(envs, dict) else []
