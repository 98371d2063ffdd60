"""The checks Argo's JSON schema cannot make (argo-semantics §1, §2, §5, §6, §7, §8).

Each check mirrors what Argo does with the value: the controller's parsers (``strconv.Atoi``,
``intstr.Int64``, ``time.ParseDuration``, ``ParseStringToDuration``, govaluate for ``when``,
expr-lang for retry and hook expressions), the cache-key and metric-name patterns, and
``argo lint``'s structural and name-resolution rules (``references``: inputs, steps/tasks,
arguments; ``expressions``: the lexers). Volume mounts are checked only in documents with an
entrypoint: a library template's volumes are declared by the workflow that calls it.

Values holding ``{{...}}`` are resolved by Argo at run time and are skipped where their literal
text cannot be judged. The input may be malformed (the schema reports that); these checks never
fail on unexpected types, they just look elsewhere.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from ..errors import DurationError
from ..policy import Duration
from .expressions import DEPENDS_RESULTS, ITEM_RESULTS, expr_problem, parse_depends, when_problem
from .problem import Finding, describe, render_path, show
from .references import (
    argument_findings,
    declared_inputs,
    input_reference_findings,
    node_reference_findings,
    strings_in,
)

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

#: The expr-lang environment of retryStrategy.expression (operator.go buildRetryStrategyLocalScope).
RETRY_NAMES: dict[str, frozenset[str] | None] = {
    "lastRetry": frozenset({"exitCode", "status", "duration", "message"}),
    "retries": None,
}
_RETRY_HINT = " (workflow and input values go in as {{...}} tags, e.g. {{inputs.parameters.x}})"
_RETRY_EXPECTED = (
    "an expr-lang boolean over lastRetry.exitCode|status|duration|message, retries and functions "
    "such as asInt, asFloat, matches"
)
_WORKFLOW_HOOK_EXPECTED = 'an expr-lang boolean over workflow.* only, e.g. workflow.status == "Running"'
_NODE_HOOK_EXPECTED = 'an expr-lang boolean over workflow.*, inputs.*, steps["name"].* or tasks["name"].*'

#: Workflow-level hooks see only the global parameters; step/task hooks also their scope.
WORKFLOW_HOOK_NAMES: dict[str, frozenset[str] | None] = {"workflow": None, "cronworkflow": None}
NODE_HOOK_NAMES: dict[str, frozenset[str] | None] = {
    **WORKFLOW_HOOK_NAMES,
    "steps": None,
    "tasks": None,
    "inputs": None,
    "item": None,
}
CONTAINER_KEYS = ("container", "script")
CONTAINER_LISTS = ("initContainers", "sidecars")


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
        self.templates: dict[str, dict[str, Any]] = {}  # by name; empty when names resolve elsewhere
        self.volumes: set[str] | None = None  # volumes a mount may name; None: not checked here
        self.default_inputs: tuple[list[str], list[str]] = ([], [])

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
        self.workflow_deadline(spec, at)
        templates = _list(spec.get("templates"))
        if spec.get("workflowTemplateRef") is None:
            for template in templates:
                if isinstance(template, dict) and isinstance(template.get("name"), str):
                    self.templates.setdefault(template["name"], template)
        self.volumes = _declared_volumes(spec)
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
            self.default_inputs = declared_inputs(defaults)
            if "activeDeadlineSeconds" in defaults:
                deadline_at = (*at, "templateDefaults", "activeDeadlineSeconds")
                self.template_deadline(defaults["activeDeadlineSeconds"], deadline_at)
        self.synchronization(spec.get("synchronization"), (*at, "synchronization"))
        self.metrics(spec.get("metrics"), (*at, "metrics"))

        for index, template in enumerate(templates):
            if isinstance(template, dict):
                self.template(template, (*at, "templates", index))

        hooks_at = (*at, "hooks")
        self.hooks(spec.get("hooks"), hooks_at, WORKFLOW_HOOK_NAMES)
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
        elif "activeDeadlineSeconds" in template:
            self.template_deadline(template["activeDeadlineSeconds"], (*at, "activeDeadlineSeconds"))
        self.template_fields(template, at)
        self.metrics(template.get("metrics"), (*at, "metrics"))
        strings = strings_in(template, at)
        self.findings.extend(input_reference_findings(template, at, self.default_inputs, strings))
        self.findings.extend(node_reference_findings(template, at, strings))
        self.volume_mounts(template, at)
        for group_index, group in enumerate(_list(template.get("steps"))):
            for step_index, step in enumerate(_list(group)):
                if isinstance(step, dict):
                    self.step_or_task(step, (*at, "steps", group_index, step_index))
        tasks = [t for t in _list(_dict(template.get("dag")).get("tasks")) if isinstance(t, dict)]
        uses_depends = next((t.get("name") for t in tasks if t.get("depends")), None)
        by_name = {t["name"]: t for t in tasks if isinstance(t.get("name"), str)}
        for task_index, task in enumerate(_list(_dict(template.get("dag")).get("tasks"))):
            if not isinstance(task, dict):
                continue
            task_at = (*at, "dag", "tasks", task_index)
            self.step_or_task(task, task_at)
            self.dependencies(task, task_at, by_name)
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
        self.hooks(step.get("hooks"), (*at, "hooks"), NODE_HOOK_NAMES)
        if isinstance(step.get("when"), str):
            self.when(step["when"], (*at, "when"))
        inline = step.get("inline")
        if isinstance(inline, dict):
            self.template(inline, (*at, "inline"))
        called = inline if isinstance(inline, dict) else None
        name = step.get("template")
        if called is None and isinstance(name, str) and step.get("templateRef") is None:
            called = self.templates.get(name)
        if called is not None:
            self.findings.extend(argument_findings(step, at, called))

    def dependencies(self, task: dict[str, Any], at: Parts, tasks: dict[str, dict[str, Any]]) -> None:
        """``depends``/``dependencies`` must name tasks of this DAG, with known results."""
        names = sorted(tasks)
        depends = task.get("depends")
        if isinstance(depends, str) and depends and "{{" not in depends:
            refs, syntax = parse_depends(depends)
            problem = None
            for ref in refs:
                if ref.task not in tasks:
                    problem = f"depends names task {show(ref.task)}, which is not in this DAG"
                elif ref.result is not None and ref.result not in DEPENDS_RESULTS:
                    problem = f"task result {show(ref.result)} of {show(ref.task)} is not one Argo knows"
                elif ref.result in ITEM_RESULTS and not _has_items(tasks[ref.task]):
                    problem = (
                        f"{ref.task}.{ref.result} needs {show(ref.task)} to loop (withItems, withParam or "
                        "withSequence), and it does not"
                    )
                if problem:
                    break
            if problem is None and syntax:
                problem = f"depends is not a valid expression: {syntax}"
            if problem:
                expected = (
                    f"task names of this DAG ({', '.join(names[:10])}), optionally with ."
                    f"{'|.'.join(DEPENDS_RESULTS)}, joined by &&, ||, ! and ()"
                )
                self.add((*at, "depends"), describe(problem, got=depends, expected=expected), "depends")
        for index, name in enumerate(_list(task.get("dependencies"))):
            if isinstance(name, str) and "{{" not in name and name not in tasks:
                close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                self.add(
                    (*at, "dependencies", index),
                    describe(
                        f"dependencies names task {show(name)}, which is not in this DAG",
                        got=name,
                        expected=f"one of: {', '.join(names[:10])}{hint}",
                    ),
                    "depends",
                )

    def when(self, when: str, at: Parts) -> None:
        found = when_problem(when)
        if found:
            problem, quoted = found
            self.add(
                at,
                describe(
                    f"when is read by govaluate after substitution, and {problem}; Argo errors the node at run time",
                    got=when,
                    expected=f"both sides single-quoted: {quoted}",
                ),
                "when-quoting",
            )

    def hooks(self, hooks: object, at: Parts, names: dict[str, frozenset[str] | None]) -> None:
        for name, hook in _dict(hooks).items():
            if not isinstance(hook, dict):
                continue
            self.references.append(((*at, name, "template"), hook.get("template")))
            expression = hook.get("expression")
            if isinstance(expression, str) and expression:
                workflow_level = names is WORKFLOW_HOOK_NAMES
                expected = _WORKFLOW_HOOK_EXPECTED if workflow_level else _NODE_HOOK_EXPECTED
                hint = " (a workflow-level hook sees only the workflow's global variables)" if workflow_level else ""
                what = f"lifecycle hook {show(name)}"
                errs = "workflow" if workflow_level else "node"
                self.expression(expression, (*at, name, "expression"), names, what, expected, hint, errs)
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
        expression = strategy.get("expression")
        if isinstance(expression, str) and expression:
            expression_at = (*at, "expression")
            self.expression(expression, expression_at, RETRY_NAMES, "retryStrategy", _RETRY_EXPECTED, _RETRY_HINT)
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

    def expression(
        self,
        expression: str,
        at: Parts,
        names: dict[str, frozenset[str] | None],
        what: str,
        expected: str,
        hint: str = "",
        errs: str = "node",
    ) -> None:
        """An expr-lang expression Argo compiles at run time; a compile error errors the node."""
        found = expr_problem(expression, names, hint=hint)
        if found is None:
            return
        problem, compiles = found
        if compiles:
            message = f"{what} expression {problem}, so the condition never sees the real value"
        else:
            message = f"{what} expression does not compile: {problem}; Argo errors the {errs} when it evaluates it"
        self.add(at, describe(message, got=expression, expected=expected), "expression")

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

    # -- deadlines, volumes --------------------------------------------------------------

    def workflow_deadline(self, spec: dict[str, Any], at: Parts) -> None:
        """``spec.activeDeadlineSeconds`` is an int64: a string does not decode at all."""
        if "activeDeadlineSeconds" not in spec:
            return
        value = spec["activeDeadlineSeconds"]
        if isinstance(value, int) and not isinstance(value, bool):
            return
        self.add(
            (*at, "activeDeadlineSeconds"),
            describe(
                "the workflow's activeDeadlineSeconds must be a JSON integer (int64), unlike the template "
                "field; the API server and the controller reject anything else",
                got=value,
                expected=f"an integer number of seconds such as {_seconds_hint(value)}",
            ),
            "active-deadline",
        )

    def template_deadline(self, value: object, at: Parts) -> None:
        """A template's IntOrString deadline goes through ``intstr.Int64`` (``strconv.Atoi``) when
        the pod is built: ``"10m"`` fails the node; a pod's deadline must also be at least 1."""
        if isinstance(value, str) and value.startswith("{{") and value.endswith("}}"):
            return
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and GO_INT.fullmatch(value):
            number = int(value)
        if number is not None and number >= 1:
            return
        if number is not None:
            problem = "activeDeadlineSeconds must be at least 1: Kubernetes rejects a pod with a smaller deadline"
        else:
            problem = (
                "activeDeadlineSeconds must be whole seconds: Argo reads it with intstr.Int64 (strconv.Atoi) "
                "when it builds the pod and errors the node otherwise"
            )
        self.add(
            at,
            describe(
                problem,
                got=value,
                expected=f'an integer number of seconds such as {_seconds_hint(value)} or "{_seconds_hint(value)}", '
                "or a whole {{...}} reference",
            ),
            "active-deadline",
        )

    def volume_mounts(self, template: dict[str, Any], at: Parts) -> None:
        """Every volumeMount must name a volume the pod will have (``volume-mount``)."""
        if self.volumes is None or template.get("podSpecPatch"):
            return
        own = {v.get("name") for v in _list(template.get("volumes")) if isinstance(v, dict)}
        if any(isinstance(name, str) and "{{" in name for name in own):
            return
        known = self.volumes | {n for n in own if isinstance(n, str)}
        for parts, mount in _volume_mounts(template, at):
            name = mount.get("name")
            if not isinstance(name, str) or "{{" in name or name in known:
                continue
            listed = ", ".join(sorted(known)[:10]) or "none declared"
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.7)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            self.add(
                (*parts, "name"),
                describe(
                    f"volumeMount names volume {show(name)}, which neither this template's volumes, the "
                    "workflow's volumes nor its volumeClaimTemplates declare; Kubernetes rejects the pod",
                    got=name,
                    expected=f"one of: {listed}{hint}",
                ),
                "volume-mount",
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
        if isinstance(metric.get("when"), str):
            self.when(metric["when"], (*at, "when"))
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


def _seconds_hint(value: object) -> str:
    """``value`` in whole seconds if it reads as a duration ("10m" -> "600"), else "600"."""
    try:
        seconds = Duration.parse(value).whole_seconds  # type: ignore[arg-type]
    except (DurationError, TypeError, ValueError):
        return "600"
    return str(seconds) if seconds >= 1 else "600"


def _has_items(task: dict[str, Any]) -> bool:
    return any(task.get(key) not in (None, "", []) for key in ("withItems", "withParam", "withSequence"))


def _declared_volumes(spec: dict[str, Any]) -> set[str] | None:
    """The volume names every pod of this workflow has, or None when mounts are not checked here:
    library templates (no entrypoint: the calling workflow declares the volumes), a
    workflowTemplateRef (volumes come from there), podSpecPatch, or names only known at run time.
    Volumes a cluster adds through the controller's workflowDefaults are not visible here."""
    if not spec.get("entrypoint") or spec.get("workflowTemplateRef") is not None or spec.get("podSpecPatch"):
        return None
    names: list[object] = [v.get("name") for v in _list(spec.get("volumes")) if isinstance(v, dict)]
    claims = [c for c in _list(spec.get("volumeClaimTemplates")) if isinstance(c, dict)]
    names += [_dict(c.get("metadata")).get("name") for c in claims]
    defaults = _dict(spec.get("templateDefaults"))
    names += [v.get("name") for v in _list(defaults.get("volumes")) if isinstance(v, dict)]
    if any(isinstance(name, str) and "{{" in name for name in names):
        return None
    return {name for name in names if isinstance(name, str)}


def _volume_mounts(template: dict[str, Any], at: Parts) -> list[tuple[Parts, dict[str, Any]]]:
    """Each volumeMount of the template's containers, init containers, sidecars and containerSet."""
    holders: list[tuple[Parts, object]] = [((*at, key), template.get(key)) for key in CONTAINER_KEYS]
    for key in CONTAINER_LISTS:
        holders += [((*at, key, i), c) for i, c in enumerate(_list(template.get(key)))]
    container_set = _dict(template.get("containerSet"))
    holders.append(((*at, "containerSet"), container_set))
    containers = _list(container_set.get("containers"))
    holders += [((*at, "containerSet", "containers", i), c) for i, c in enumerate(containers)]
    mounts = []
    for parts, holder in holders:
        for index, mount in enumerate(_list(_dict(holder).get("volumeMounts"))):
            if isinstance(mount, dict):
                mounts.append(((*parts, "volumeMounts", index), mount))
    return mounts
