"""``resilient-runtime notify | route | ack | resolve | tick``.

::

    notify  --config PLAN --analysis FILE|-                 a FailureAnalysis (object, list or JSON lines)
    notify  --config PLAN --status S --failures F --workflow NAME [--namespace N] [--uid U]
            [--context-dir DIR]                             Argo's {{workflow.status}} + {{workflow.failures}};
                                                            DIR holds <stage>.json error contexts
            [--wait 30s] [--deliver-for 15s]
    route test --config PLAN key=value ... [--tree] [--verify-receivers a,b]
    ack     INCIDENT [--by NAME] --config PLAN
    resolve --workflow NAME [--namespace N] | --incident ID   [--by NAME] --config PLAN
    tick    --config PLAN [--loop --for 60s] [--deliver-for 10s]

``--config`` defaults to ``$RT_NOTIFY_CONFIG``, ``--store`` to ``$RT_STATE_URL``. ``notify
--status Succeeded`` resolves the workflow's open incidents instead of notifying.

Shared or private store: with ``--store`` or ``$RT_STATE_URL`` the store is shared, a group
still in ``group_wait`` stays there for other failures to join and for ``tick`` to flush
(the summary's ``waiting`` counts such groups). Without either, the store is this process's
own default SQLite file (a pod without the ``resilient-state`` Secret): nobody else will see
its groups, so ``notify`` flushes and delivers them before it exits.
stdout gets one JSON summary line; stderr gets one log line per decision.

Exit codes: 0 done (messages not yet delivered are safe in the outbox for ``tick``); 1 ``route
test --verify-receivers`` mismatch; 2 usage error or unusable input (bad config, unknown
incident); 69 a message could not be delivered to its channel nor to any fallback; 70 internal
error; 75 state store locked or unreachable.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ...errors import ConfigError, PolicyError, ResilientTemplatesError, RuntimeFailure
from ...policy.duration import Duration

__all__ = ["run"]

CONFIG_ENV = "RT_NOTIFY_CONFIG"
EXIT_MISMATCH = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69
EXIT_SOFTWARE = 70

log = logging.getLogger("resilient_templates.runtime.notify")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


def _seconds(text: str) -> float:
    try:
        return Duration.parse(text).seconds
    except PolicyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(parser: argparse.ArgumentParser, *, config: bool = True) -> None:
    if config:
        parser.add_argument("--config", default=os.environ.get(CONFIG_ENV),
                            help=f"compiled plan (.json) or notification config (.yaml); ${CONFIG_ENV}")  # fmt: skip
    parser.add_argument("--store", default=None, help="state store URL ($RT_STATE_URL)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no log lines on stderr")


def _parser(command: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"resilient-runtime {command}")
    if command == "notify":
        _common(p)
        p.add_argument("--analysis", help="FailureAnalysis JSON file, or - for stdin")
        p.add_argument("--status", help="Argo {{workflow.status}}")
        p.add_argument("--failures", default="", help="Argo {{workflow.failures}} (JSON), @FILE or -")
        p.add_argument("--workflow", help="workflow name ({{workflow.name}})")
        p.add_argument("--namespace", default="")
        p.add_argument("--uid", default="")
        p.add_argument("--context-dir", default=None,
                       help="directory of the stage wrappers' <stage>.json error-context files")  # fmt: skip
        p.add_argument("--wait", type=_seconds, default=0.0,
                       help="wait up to this long for this call's group_wait and flush here")  # fmt: skip
        p.add_argument("--deliver-for", type=_seconds, default=15.0,
                       help="retry this call's messages for at most this long (default 15s)")  # fmt: skip
    elif command == "route":
        p.add_argument("action", choices=["test"])
        _common(p)
        p.add_argument("labels", nargs="*", help="key=value")
        p.add_argument("--tree", action="store_true", help="print the routing tree walk")
        p.add_argument("--verify-receivers", default=None, help="expected receivers, a,b")
    elif command == "ack":
        p.add_argument("incident")
        _common(p)
        p.add_argument("--by", default=os.environ.get("USER") or "unknown")
        p.add_argument("--deliver-for", type=_seconds, default=15.0)
    elif command == "resolve":
        _common(p)
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--workflow")
        target.add_argument("--incident")
        p.add_argument("--namespace", default=None)
        p.add_argument("--by", default=None)
        p.add_argument("--deliver-for", type=_seconds, default=15.0)
    elif command == "tick":
        _common(p)
        p.add_argument("--loop", action="store_true", help="keep ticking for --for")
        p.add_argument("--for", dest="duration", type=_seconds, default=60.0)
        p.add_argument("--deliver-for", type=_seconds, default=0.0,
                       help="a single tick also waits this long for retries that come due")  # fmt: skip
    return p


def run(argv: list[str]) -> int:
    """Entry point: ``argv[0]`` is the command (notify, route, ack, resolve, tick)."""
    command, rest = argv[0], list(argv[1:])
    try:
        args = _parser(command).parse_intermixed_args(rest)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.quiet)
    try:
        return _COMMANDS[command](args)
    except _UsageError as exc:
        print(f"resilient-runtime {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, PolicyError, LookupError) as exc:
        print(f"resilient-runtime {command}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeFailure as exc:
        print(f"resilient-runtime {command}: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except ResilientTemplatesError as exc:
        print(f"resilient-runtime {command}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # an internal error is still one line; RT_DEBUG=1 re-raises
        if os.environ.get("RT_DEBUG"):
            raise
        print(f"resilient-runtime {command}: internal error: {type(exc).__name__}: {exc}",
              file=sys.stderr)  # fmt: skip
        return EXIT_SOFTWARE


def _one_line(exc: BaseException) -> str:
    """The error as printed: config problems one per line, anything else on one line."""
    text = str(exc)
    if isinstance(exc, LookupError):
        return text.strip("'\"")
    if isinstance(exc, ConfigError):
        return text
    return " ".join(text.split())


def _configure_logging(quiet: bool) -> None:
    logger = logging.getLogger("resilient_templates.runtime.notify")
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("resilient-runtime: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def _plan(args: argparse.Namespace) -> Any:
    if not args.config:
        raise _UsageError(f"--config is required (or set ${CONFIG_ENV})")
    from .plan import load_plan

    return load_plan(args.config)


def _service(args: argparse.Namespace, plan: Any) -> Any:
    from ..store import open_store
    from .service import NotifyService

    store = open_store(args.store)
    return NotifyService(store, plan)


def _private(args: argparse.Namespace) -> bool:
    """Whether the store is the private default file (no --store and no $RT_STATE_URL)."""
    from ..store import is_default

    return is_default(args.store)


def _emit(summary: dict[str, Any]) -> None:
    from .text import dumps

    print(dumps(summary))


# --------------------------------------------------------------------------- notify


def _notify(args: argparse.Namespace) -> int:
    plan = _plan(args)
    if args.analysis is None and args.status is None:
        raise _UsageError("give --analysis FILE|- or --status S --failures F --workflow NAME")
    if args.status is not None and not args.workflow:
        raise _UsageError("--status needs --workflow NAME")
    # The exit handler passes the analyze step's output AND Argo's status/failures: an empty
    # analysis (the analyze step failed, or nothing to report) falls back to them, and a run
    # that succeeded resolves the workflow's open incidents.
    analyses = _read_analyses(args.analysis) if args.analysis else []
    service = _service(args, plan)
    try:
        if not analyses and args.status == "Succeeded":
            results, delivery = service.resolve(
                workflow=args.workflow, namespace=args.namespace or None,
                by=f"workflow {args.workflow} succeeded", deliver_for=args.deliver_for,
            )  # fmt: skip
            _emit({"resolved": [r.incident for r in results if r.closed], **delivery.to_dict()})
            return EXIT_UNAVAILABLE if delivery.undeliverable else 0
        if not analyses and args.status is not None:
            analyses = _analyze(args, service.store)
        report = service.notify(
            analyses, wait=args.wait, deliver_for=args.deliver_for, private_store=_private(args)
        )
    finally:
        service.store.close()
    _emit(report.to_dict())
    return EXIT_UNAVAILABLE if report.delivery.undeliverable else 0


def _read_analyses(source: str) -> list[Any]:
    from ..model import FailureAnalysis

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read analysis: {exc.strerror}", file=source) from None
    name = "<stdin>" if source == "-" else source
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except ValueError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise ConfigError("not JSON", file=name, expected="a FailureAnalysis document") from exc
    analyses = []
    for index, item in enumerate(items):
        try:
            analyses.append(FailureAnalysis.from_dict(item))
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"not a FailureAnalysis ({type(exc).__name__}: {exc})",
                file=name, key=f"[{index}]", expected="the JSON written by resilient-runtime analyze",
            ) from None  # fmt: skip
    return analyses


def _analyze(args: argparse.Namespace, store: Any) -> list[Any]:
    from ..analysis import analyze_workflow
    from ..model import WorkflowRef

    failures = args.failures
    if failures == "-":
        failures = sys.stdin.read()
    elif failures.startswith("@"):
        failures = Path(failures[1:]).read_text(encoding="utf-8")
    workflow = WorkflowRef(
        name=args.workflow, namespace=args.namespace, uid=args.uid, status=args.status
    )
    contexts = _read_contexts(args.context_dir) if args.context_dir else None
    return list(
        analyze_workflow(args.status, failures, workflow=workflow, contexts=contexts, store=store)
    )


def _read_contexts(directory: str) -> dict[str, bytes]:
    """The stage wrappers' error-context files: ``DIR/<stage>.json`` → {stage: bytes}."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError("not a directory", key="--context-dir", value=directory,
                          expected="a directory of <stage>.json error-context files")  # fmt: skip
    contexts = {}
    for path in sorted(root.glob("*.json")):
        try:
            contexts[path.stem] = path.read_bytes()
        except OSError:
            continue  # an unreadable context degrades that stage's analysis, nothing more
    return contexts


