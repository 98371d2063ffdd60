"""The ``validate`` command line: problems on stdout, one per line, then a summary; exit 0/1.

A schema that could not be found is announced on stderr in a banner nobody can miss; with
``--require-schema`` it is an error (exit 2) instead.
"""

from __future__ import annotations

import argparse
import sys

from .schema import PINNED_COMMIT, SchemaUnavailable, load_schema

BANNER_WIDTH = 78


def skipped_banner(reason: str) -> str:
    """The stderr banner printed when schema validation did not run."""
    rule = "!" * BANNER_WIDTH
    lines = [
        rule,
        "!! WARNING: Argo JSON schema validation was SKIPPED.",
        f"!! Why: {reason}.",
        "!! Only the semantic checks ran: unknown or misspelt keys and wrong types were NOT checked.",
        f"!! Fix: set ARGO_SCHEMA to Argo's api/jsonschema/schema.json (argo-workflows {PINNED_COMMIT[:10]}),",
        "!!      or allow the pinned, checksummed download. --require-schema makes this an error.",
        rule,
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resilient-templates validate",
        description="Check Argo Workflows manifests against Argo's strict JSON schema and semantic rules.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="manifest files or directories (*.yaml, *.yml)")
    parser.add_argument(
        "--require-schema",
        action="store_true",
        help="fail (exit 2) instead of skipping schema validation when no schema is available",
    )
    parser.add_argument(
        "--schema", metavar="FILE", help="Argo schema.json to use (default: $ARGO_SCHEMA, cache, download)"
    )
    return parser


def run(argv: list[str]) -> int:
    """argv[0] is the command name ("validate"). Exit 0: all valid; 1: problems; 2: usage/schema."""
    from . import AUTO, validate_paths

    args = _parser().parse_args(argv[1:])
    schema = load_schema(args.schema) if args.schema else AUTO
    try:
        report = validate_paths(args.paths, schema=schema, require_schema=args.require_schema)
    except SchemaUnavailable as exc:
        print(skipped_banner(str(exc)).replace("WARNING", "ERROR"), file=sys.stderr)
        print("error: --require-schema: no Argo schema available; nothing was validated", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(problem)
    print(report.summary())
    if report.schema_skipped:
        print(skipped_banner(report.schema_skipped), file=sys.stderr)
    else:
        print(f"schema: {report.schema_origin}", file=sys.stderr)
    return 1 if report.problems else 0
