"""What validation reports: one ``Problem`` per bad key, and a ``Report`` per run."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

__all__ = ["Finding", "Problem", "Report", "POLICY_RULES", "describe", "render_path"]

#: Rules that are stricter than Argo itself: Argo accepts these manifests, but they defeat the
#: retry discipline this project exists for (argo-semantics §1.2, §1.8). Every other rule reports
#: something Argo rejects (lint or API server) or that fails when the controller runs it.
POLICY_RULES = frozenset({"retry-limit", "spec-retry"})

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_MAX_VALUE_CHARS = 60
MISSING = object()


def render_path(parts: tuple[str | int, ...]) -> str:
    """``("spec", "templates", 3, "retryStrategy")`` → ``spec.templates[3].retryStrategy``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def show(value: object) -> str:
    """A value as it reads in YAML/JSON, on one line and short (``"1.5"``, ``3``, ``{...}``)."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


def describe(problem: str, *, got: object = MISSING, expected: str | None = None) -> str:
    """``problem (got VALUE; expected EXPECTATION)``, the shape ConfigError uses too."""
    detail = []
    if got is not MISSING:
        detail.append(f"got {show(got)}")
    if expected:
        detail.append(f"expected {expected}")
    return problem + (f" ({'; '.join(detail)})" if detail else "")


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem inside one document, before it knows which file and document it came from."""

    parts: tuple[str | int, ...]
    message: str
    rule: str


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad key in one document; ``str()`` is a single line naming everything needed to fix it."""

    file: str
    doc_index: int
    kind: str
    name: str
    path: str
    message: str
    rule: str = "schema"

    def __str__(self) -> str:
        subject = f"{self.kind or '?'}/{self.name or '?'}"
        where = self.path or "(document)"
        text = f"{self.file}#{self.doc_index} {subject} {where}: {self.message} [{self.rule}]"
        return " ".join(text.split())  # one line, whatever the value contained

    @property
    def is_policy(self) -> bool:
        """True for rules stricter than Argo (see ``POLICY_RULES``)."""
        return self.rule in POLICY_RULES


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of ``validate_paths``: every problem, and what was (not) checked."""

    problems: tuple[Problem, ...]
    checked: int
    invalid: int
    skipped: int
    schema_origin: str | None = None
    schema_skipped: str | None = None
    files: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"{self.checked} Argo documents checked, {self.invalid} invalid, "
            f"{self.skipped} other documents skipped"
        )
