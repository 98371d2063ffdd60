"""The POSIX-sh stage wrapper that every generated stage runs its command through.

``wrapper.sh`` (next to this module) is the documented source; ``wrapper_script()`` is the
compact form embedded in the generated templates (comment lines and indentation removed, one
header line naming the source), so a stage needs nothing but ``/bin/sh`` in its image.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["CONTEXT_PATH", "WRAPPER_SOURCE", "wrapper_script"]

#: Where the wrapper writes the error context inside the stage container.
CONTEXT_PATH = "/tmp/rt/error-context.json"

WRAPPER_SOURCE = resources.files(__package__).joinpath("wrapper.sh").read_text(encoding="utf-8")


@cache
def wrapper_script() -> str:
    """The wrapper as embedded in templates: same code, no comments or indentation."""
    lines = ["# resilient-templates stage wrapper (source: resilient_templates/lower/wrapper.sh)"]
    for line in WRAPPER_SOURCE.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append(stripped)
    return "\n".join(lines) + "\n"
