"""The checks Argo's JSON schema cannot make (argo-semantics §1, §2, §5, §6, §7, §8).

Each check mirrors what Argo does with the value: the controller's parsers (``strconv.Atoi``,
``time.ParseDuration``, ``ParseStringToDuration``), the cache-key and metric-name patterns, and
``argo lint``'s structural rules. Values holding ``{{...}}`` are resolved by Argo at run time and
are skipped where their literal text cannot be judged. The input may be malformed (the schema
reports that); these checks never fail on unexpected types, they just look elsewhere.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from ..errors import DurationError
from ..policy import Duration
from .problem import Finding, describe, render_path, show

__all__ = ["WORKFLOW_KINDS", "check_document"]

WORKFLOW_KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
LEAF_TYPES = ("container", "containerSet", "script", "resource", "data", "http", "plugin")
NON_LEAF_TYPES = ("steps", "dag", "suspend")
METRIC_TYPES = ("counter", "gauge", "histogram")

TAG = re.compile(r"\{\{.*?\}\}", re.DOTALL)
GO_INT = re.compile(r"[+-]?[0-9]+")  # what strconv.Atoi accepts
METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # Prometheus legacy names without ':'
MEMO_KEY_CHAR = re.compile(r"[a-zA-Z0-9-]")

Parts = tuple[str | int, ...]

_ARGO_DURATION = 'a Go duration such as "30s", "2m" or "1h30m", or whole seconds such as "30"'
_GO_DURATION = 'a Go duration with a unit, such as "30s", "10m" or "24h"'
_NEEDS_UNIT = "a bare number is not a Go duration: Argo reads this field with time.ParseDuration, which needs a unit"


def check_document(doc: Mapping[str, Any]) -> list[Finding]:
    """Every semantic problem of one Argo document, in document order."""
    checker = _Checker()
    checker.document(doc)
    return checker.findings


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _templated(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


class _Checker:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.metric_types: dict[str, tuple[str, Parts]] = {}
        self.references: list[tuple[Parts, object]] = []

    def add(self, parts: Parts, message: str, rule: str) -> None:
        self.findings.append(Finding(parts, message, rule))

    # -- document and workflow spec ------------------------------------------------------

    def document(self, doc: Mapping[str, Any]) -> None:
        kind, spec = doc.get("kind"), _dict(doc.get("spec"))
        if kind not in WORKFLOW_KINDS:
            return
        at: Parts = ("spec",)
        if kind == "CronWorkflow":
            if "schedule" in spec:
                value = spec["schedule"]
                self.add(
                    ("spec", "schedule"),
                    describe(
                        "removed in Argo v4; use schedules: [...]",
                        got=value,
                        expected=f"schedules: [{show(value)}]",
                    ),
                    "removed-v4",
                )
            spec, at = _dict(spec.get("workflowSpec")), ("spec", "workflowSpec")
        self.workflow_spec(spec, at)

    def workflow_spec(self, spec: dict[str, Any], at: Parts) -> None:
        if "podPriority" in spec:
            self.add(
                (*at, "podPriority"),
                describe(
                    "removed in Argo v4; use podPriorityClassName",
                    got=spec["podPriority"],
                    expected="podPriorityClassName: <name of a PriorityClass>",
                ),
                "removed-v4",
            )
        if "retryStrategy" in spec:
            self.add(
                (*at, "retryStrategy"),
                "a spec-level retryStrategy applies to every template without its own, including "
                "steps/DAG templates, exit handlers and suspend gates, so retries multiply "
                "(argo-semantics §1.8); set retryStrategy on each leaf template instead",
                "spec-retry",
            )
            self.retry_strategy(spec["retryStrategy"], (*at, "retryStrategy"))
        defaults = spec.get("templateDefaults")
        if isinstance(defaults, dict):
            if "retryStrategy" in defaults:
                self.add(
                    (*at, "templateDefaults", "retryStrategy"),
                    "templateDefaults.retryStrategy is merged into every template, including "
                    "steps/DAG templates and exit handlers, so retries multiply "
                    "(argo-semantics §1.8); set retryStrategy on each leaf template instead",
                    "spec-retry",
                )
            self.template_fields(defaults, (*at, "templateDefaults"))
        self.synchronization(spec.get("synchronization"), (*at, "synchronization"))
        self.metrics(spec.get("metrics"), (*at, "metrics"))

        templates = _list(spec.get("templates"))
        for index, template in enumerate(templates):
            if isinstance(template, dict):
                self.template(template, (*at, "templates", index))

        hooks_at = (*at, "hooks")
        self.hooks(spec.get("hooks"), hooks_at)
        if spec.get("workflowTemplateRef") is None:  # else names resolve in the referenced template
            self.references.append(((*at, "entrypoint"), spec.get("entrypoint")))
            self.references.append(((*at, "onExit"), spec.get("onExit")))
            names = {t.get("name") for t in templates if isinstance(t, dict)}
            self.resolve(names)

    def resolve(self, names: set[object]) -> None:
        known = sorted(n for n in names if isinstance(n, str))
        for parts, name in self.references:
            if not isinstance(name, str) or not name or _templated(name) or name in names:
                continue
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
            listed = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "") or "none defined"
            hint = f'; did you mean "{close[0]}"?' if close else ""
            self.add(
                parts,
                describe(
                    f"no template named {show(name)} in this document",
                    got=name,
                    expected=f"one of: {listed}{hint}",
                ),
                "template-ref",
            )

    # -- templates -----------------------------------------------------------------------

    def template(self, template: dict[str, Any], at: Parts) -> None:
        non_leaf = next((t for t in NON_LEAF_TYPES if template.get(t) is not None), None)
        if non_leaf is not None:
            self.leaf_only(template, at, non_leaf)
        self.template_fields(template, at)
        self.metrics(template.get("metrics"), (*at, "metrics"))
        for group_index, group in enumerate(_list(template.get("steps"))):
            for step_index, step in enumerate(_list(group)):
                if isinstance(step, dict):
                    self.step_or_task(step, (*at, "steps", group_index, step_index))
        tasks = [t for t in _list(_dict(template.get("dag")).get("tasks")) if isinstance(t, dict)]
        uses_depends = next((t.get("name") for t in tasks if t.get("depends")), None)
        for task_index, task in enumerate(_list(_dict(template.get("dag")).get("tasks"))):
            if not isinstance(task, dict):
                continue
            task_at = (*at, "dag", "tasks", task_index)
            self.step_or_task(task, task_at)
            if uses_depends is not None and task.get("continueOn") is not None:
                self.add(
                    (*task_at, "continueOn"),
                    describe(
                        f"continueOn cannot be used in a DAG that uses depends (task {show(uses_depends)} "
                        "does); Argo lint rejects it",
                        got=task["continueOn"],
                        expected='"<task>.Failed" or "<task>.Errored" in the depends of the tasks that follow',
                    ),
                    "continue-on-depends",
                )

    def leaf_only(self, template: dict[str, Any], at: Parts, kind: str) -> None:
        leaves = ", ".join(LEAF_TYPES)
        if "activeDeadlineSeconds" in template:
            consequence = (
                "Argo ignores it there; bound the wait with suspend.duration"
                if kind == "suspend"
                else "Argo lint rejects it"
            )
            self.add(
                (*at, "activeDeadlineSeconds"),
                describe(
                    f"activeDeadlineSeconds only applies to leaf templates, not to a {kind} template; {consequence}",
                    got=template["activeDeadlineSeconds"],
                    expected=f"it only on leaf templates: {leaves}",
                ),
                "leaf-only",
            )
        if "timeout" in template:
            self.add(
                (*at, "timeout"),
                describe(
                    f"timeout only applies to leaf templates, not to a {kind} template; Argo lint rejects it",
                    got=template["timeout"],
                    expected=f"it only on leaf templates: {leaves}",
                ),
                "leaf-only",
            )

    def template_fields(self, template: dict[str, Any], at: Parts) -> None:
        """Checks shared by real templates and ``templateDefaults``."""
        if "retryStrategy" in template:
            self.retry_strategy(template["retryStrategy"], (*at, "retryStrategy"))
        if "timeout" in template:
            self.duration(template["timeout"], (*at, "timeout"), bare_seconds=False)
        suspend = template.get("suspend")
        if isinstance(suspend, dict) and "duration" in suspend:
            self.duration(suspend["duration"], (*at, "suspend", "duration"), bare_seconds=True)
        memoize = template.get("memoize")
        if isinstance(memoize, dict):
            if "maxAge" in memoize:
                self.duration(memoize["maxAge"], (*at, "memoize", "maxAge"), bare_seconds=False)
            if "key" in memoize:
                self.memoize_key(memoize["key"], (*at, "memoize", "key"))
        self.synchronization(template.get("synchronization"), (*at, "synchronization"))

    def step_or_task(self, step: dict[str, Any], at: Parts) -> None:
        self.references.append(((*at, "template"), step.get("template")))
        self.references.append(((*at, "onExit"), step.get("onExit")))
        self.hooks(step.get("hooks"), (*at, "hooks"))
        inline = step.get("inline")
        if isinstance(inline, dict):
            self.template(inline, (*at, "inline"))

    def hooks(self, hooks: object, at: Parts) -> None:
        for name, hook in _dict(hooks).items():
            if not isinstance(hook, dict):
                continue
            self.references.append(((*at, name, "template"), hook.get("template")))
            if name != "exit" and not hook.get("expression"):
                self.add(
                    (*at, name, "expression"),
                    describe(
                        f"lifecycle hook {show(name)} has no expression, which Argo requires for every "
                        'hook except "exit"',
                        expected='a condition such as workflow.status == "Running"',
                    ),
                    "hook-expression",
                )

    # -- retryStrategy -------------------------------------------------------------------

    def retry_strategy(self, strategy: object, at: Parts) -> None:
        if not isinstance(strategy, dict):
            return
        if "limit" not in strategy:
            self.add(
                (*at, "limit"),
                describe(
                    "retryStrategy has no limit, so Argo would retry forever and skip the backoff",
                    expected='an explicit limit, the number of retries after the first attempt, e.g. limit: "2"',
                ),
                "retry-limit",
            )
        else:
            self.integer(strategy["limit"], (*at, "limit"), "limit")
        backoff = strategy.get("backoff")
        if not isinstance(backoff, dict):
            return
        if "factor" in backoff:
            self.integer(backoff["factor"], (*at, "backoff", "factor"), "backoff factor")
        if not backoff.get("duration"):
            self.add(
                (*at, "backoff", "duration"),
                describe(
                    "backoff has no duration, so Argo errors the retry node with "
                    '"no base duration specified for retryStrategy"',
                    expected=f"a base delay: {_ARGO_DURATION}",
                ),
                "duration",
            )
        for key in ("duration", "maxDuration", "cap"):
            if backoff.get(key):
                self.duration(backoff[key], (*at, "backoff", key), bare_seconds=True)

    def integer(self, value: object, at: Parts, what: str) -> None:
        """An IntOrString Argo reads with ``strconv.Atoi``: ``"1.5"`` errors the node at run time."""
        if isinstance(value, int) and not isinstance(value, bool):
            return
        if isinstance(value, str) and (GO_INT.fullmatch(value) or _templated(value)):
            return
        self.add(
            at,
            describe(
                f"{what} must be an integer: Argo parses it with strconv.Atoi and errors the node at run time",
                got=value,
                expected='an integer such as 2 or "2"',
            ),
            "integer",
        )

    # -- durations, memoize --------------------------------------------------------------

    def duration(self, value: object, at: Parts, *, bare_seconds: bool) -> None:
        """``bare_seconds``: Argo's ParseStringToDuration (a plain number is seconds); otherwise
        Go's time.ParseDuration alone (``timeout``, ``memoize.maxAge``), where a unit is required."""
        problem = _duration_problem(value, bare_seconds=bare_seconds)
        if problem:
            expected = _ARGO_DURATION if bare_seconds else _GO_DURATION
            self.add(at, describe(problem, got=value, expected=expected), "duration")

    def memoize_key(self, key: object, at: Parts) -> None:
        if not isinstance(key, str):
            return
        literal = "".join(TAG.split(key))
        bad = sorted({c for c in literal if not MEMO_KEY_CHAR.fullmatch(c)})
        if bad:
            problem = f"memoize key has {', '.join(show(c) for c in bad)} outside {{{{...}}}}"
        elif key.startswith("-"):
            problem = "memoize key starts with '-'"
        elif not key:
            problem = "memoize key is empty"
        else:
            return
        self.add(
            at,
            describe(
                problem + ', so Argo fails the node with "invalid cache key"',
                got=key,
                expected="a key matching ^[a-zA-Z0-9][-a-zA-Z0-9]*$ after substitution; "
                "hash free text with {{=sprig.sha256sum(...)}}",
            ),
            "memoize-key",
        )

    # -- synchronization, metrics ---------------------------------------------------------

    def synchronization(self, sync: object, at: Parts) -> None:
        for singular, plural in (("mutex", "mutexes"), ("semaphore", "semaphores")):
            if isinstance(sync, dict) and singular in sync:
                value = sync[singular]
                self.add(
                    (*at, singular),
                    describe(
                        f"removed in Argo v4; use {plural}: [...]",
                        got=value,
                        expected=f"{plural}: [{show(value)}]",
                    ),
                    "removed-v4",
                )

    def metrics(self, metrics: object, at: Parts) -> None:
        for index, metric in enumerate(_list(_dict(metrics).get("prometheus"))):
            if isinstance(metric, dict):
                self.metric(metric, (*at, "prometheus", index))

    def metric(self, metric: dict[str, Any], at: Parts) -> None:
        name = metric.get("name")
        if "name" in metric and not (isinstance(name, str) and METRIC_NAME.fullmatch(name)):
            self.add(
                (*at, "name"),
                describe(
                    "invalid metric name: Prometheus names allow only letters, digits and '_' "
                    "and cannot start with a digit",
                    got=name,
                    expected="a name matching ^[a-zA-Z_][a-zA-Z0-9_]*$",
                ),
                "metric-name",
            )
        if not metric.get("help"):
            self.add(
                (*at, "help"),
                describe("metric has no help text, which Argo lint requires", expected="a non-empty help string"),
                "metric-help",
            )
        for index, label in enumerate(_list(metric.get("labels"))):
            key = _dict(label).get("key")
            if not (isinstance(key, str) and METRIC_NAME.fullmatch(key)):
                self.add(
                    (*at, "labels", index, "key"),
                    describe(
                        "invalid metric label key",
                        got=key,
                        expected="a key matching ^[a-zA-Z_][a-zA-Z0-9_]*$",
                    ),
                    "metric-label",
                )
        types = [t for t in METRIC_TYPES if metric.get(t) is not None]
        if len(types) != 1:
            self.add(
                at,
                describe(
                    "a metric needs exactly one of counter, gauge, histogram",
                    got=types,
                    expected="exactly one of them",
                ),
                "metric-type",
            )
            return
        kind = types[0]
        body = _dict(metric[kind])
        self.metric_body(kind, body, (*at, kind))
        if isinstance(name, str):
            first = self.metric_types.setdefault(name, (kind, at))
            if first[0] != kind:
                self.add(
                    (*at, kind),
                    describe(
                        f"metric {show(name)} is a {kind} here but a {first[0]} at {render_path(first[1])}; "
                        "Argo refuses to emit a name already registered with another type",
                        got=kind,
                        expected=f"{first[0]}, or another metric name",
                    ),
                    "metric-type",
                )

    def metric_body(self, kind: str, body: dict[str, Any], at: Parts) -> None:
        if not body.get("value"):
            self.add(
                (*at, "value"),
                describe(f"{kind} has no value, which Argo lint requires", expected='e.g. value: "1"'),
                "metric-value",
            )
        if kind != "gauge":
            return
        if "realtime" not in body:
            self.add(
                (*at, "realtime"),
                describe(
                    "gauges must set realtime explicitly: true updates while the template runs, "
                    "false emits once when it ends",
                    expected="realtime: true or realtime: false",
                ),
                "gauge-realtime",
            )
        elif body.get("realtime") is True and "resourcesDuration." in str(body.get("value", "")):
            self.add(
                (*at, "value"),
                describe(
                    "resourcesDuration.* cannot be used in a realtime gauge",
                    got=body.get("value"),
                    expected='"{{duration}}" (or realtime: false)',
                ),
                "metric-value",
            )


def _duration_problem(value: object, *, bare_seconds: bool) -> str | None:
    """Why Argo cannot parse ``value`` as a duration, or None if it can (or resolves it later)."""
    if isinstance(value, bool):
        return "not a duration"
    if isinstance(value, int):
        return None if bare_seconds else _NEEDS_UNIT
    if not isinstance(value, str):
        return "not a duration"
    if _templated(value):
        return None
    if value != value.strip() or not value:
        return "not a duration (empty or surrounded by spaces)"
    if GO_INT.fullmatch(value):
        if bare_seconds or value == "0":
            return None
        return _NEEDS_UNIT
    try:
        Duration.parse(value)
    except DurationError:
        unit = re.search(r"[0-9.]([a-zA-Z]+)", value)
        if unit and unit.group(1) in ("d", "w", "y"):
            per = {"d": "24h per day", "w": "168h per week", "y": "8760h per year"}[unit.group(1)]
            return f"Go durations have no unit {show(unit.group(1))}; use {per}"
        return "not a duration Go can parse"
    return None
