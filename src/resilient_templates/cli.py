"""``resilient-templates``: the generator's command line.

Each subcommand lives in its own module and exposes ``run(argv) -> int`` (argv[0] is the
subcommand name). User mistakes print one line (``error: …``) and exit 2; never a traceback.
"""

from __future__ import annotations

import importlib
import sys

from .errors import ResilientTemplatesError

COMMANDS = {
    "generate": ("resilient_templates.generate", "lower the stages to Argo manifests in a directory"),
    "explain": ("resilient_templates.explain", "print a stage's retry timeline as Argo will run it"),
    "validate": ("resilient_templates.validate", "check manifests against Argo's schema and semantics"),
    "config": ("resilient_templates.config.cli", "config tools: 'config check FILE', 'config schema'"),
}


def usage() -> str:
    lines = ["usage: resilient-templates COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from . import __version__

        print(__version__)
        return 0
    command = argv[0]
    if command not in COMMANDS:
        print(f"resilient-templates: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[command][0])
        return int(module.run(argv) or 0)
    except ResilientTemplatesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