# --------------------------------------------------------------------------- route test


def _route(args: argparse.Namespace) -> int:
    from . import routing

    plan = _plan(args)
    labels: dict[str, str] = {}
    for item in args.labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _UsageError(f"label {item!r} is not key=value")
        labels[key.strip()] = value.strip().strip('"')
    matches = routing.match(plan.route, labels)
    receivers = list(dict.fromkeys(m.receiver for m in matches))
    if args.tree:
        print("\n".join(routing.explain(plan, labels)))
    else:
        print(",".join(receivers))
    if args.verify_receivers is not None:
        expected = [r.strip() for r in args.verify_receivers.split(",") if r.strip()]
        if expected != receivers:
            print(
                f"WARNING: expected receivers {','.join(expected)} did not match resolved "
                f"receivers {','.join(receivers)}",
                file=sys.stderr,
            )
            return EXIT_MISMATCH
    return 0


# --------------------------------------------------------------------------- ack / resolve / tick


def _ack(args: argparse.Namespace) -> int:
    service = _service(args, _plan(args))
    try:
        result = service.acknowledge(args.incident, by=args.by, deliver_for=args.deliver_for)
    finally:
        service.store.close()
    _emit({"incident": result.incident, "state": result.state, "acked_by": result.acked_by,
           "acked_at": result.acked_at, "enqueued": len(result.outbox_ids)})  # fmt: skip
    return 0


def _resolve(args: argparse.Namespace) -> int:
    service = _service(args, _plan(args))
    try:
        by = args.by or ("operator" if args.incident else f"workflow {args.workflow} succeeded")
        results, delivery = service.resolve(
            workflow=args.workflow, namespace=args.namespace, incident=args.incident, by=by,
            deliver_for=args.deliver_for,
        )  # fmt: skip
    finally:
        service.store.close()
    _emit({"resolved": [r.incident for r in results if r.closed], **delivery.to_dict()})
    return EXIT_UNAVAILABLE if delivery.undeliverable else 0


def _tick(args: argparse.Namespace) -> int:
    service = _service(args, _plan(args))
    try:
        if args.loop:
            report = service.tick_loop(duration=args.duration)
        else:
            report = service.tick(deliver_for=args.deliver_for)
    finally:
        service.store.close()
    _emit(report.to_dict())
    return EXIT_UNAVAILABLE if report.delivery.undeliverable else 0


_COMMANDS = {
    "notify": _notify,
    "route": _route,
    "ack": _ack,
    "resolve": _resolve,
    "tick": _tick,
}
