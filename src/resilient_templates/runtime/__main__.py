"""``resilient-runtime``: the commands that run inside failure containers.

Each command lives in its own module, imported only when that command runs, so a container
started for ``analyze`` never imports the notification stack (and nothing imports Hera or
pydantic). A command module exposes ``run(argv: list[str]) -> int``.

Exit codes (documented in README.md):
  0   done
  2   usage error or invalid input the command could not use at all
  65  input data malformed but an analysis was still produced (degraded; EX_DATAERR)
  69  a notification channel stayed unavailable after retries (EX_UNAVAILABLE)
  70  internal error (EX_SOFTWARE)
  75  state store locked or unreachable; the result was still printed (EX_TEMPFAIL)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "analyze": ("resilient_templates.runtime.analysis.cli", "classify a failure and print a FailureAnalysis"),
    "notify": ("resilient_templates.runtime.notify.cli", "route and deliver notifications for a failure"),
    "route": ("resilient_templates.runtime.notify.cli", "show which receivers a label set reaches"),
    "ack": ("resilient_templates.runtime.notify.cli", "acknowledge an incident (stops escalation)"),
    "resolve": ("resilient_templates.runtime.notify.cli", "resolve incidents of a workflow that recovered"),
    "tick": ("resilient_templates.runtime.notify.cli", "flush due groups, escalations and outbox retries"),
}


def usage() -> str:
    lines = ["usage: resilient-runtime COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command = argv[0]
    if command not in COMMANDS:
        print(f"resilient-runtime: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.run(argv) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
