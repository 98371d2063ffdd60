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

from .._dispatch import dispatch

COMMANDS = {
    "analyze": ("resilient_templates.runtime.analysis.cli", "classify a failure and print a FailureAnalysis"),
    "notify": ("resilient_templates.runtime.notify.cli", "route and deliver notifications for a failure"),
    "route": ("resilient_templates.runtime.notify.cli", "show which receivers a label set reaches"),
    "ack": ("resilient_templates.runtime.notify.cli", "acknowledge an incident (stops escalation)"),
    "resolve": ("resilient_templates.runtime.notify.cli", "resolve incidents of a workflow that recovered"),
    "tick": ("resilient_templates.runtime.notify.cli", "flush due groups, escalations and outbox retries"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("resilient-runtime", COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
