"""One small command dispatcher for both CLIs (stdlib only: the runtime uses it too).

A command is a module exposing ``run(argv) -> int`` (``argv[0]`` is the command name); the
module is imported only when its command runs, so each command pays only for its own imports.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence

#: command name -> (module path, one-line help)
Commands = Mapping[str, tuple[str, str]]


def usage(prog: str, commands: Commands) -> str:
    lines = [f"usage: {prog} COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in commands.items()]
    return "\n".join(lines)


def dispatch(prog: str, commands: Commands, argv: Sequence[str] | None = None) -> int:
    """Run the command named by ``argv[0]``; usage on -h/--help (0) or no command (2)."""
    try:
        return _dispatch(prog, commands, argv)
    except BrokenPipeError:  # `… | head` closed our stdout: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _dispatch(prog: str, commands: Commands, argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(prog, commands))
        return 0 if args else 2
    if args[0] not in commands:
        print(f"{prog}: unknown command {args[0]!r}\n\n{usage(prog, commands)}", file=sys.stderr)
        return 2
    module = importlib.import_module(commands[args[0]][0])
    return int(module.run(args) or 0)
