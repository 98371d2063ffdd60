"""``resilient-templates config``: ``schema`` (JSON Schema for editors) and ``check FILE``.

ConfigError propagates to the top-level CLI, which prints ``error: <message>`` (one line per
problem) and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError
from .load import load_config
from .models import json_schema
from .problems import raise_all

__all__ = ["run", "schema_text"]


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
    _check(args.file, args.env)
    print("ok")
    return 0


def _check(path: str, env: str | None) -> None:
    """Check the root (or one env); without --env also every defined env, all problems at once."""
    if env is not None:
        load_config(path, env=env)
        return
    problems: list[ConfigError] = []
    for name in [None, *_env_names(path)]:
        try:
            load_config(path, env=name)
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
