"""``resilient-templates``: the generator's command line.

Each subcommand lives in its own module and exposes ``run(argv) -> int`` (argv[0] is the
subcommand name). User mistakes print one line (``error: …``) and exit 2; never a traceback.
"""

from __future__ import annotations

import sys

from ._dispatch import dispatch
from .errors import ResilientTemplatesError

COMMANDS = {
    "generate": ("resilient_templates.generate", "lower the stages to Argo manifests in a directory"),
    "explain": ("resilient_templates.explain", "print a stage's retry timeline as Argo will run it"),
    "validate": ("resilient_templates.validate", "check manifests against Argo's schema and semantics"),
    "config": ("resilient_templates.config.cli", "config tools: 'config check FILE', 'config schema'"),
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--version"]:
        from . import __version__

        print(__version__)
        return 0
    try:
        return dispatch("resilient-templates", COMMANDS, args)
    except ResilientTemplatesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
