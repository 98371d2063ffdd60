"""What Argo and the stage wrapper hand to the analysis, parsed liberally.

* ``parse_context``: the wrapper's error-context JSON (output parameter ``error-context``,
  default ``"{}"`` when the pod died before writing it). Raw bytes are decoded as UTF-8 with
  replacement *before* ``json.loads``: the log tail may carry any bytes.
* ``parse_failures``: ``{{workflow.failures}}``, a Go-quoted JSON string (decode twice), the
  6-character string ``"null"`` when nothing failed, also accepted decoded once (a shell may
  strip one level) or as plain JSON.
* ``stage_failures``: one failure per stage from those entries, which include every retry
  attempt ``x(0)``, ``x(1)``, the Retry parent ``x`` and StepGroup/DAG nodes, in random order.
* ``parse_node_message``: ``main: OOMKilled (exit code 137)``, ``main: Error (exit code 1):
  <termination message>`` and pod-level messages (eviction, deadline, ``pod deleted``…).

Malformed input raises ``InputError`` (one line, saying what and where); fields of the wrong
type are dropped with a note instead, so that a half-good context still helps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...policy.taxonomy import Hint, parse_hint

__all__ = [
    "ErrorContext",
    "InputError",
    "NodeMessage",
    "StageFailure",
    "parse_context",
    "parse_failures",
    "parse_node_message",
    "stage_failures",
]


class InputError(ValueError):
    """An input could not be used at all; ``str()`` is a one-line explanation."""


# --------------------------------------------------------------------------- error context


@dataclass(frozen=True, slots=True)
class ErrorContext:
    stage: str = ""
    attempt: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    timed_out: bool = False
    started_at: float | None = None
    duration_seconds: float | None = None
    waited_seconds: float | None = None
    hint_text: str = ""
    hint: Hint | None = None
    log_tail: bytes = b""
    log_truncated: bool = False
    ok: bool | None = None
    empty: bool = True  # "{}" or no recognised key: the pod ended before the wrapper wrote it
    notes: tuple[str, ...] = ()  # fields that were present but unusable


_CONTEXT_FIELDS: dict[str, tuple[type, ...]] = {
    "stage": (str,),
    "attempt": (int,),
    "exit_code": (int,),
    "signal": (str,),
    "timed_out": (bool,),
    "started_at": (int, float),
    "duration_seconds": (int, float),
    "waited_seconds": (int, float),
    "hint": (str,),
    "log_tail": (str,),
    "log_truncated": (bool,),
    "ok": (bool,),
}


def parse_context(raw: bytes | str | None, *, source: str = "error context") -> ErrorContext:
    """The wrapper's JSON; ``"{}"``, empty or missing keys give an empty (degraded) context."""
    if raw is None:
        return ErrorContext()
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = text.strip().lstrip("\ufeff")
    if not text:
        return ErrorContext()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{source}: not JSON ({_json_problem(exc)})") from exc
    if isinstance(data, str):  # a parameter that was JSON-encoded once more
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InputError(f"{source}: a JSON string that is not a JSON object") from exc
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a JSON object, got {type(data).__name__}")
    values: dict[str, Any] = {}
    notes: list[str] = []
    for key, kinds in _CONTEXT_FIELDS.items():
        if key not in data or data[key] is None:
            continue
        value = data[key]
        if isinstance(value, bool) and bool not in kinds:
            value = None  # JSON true is not an exit code
        if value is None or not isinstance(value, kinds):
            notes.append(f"{source}: field {key!r} ignored (got {type(data[key]).__name__})")
            continue
        values[key] = value
    hint_text = values.pop("hint", "")
    tail = values.pop("log_tail", "")
    return ErrorContext(
        stage=values.get("stage", ""),
        attempt=values.get("attempt"),
        exit_code=values.get("exit_code"),
        signal=(values.get("signal") or None),
        timed_out=values.get("timed_out", False),
        started_at=values.get("started_at"),
        duration_seconds=values.get("duration_seconds"),
        waited_seconds=values.get("waited_seconds"),
        hint_text=hint_text,
        hint=parse_hint(hint_text),
        log_tail=tail.encode("utf-8", errors="replace"),
        log_truncated=values.get("log_truncated", False),
        ok=values.get("ok"),
        empty=not values and not hint_text and not tail,
        notes=tuple(notes),
    )


