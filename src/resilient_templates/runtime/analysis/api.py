"""The analysis as functions: what the CLI and the notifier call.

* ``analyze_text``: a log (or any failure text) plus whatever else is known.
* ``analyze_context``: the wrapper's error-context JSON (bytes as Argo collected them).
* ``analyze_workflow``: ``{{workflow.status}}`` and ``{{workflow.failures}}`` for a whole run,
  one FailureAnalysis per failed stage, optionally with each stage's error context.

None of them raises for bad input: a malformed context or failures string gives a degraded
analysis that says why. With a ``store``, the history of similar failures is looked up and
each analysis is recorded; a store problem adds a ``degraded`` note instead of failing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...policy.taxonomy import Hint, parse_hint
from ..model import FailureAnalysis, WorkflowRef
from .analyzer import DEFAULT_THRESHOLD, Analyzer, FailureInput, with_degraded
from .argo import InputError, parse_context, parse_failures, parse_node_message, stage_failures
from .knowledge import KnowledgeBase
from .tail import DEFAULT_TAIL_BYTES, tail_of

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["analyze_context", "analyze_text", "analyze_workflow", "analyzer", "context_input"]

_ANALYZERS: dict[tuple[int, float], Analyzer] = {}


def analyzer(kb: KnowledgeBase | None = None, threshold: float | None = None) -> Analyzer:
    """A cached Analyzer (compiling the knowledge base once per process)."""
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    key = (id(kb), threshold)
    found = _ANALYZERS.get(key)
    if found is None:
        found = _ANALYZERS[key] = Analyzer(kb, threshold=threshold)
    return found


def analyze_text(text: str | bytes, *, stage: str = "", workflow: WorkflowRef | None = None,
                 exit_code: int | None = None, pod_reason: str | None = None,
                 node_message: str | None = None, hint: str | Hint | None = None,
                 now: float | None = None, signal: str | None = None,
                 attempts: int | None = None, max_attempts: int | None = None,
                 stages: Sequence[str] = (), store: Store | None = None,
                 kb: KnowledgeBase | None = None, threshold: float | None = None,
                 tail_bytes: int = DEFAULT_TAIL_BYTES) -> FailureAnalysis:  # fmt: skip
    """Analyse a failure text (only its last ``tail_bytes`` are read)."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", errors="replace")
    tail = tail_of(data, tail_bytes)
    inp = FailureInput(
        log=tail.data,
        log_truncated=tail.truncated,
        stage=stage,
        workflow=workflow or WorkflowRef(name=""),
        exit_code=exit_code,
        signal=signal,
        pod_reason=pod_reason,
        node_message=node_message or "",
        hint=hint if isinstance(hint, Hint) else parse_hint(hint),
        attempts=attempts,
        max_attempts=max_attempts,
        stages=tuple(stages),
        degraded=() if (tail.data.strip() or node_message or exit_code is not None
                        or pod_reason or hint) else ("no failure evidence given (empty input)",),  # fmt: skip
    )
    return _run(inp, store=store, kb=kb, threshold=threshold, now=now)


def context_input(raw: bytes | str | None, *, stage: str = "",
                  workflow: WorkflowRef | None = None, node_message: str | None = None,
                  pod_reason: str | None = None, exit_code: int | None = None,
                  attempts: int | None = None, max_attempts: int | None = None,
                  stages: Sequence[str] = (),
                  tail_bytes: int = DEFAULT_TAIL_BYTES) -> FailureInput:  # fmt: skip
    """The FailureInput of an error-context JSON (malformed JSON: a degraded input)."""
    degraded: list[str] = []
    malformed = False
    try:
        ctx = parse_context(raw)
    except InputError as exc:
        ctx = parse_context(None)
        degraded.append(str(exc))
        malformed = True
    degraded += ctx.notes
    node = parse_node_message(node_message)
    if ctx.empty and not node.text and not malformed:
        degraded.append("error context empty: the pod ended before the wrapper wrote it")
    tail = tail_of(ctx.log_tail, tail_bytes)
    return FailureInput(
        log=tail.data,
        log_truncated=ctx.log_truncated or tail.truncated,
        stage=stage or ctx.stage,
        workflow=workflow or WorkflowRef(name=""),
        exit_code=exit_code if exit_code is not None else ctx.exit_code,
        signal=ctx.signal,
        pod_reason=pod_reason,
        node_message=node_message or "",
        hint=ctx.hint,
        timed_out=ctx.timed_out,
        attempt=ctx.attempt,
        attempts=attempts if attempts is not None else ctx.attempt,
        max_attempts=max_attempts,
        duration_seconds=ctx.duration_seconds,
        stages=tuple(stages),
        degraded=tuple(degraded),
        malformed=malformed,
    )


