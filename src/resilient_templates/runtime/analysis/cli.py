"""``resilient-runtime analyze``: classify a failure and print a FailureAnalysis.

Prints one FailureAnalysis JSON document per line (JSON Lines): one line for a single stage,
one per failed stage with ``--failures``. ``--output FILE`` writes the same lines; both are
written *before* the state store is touched, so a store that is down never loses the result.

Inputs (any combination; none is required, but an analysis without evidence is ``unknown``):
  --context FILE|-      the stage wrapper's error-context JSON (output parameter)
  --log FILE|-          a log; only its last --tail-bytes are read (default 1 MiB)
  --failures STR|@FILE  {{workflow.failures}} (Argo's twice-quoted JSON, "null", or plain JSON)
  --status STATUS       {{workflow.status}}
  --node-message MSG, --exit-code N, --signal SIG, --pod-reason REASON

Batch (evaluation): ``--jsonl IN.jsonl`` reads lines ``{"id": ..., "text": ...}`` (optional
``stage``, ``exit_code``, ``pod_reason``, ``node_message``) and prints one line per input:
``{"id", "category", "transient", "confidence", "signature", "guess", "severity"}``; a
malformed line prints ``{"id", "error"}`` and the batch goes on. No state store is used.

Resolutions: ``--resolve FAILURE_ID --resolution TEXT`` records how a failure was fixed.

Exit codes (runtime/__main__.py): 0 done; 2 usage error or unusable input; 65 malformed input
or no evidence, analysis still printed (degraded); 70 internal error; 75 state store locked or
unreachable, analysis still printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ...errors import ConfigError, ResilientTemplatesError, StateStoreError
from ..model import WorkflowRef

__all__ = ["run"]

EX_OK, EX_USAGE, EX_DATAERR, EX_SOFTWARE, EX_TEMPFAIL = 0, 2, 65, 70, 75


class _Usage(Exception):
    """A usage problem: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Usage(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="resilient-runtime analyze", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--context", metavar="FILE", help="error-context JSON file, or - for stdin")
    p.add_argument("--log", metavar="FILE", help="log file, or - for stdin (only the tail is read)")
    p.add_argument("--failures", metavar="STR|@FILE", help="{{workflow.failures}}, or @FILE")
    p.add_argument("--status", default="", help="{{workflow.status}}")
    p.add_argument("--workflow", default="", help="workflow name")
    p.add_argument("--namespace", default="", help="workflow namespace")
    p.add_argument("--uid", default="", help="workflow uid (makes failure ids stable)")
    p.add_argument("--url", default="", help="link to the workflow in the Argo UI")
    p.add_argument("--stage", default="", help="the failed stage (the one --log/--context belong to)")
    p.add_argument("--stages", default="", help="the workflow's stages in order: a,b,c")
    p.add_argument("--exit-code", type=int, help="exit code of the stage command")
    p.add_argument("--signal", help="signal that ended the command (KILL, TERM…)")
    p.add_argument("--pod-reason", help="pod/container reason (OOMKilled, Evicted…)")
    p.add_argument("--node-message", default="", help="the Argo node message")
    p.add_argument("--attempts", type=int, help="attempts made so far")
    p.add_argument("--max-attempts", type=int, help="attempts the retry policy allows")
    p.add_argument("--store", help="state store URL (default $RT_STATE_URL; none when unset)")
    p.add_argument("--no-store", action="store_true", help="do not use the state store")
    p.add_argument("--output", metavar="FILE", help="also write the JSON lines to FILE")
    p.add_argument("--signatures", metavar="FILE", action="append", default=[],
                   help="extra signatures (YAML/JSON); repeatable")  # fmt: skip
    p.add_argument("--threshold", type=float, default=None,
                   help="confidence below which the category is unknown (default 0.5)")  # fmt: skip
    p.add_argument("--tail-bytes", type=int, default=None, help="bytes of log analysed (1 MiB)")
    p.add_argument("--jsonl", metavar="FILE", help="batch mode: classify each {id, text} line")
    p.add_argument("--resolve", metavar="FAILURE_ID", help="record how a failure was resolved")
    p.add_argument("--resolution", help="what resolved it (with --resolve)")
    p.add_argument("--now", type=float, help=argparse.SUPPRESS)  # fixed clock for tests
    return p


def run(argv: Sequence[str]) -> int:
    args_list = list(argv[1:] if argv and argv[0] == "analyze" else argv)
    try:
        args = _parser().parse_args(args_list)
        _check(args)
        if args.resolve:
            return _resolve(args)
        kb = _knowledge(args)
        if args.jsonl:
            return _batch(args, kb)
        return _analyze(args, kb)
    except _Usage as exc:
        _err(f"usage error: {exc} (see resilient-runtime analyze --help)")
        return EX_USAGE
    except ConfigError as exc:
        _err(str(exc))
        return EX_USAGE
    except StateStoreError as exc:
        _err(f"state store: {exc}")
        return int(getattr(exc, "exit_code", EX_TEMPFAIL))
    except ResilientTemplatesError as exc:
        _err(str(exc))
        return int(getattr(exc, "exit_code", EX_SOFTWARE))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EX_OK
    except Exception as exc:  # a bug: one line, not a traceback, and the documented code
        _err(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}")
        if os.environ.get("RT_DEBUG"):
            raise
        return EX_SOFTWARE


def _check(args: argparse.Namespace) -> None:
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise _Usage(f"--threshold must be within [0, 1], got {args.threshold}")
    if args.tail_bytes is not None and args.tail_bytes < 1:
        raise _Usage(f"--tail-bytes must be positive, got {args.tail_bytes}")
    if args.resolve and not args.resolution:
        raise _Usage("--resolve needs --resolution TEXT")
    stdin_users = [o for o in ("context", "log", "jsonl") if getattr(args, o) == "-"]
    if args.failures == "@-":
        stdin_users.append("failures")
    if len(stdin_users) > 1:
        raise _Usage(f"only one input can read stdin (got --{' and --'.join(stdin_users)})")


def _knowledge(args: argparse.Namespace) -> Any:
    if not args.signatures:
        return None
    from .knowledge import load

    return load(args.signatures)


# --------------------------------------------------------------------------- single / workflow


def _analyze(args: argparse.Namespace, kb: Any) -> int:
    from . import api
    from .analyzer import FailureInput
    from .tail import DEFAULT_TAIL_BYTES, read_tail

    now = time.time() if args.now is None else args.now
    tail_bytes = args.tail_bytes or DEFAULT_TAIL_BYTES
    workflow = WorkflowRef(name=args.workflow, namespace=args.namespace, uid=args.uid,
                           status=args.status, url=args.url)  # fmt: skip
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    context = _read_bytes(args.context, "--context") if args.context else None
    log = None
    if args.log:
        try:
            log = read_tail(args.log, tail_bytes)
        except OSError as exc:
            raise _Usage(f"--log {args.log}: {exc.strerror or exc}") from exc

    if args.failures is not None:
        failures = args.failures
        if failures.startswith("@"):
            failures = _read_bytes(failures[1:], "--failures")
        inputs = api.workflow_inputs(args.status, failures, workflow=workflow,
                                     contexts=None, stages=stages)  # fmt: skip
        target = _target_stage(inputs, args.stage)
        inputs = [
            _with_local(inp, args, context, log, tail_bytes) if i == target else inp
            for i, inp in enumerate(inputs)
        ]
        if target is None and (context is not None or log is not None) and inputs:
            why = (f"--stage {args.stage} is not among the failed stages" if args.stage
                   else f"{len(inputs)} stages failed and no --stage says which")  # fmt: skip
            note = f"--log/--context not used: {why}"
            inputs = [replace(inp, degraded=(*inp.degraded, note)) for inp in inputs]
    else:
        base = api.context_input(context, stage=args.stage, workflow=workflow,
                                 stages=stages, tail_bytes=tail_bytes) if context is not None \
            else FailureInput(stage=args.stage, workflow=workflow, stages=stages)  # fmt: skip
        inputs = [_with_local(base, args, None, log, tail_bytes)]

    history, store, store_problem = _open_store(args)
    if store_problem:
        _err(f"state store unavailable: {store_problem} (the analysis is printed, not recorded)")
    analyzer = api.analyzer(kb, args.threshold)
    analyses = []
    malformed = False
    for inp in inputs:
        inp = _evidence_note(inp)
        if store_problem:
            inp = replace(inp, degraded=(*inp.degraded, f"history unavailable: {store_problem}"))
        malformed = malformed or inp.malformed or _no_evidence(inp)
        analyses.append(analyzer.analyze(inp, history=history, now=now))
    lines = "".join(a.to_json() + "\n" for a in analyses)
    code = EX_OK
    try:
        sys.stdout.write(lines)
        sys.stdout.flush()
    finally:  # the file is written even when stdout is gone
        if args.output:
            code = _write_output(args.output, lines)
    store_failed = bool(store_problem)
    if history is not None:
        for analysis in analyses:
            try:
                history.record(analysis)
            except Exception as exc:
                _err(f"state store: analysis {analysis.failure_id} not recorded: {_line(exc)}")
                store_failed = True
    if store is not None:
        store.close()
    if store_failed:
        return EX_TEMPFAIL
    if code:
        return code
    return EX_DATAERR if malformed else EX_OK


def _target_stage(inputs: list[Any], stage: str) -> int | None:
    if stage:
        for i, inp in enumerate(inputs):
            if stage in (inp.stage, inp.template_name, inp.node):
                return i
        return None
    return 0 if len(inputs) == 1 else None


def _with_local(inp: Any, args: argparse.Namespace, context: bytes | None, log: Any,
                tail_bytes: int) -> Any:  # fmt: skip
    """Add what the command line says about this one stage to its input."""
    from . import api

    if context is not None:
        local = api.context_input(context, stage=inp.stage, workflow=inp.workflow,
                                  node_message=inp.node_message, stages=inp.stages,
                                  tail_bytes=tail_bytes)  # fmt: skip
        inp = replace(
            local,
            template_name=inp.template_name,
            attempts=inp.attempts or local.attempts,
            attempt=local.attempt or inp.attempt,
            retry_stopped=inp.retry_stopped,
            phase=inp.phase,
            node=inp.node,
            degraded=(*inp.degraded, *local.degraded),
            malformed=inp.malformed or local.malformed,
        )
    changes: dict[str, Any] = {}
    if log is not None:
        changes.update(log=log.data, log_truncated=log.truncated or inp.log_truncated)
    if args.exit_code is not None:
        changes["exit_code"] = args.exit_code
    if args.signal:
        changes["signal"] = args.signal.upper().removeprefix("SIG")
    if args.pod_reason:
        changes["pod_reason"] = args.pod_reason
    if args.node_message:
        changes["node_message"] = args.node_message
    if args.attempts is not None:
        changes["attempts"] = args.attempts
    if args.max_attempts is not None:
        changes["max_attempts"] = args.max_attempts
    return replace(inp, **changes) if changes else inp


def _no_evidence(inp: Any) -> bool:
    return not (inp.log.strip() or inp.node_message.strip() or inp.exit_code is not None
                or inp.pod_reason or inp.hint or inp.signal or inp.timed_out)  # fmt: skip


def _evidence_note(inp: Any) -> Any:
    if _no_evidence(inp) and not any("no failure evidence" in d for d in inp.degraded):
        return replace(inp, degraded=(*inp.degraded, "no failure evidence given (empty input)"))
    return inp


def _open_store(args: argparse.Namespace) -> tuple[Any, Any, str]:
    url = None if args.no_store else (args.store or os.environ.get("RT_STATE_URL"))
    if not url:
        return None, None, ""
    from ..store import open_store
    from .history import AnalysisHistory

    store = None
    try:
        store = open_store(url, timeout=float(os.environ.get("RT_STORE_TIMEOUT", "5")))
        return AnalysisHistory(store), store, ""
    except Exception as exc:
        if store is not None:
            store.close()
        return None, None, _line(exc)


def _write_output(path: str, lines: str) -> int:
    try:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        temporary = f"{path}.tmp-{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(lines)
        os.replace(temporary, path)
    except OSError as exc:
        _err(f"--output {path}: {exc.strerror or exc} (the analysis was printed on stdout)")
        return EX_SOFTWARE
    return EX_OK


# --------------------------------------------------------------------------- batch


def _batch(args: argparse.Namespace, kb: Any) -> int:
    from . import api
    from .analyzer import FailureInput
    from .tail import DEFAULT_TAIL_BYTES, tail_of

    analyzer = api.analyzer(kb, args.threshold)
    tail_bytes = args.tail_bytes or DEFAULT_TAIL_BYTES
    bad = 0
    try:
        stream = sys.stdin.buffer if args.jsonl == "-" else open(args.jsonl, "rb")
    except OSError as exc:
        raise _Usage(f"--jsonl {args.jsonl}: {exc.strerror or exc}") from exc
    out = sys.stdout
    with stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            item, problem = _batch_item(raw, number)
            ident = item.get("id", f"line {number}") if isinstance(item, dict) else f"line {number}"
            if problem:
                bad += 1
                out.write(json.dumps({"id": ident, "error": problem}, ensure_ascii=False) + "\n")
                continue
            text = item["text"].encode("utf-8", errors="replace")
            exit_code = item.get("exit_code")
            inp = FailureInput(
                log=tail_of(text, tail_bytes).data,
                stage=str(item.get("stage") or ""),
                exit_code=exit_code if isinstance(exit_code, int) else None,
                pod_reason=item.get("pod_reason") if isinstance(item.get("pod_reason"), str) else None,
                node_message=str(item.get("node_message") or ""),
            )
            verdict, _past, _notes = analyzer.classify(inp)
            sig = verdict.signature
            severity = (sig.effective_severity.value if sig else "error")
            out.write(json.dumps({
                "id": ident,
                "category": verdict.category.value,
                "transient": verdict.transient,
                "confidence": verdict.confidence,
                "signature": sig.name if sig else None,
                "guess": verdict.guess.name if verdict.guess else None,
                "severity": severity,
            }, ensure_ascii=False) + "\n")  # fmt: skip
    out.flush()
    return EX_DATAERR if bad else EX_OK


def _batch_item(raw: bytes, number: int) -> tuple[Any, str]:
    try:
        item = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError as exc:
        return None, f"line {number}: not JSON ({exc})"
    if not isinstance(item, dict):
        return item, f"line {number}: expected an object with id and text"
    if not isinstance(item.get("text"), str):
        return item, f"line {number}: 'text' must be a string"
    return item, ""


# --------------------------------------------------------------------------- resolve


def _resolve(args: argparse.Namespace) -> int:
    url = None if args.no_store else (args.store or os.environ.get("RT_STATE_URL"))
    if not url:
        raise _Usage("--resolve needs a state store (--store URL or $RT_STATE_URL)")
    from ..store import open_store
    from .history import AnalysisHistory

    store = open_store(url, timeout=float(os.environ.get("RT_STORE_TIMEOUT", "5")))
    try:
        AnalysisHistory(store).resolve(args.resolve, args.resolution, now=args.now)
    finally:
        store.close()
    print(json.dumps({"failure_id": args.resolve, "resolved": True}))
    return EX_OK


# --------------------------------------------------------------------------- helpers


def _read_bytes(path: str, option: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as handle:
            return handle.read(64 << 20)  # a context or failures list, not a log
    except OSError as exc:
        raise _Usage(f"{option} {path}: {exc.strerror or exc}") from exc


def _err(message: str) -> None:
    print(f"resilient-runtime analyze: {message}", file=sys.stderr)


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