def _json_problem(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


# --------------------------------------------------------------------------- node messages

# operator.go: "<container>: <Reason> (exit code N)" and ": <termination message>" appended.
_CONTAINER = re.compile(
    r"^(?P<container>[A-Za-z0-9_.-]+): (?P<reason>[A-Za-z]+) \(exit code (?P<code>-?\d+)\)"
    r"(?:: (?P<detail>.*))?$",
    re.S,
)
_POD_REASONS = (  # pod-level messages Argo copies into the node message
    ("Pod was active on the node longer than the specified deadline", "DeadlineExceeded"),
    ("The node was low on resource", "Evicted"),
    ("The node had condition", "Evicted"),
    ("Pod ephemeral local storage usage exceeds", "Evicted"),
    ("pod deleted", "PodDeleted"),
    ("Pod was terminated in response to imminent node shutdown", "NodeShutdown"),
    ("Step exceeded its deadline", "StepDeadlineExceeded"),
    ("Unschedulable", "Unschedulable"),
    ("ImagePullBackOff", "ImagePullBackOff"),
    ("ErrImagePull", "ErrImagePull"),
    ("CreateContainerConfigError", "CreateContainerConfigError"),
    ("CrashLoopBackOff", "CrashLoopBackOff"),
    ("OOMKilled", "OOMKilled"),
)
#: Messages Argo puts on Retry parents when it stops retrying: the cause is in the attempts.
RETRY_STOPPED = (
    "No more retries left",
    "Max duration limit exceeded",
    "Backoff would exceed max duration limit",
)
_GROUP_MESSAGE = re.compile(r"^child '[^']*' (?:failed|errored)\b")


@dataclass(frozen=True, slots=True)
class NodeMessage:
    text: str = ""
    container: str | None = None
    reason: str | None = None  # "Error", "OOMKilled", "Evicted", "DeadlineExceeded"…
    exit_code: int | None = None
    detail: str = ""  # the termination message, or the whole pod-level message
    hint: Hint | None = None
    retry_stopped: str | None = None  # one of RETRY_STOPPED
    group: bool = False  # "child 'x' failed": a StepGroup/DAG node, not a cause


def parse_node_message(message: str | None) -> NodeMessage:
    text = (message or "").strip()
    if not text:
        return NodeMessage()
    hint = parse_hint(text)
    match = _CONTAINER.match(text)
    if match:
        return NodeMessage(
            text=text,
            container=match["container"],
            reason=match["reason"],
            exit_code=int(match["code"]),
            detail=(match["detail"] or "").strip(),
            hint=hint,
        )
    stopped = next((s for s in RETRY_STOPPED if text.startswith(s)), None)
    reason = next((r for phrase, r in _POD_REASONS if phrase in text), None)
    return NodeMessage(
        text=text,
        reason=reason,
        detail=text,
        hint=hint,
        retry_stopped=stopped,
        group=bool(_GROUP_MESSAGE.match(text)),
    )


# --------------------------------------------------------------------------- workflow.failures


def parse_failures(value: str | bytes | None) -> list[dict[str, Any]]:
    """Entries of ``{{workflow.failures}}`` in any of the forms it reaches a container in."""
    if value is None:
        return []
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    text = text.strip().lstrip("\ufeff")
    if text in ("", "null", '"null"', "[]", '"[]"'):
        return []
    data: Any = text
    for _ in range(3):  # quoted twice by Argo; once after a shell stripped a level; plain
        if not isinstance(data, str):
            break
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InputError(
                f"workflow failures: not JSON ({_json_problem(exc)}); expected "
                '{{workflow.failures}} as Argo renders it, e.g. "[{\\"displayName\\":…}]"'
            ) from exc
    if data is None:
        return []
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise InputError(
            f"workflow failures: expected a list of failed nodes, got {type(data).__name__}"
        )
    entries = []
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise InputError(
                f"workflow failures[{index}]: expected an object with displayName and "
                f"message, got {type(item).__name__}"
            )
        entries.append({k: ("" if v is None else v) for k, v in item.items()})
    return entries


@dataclass(frozen=True, slots=True)
class StageFailure:
    """One failed stage, deduplicated from its attempts, its Retry parent and group nodes."""

    stage: str  # displayName without the "(N)" attempt suffix
    display_name: str  # of the representative entry
    template_name: str = ""
    message: str = ""
    phase: str = ""
    pod_name: str = ""
    finished_at: str = ""
    attempts: int = 1  # attempts made (the highest "(N)" + 1)
    retry_stopped: str | None = None  # the Retry parent's reason for stopping, if shown
    recovered: bool = False  # only failed attempts, no failed parent: a later attempt passed
    entries: int = 1  # raw entries merged into this one
    extra: Mapping[str, Any] = field(default_factory=dict)


_ATTEMPT = re.compile(r"^(?P<base>.*)\((?P<n>\d+)\)$")
_STEP_GROUP = re.compile(r"^\[\d+\]$")


def stage_failures(entries: Sequence[Mapping[str, Any]], *,
                   workflow_name: str = "") -> list[StageFailure]:  # fmt: skip
    """One ``StageFailure`` per stage: the last attempt's leaf message, attempts counted.

    Group nodes (``child 'x' failed``, step groups ``[0]``, the workflow's root node) are
    dropped unless nothing else failed. Stages whose failed attempts all have a successor
    (no failed Retry parent) are marked ``recovered``; they are dropped when another stage
    really failed.
    """
    rows = []
    for entry in entries:
        name = str(entry.get("displayName") or entry.get("name") or "")
        message = str(entry.get("message") or "")
        match = _ATTEMPT.match(name)
        base, attempt = (match["base"], int(match["n"])) if match else (name, None)
        parsed = parse_node_message(message)
        group = parsed.group or bool(_STEP_GROUP.match(name)) or (
            bool(workflow_name) and name == workflow_name
        )
        rows.append((base, attempt, name, message, parsed, group, entry))
    if any(not row[5] for row in rows):
        rows = [row for row in rows if not row[5]]
    by_stage: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_stage.setdefault(row[0], []).append(row)
    failures = [_merge_stage(stage, group) for stage, group in by_stage.items()]
    if any(not f.recovered for f in failures):
        failures = [f for f in failures if not f.recovered]
    return sorted(failures, key=lambda f: (f.finished_at or "\uffff", f.stage))


def _merge_stage(stage: str, rows: list[tuple[Any, ...]]) -> StageFailure:
    attempts = [r for r in rows if r[1] is not None]
    parents = [r for r in rows if r[1] is None]
    if attempts:
        rep = max(attempts, key=lambda r: (r[1], str(r[6].get("finishedAt") or "")))
        made = rep[1] + 1
    else:
        rep = max(parents, key=_leafiness)
        made = 1
    message = rep[3] or next((p[3] for p in parents if p[3] and not p[4].retry_stopped), "")
    stopped = next((p[4].retry_stopped for p in parents if p[4].retry_stopped), None)
    entry = rep[6]
    return StageFailure(
        stage=stage,
        display_name=rep[2],
        template_name=str(entry.get("templateName") or ""),
        message=message,
        phase=str(entry.get("phase") or ""),
        pod_name=str(entry.get("podName") or ""),
        finished_at=str(entry.get("finishedAt") or ""),
        attempts=made,
        retry_stopped=stopped,
        recovered=bool(attempts) and not parents,
        entries=len(rows),
        extra={k: v for k, v in entry.items() if k not in _KNOWN_KEYS},
    )


_KNOWN_KEYS = {"displayName", "message", "templateName", "phase", "podName", "finishedAt"}


def _leafiness(row: tuple[Any, ...]) -> tuple[int, str]:
    """Prefer container messages, then pod-level reasons, then anything; later first."""
    parsed: NodeMessage = row[4]
    rank = 2 if parsed.container else 1 if parsed.reason and not parsed.retry_stopped else 0
    return rank, str(row[6].get("finishedAt") or "")