def analyze_context(context_json_bytes: bytes | str | None, *, stage: str = "",
                    workflow: WorkflowRef | None = None, node_message: str | None = None,
                    pod_reason: str | None = None, exit_code: int | None = None,
                    attempts: int | None = None, max_attempts: int | None = None,
                    stages: Sequence[str] = (), now: float | None = None,
                    store: Store | None = None, kb: KnowledgeBase | None = None,
                    threshold: float | None = None) -> FailureAnalysis:  # fmt: skip
    """Analyse the wrapper's error context (``"{}"`` or malformed: a degraded analysis)."""
    inp = context_input(context_json_bytes, stage=stage, workflow=workflow,
                        node_message=node_message, pod_reason=pod_reason, exit_code=exit_code,
                        attempts=attempts, max_attempts=max_attempts, stages=stages)  # fmt: skip
    return _run(inp, store=store, kb=kb, threshold=threshold, now=now)


def analyze_workflow(status: str, failures: str | bytes | None, *, workflow: WorkflowRef,
                     contexts: Mapping[str, bytes | str] | None = None,
                     stages: Sequence[str] = (), store: Store | None = None,
                     now: float | None = None, kb: KnowledgeBase | None = None,
                     threshold: float | None = None) -> list[FailureAnalysis]:  # fmt: skip
    """One analysis per failed stage of a run (none when it succeeded without failures).

    ``contexts`` maps a stage's name (display name without ``(N)``, or template name) to its
    error-context JSON. Malformed ``failures`` give one degraded analysis for the workflow.
    """
    inputs = workflow_inputs(status, failures, workflow=workflow, contexts=contexts,
                             stages=stages)  # fmt: skip
    return [_run(inp, store=store, kb=kb, threshold=threshold, now=now) for inp in inputs]


def workflow_inputs(status: str, failures: str | bytes | None, *, workflow: WorkflowRef,
                    contexts: Mapping[str, bytes | str] | None = None,
                    stages: Sequence[str] = ()) -> list[FailureInput]:  # fmt: skip
    status = (status or "").strip()
    workflow = replace(workflow, status=status or workflow.status)
    contexts = contexts or {}
    try:
        entries = parse_failures(failures)
    except InputError as exc:
        return [FailureInput(workflow=workflow, stages=tuple(stages), degraded=(str(exc),),
                             malformed=True)]  # fmt: skip
    found = stage_failures(entries, workflow_name=workflow.name)
    if not found:
        if status in ("Failed", "Error"):
            return [FailureInput(workflow=workflow, stages=tuple(stages), degraded=(
                f"workflow {status} but {{{{workflow.failures}}}} lists no failed node",))]  # fmt: skip
        return []
    inputs = []
    for failure in found:
        raw = next((contexts[k] for k in (failure.stage, failure.display_name,
                                           failure.template_name) if k in contexts), None)  # fmt: skip
        inp = context_input(raw, stage=failure.stage, workflow=workflow,
                            node_message=failure.message, attempts=failure.attempts,
                            stages=stages)  # fmt: skip
        if raw is None:  # no context was passed for this stage: not a degradation
            inp = replace(inp, degraded=tuple(d for d in inp.degraded
                                              if not d.startswith("error context empty")))  # fmt: skip
        inputs.append(replace(
            inp,
            template_name=failure.template_name,
            attempt=inp.attempt or failure.attempts,
            retry_stopped=failure.retry_stopped,
            phase=failure.phase or None,
            node=failure.display_name or None,
        ))  # fmt: skip
    return inputs


def _run(inp: FailureInput, *, store: Store | None, kb: KnowledgeBase | None,
         threshold: float | None, now: float | None) -> FailureAnalysis:  # fmt: skip
    now = time.time() if now is None else now
    engine = analyzer(kb, threshold)
    history = None
    notes: list[str] = []
    if store is not None:
        history, note = open_history(store)
        if note:
            notes.append(note)
    analysis = engine.analyze(inp, history=history, now=now)
    if notes:
        analysis = with_degraded(analysis, *notes)
    if history is not None:
        try:
            history.record(analysis)
        except Exception as exc:  # the analysis is returned whatever the store does
            analysis = with_degraded(analysis, f"not recorded in the state store: {_line(exc)}")
    return analysis


def open_history(store: Store) -> tuple[Any, str]:
    from .history import AnalysisHistory

    try:
        return AnalysisHistory(store), ""
    except Exception as exc:
        return None, f"history unavailable: {_line(exc)}"


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
