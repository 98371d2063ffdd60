"""Each rule against a correct manifest broken in exactly one place: the exact path, message and
rule, exactly once; and the reference validator's verdict on the same sample."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
import yaml

from resilient_templates.validate import POLICY_RULES, ArgoSchema, validate_documents

BASE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: sample
spec:
  entrypoint: main
  onExit: work
  arguments:
    parameters:
    - name: run-id
      value: r1
  templates:
  - name: main
    dag:
      tasks:
      - name: work
        template: work
        arguments:
          parameters:
          - name: message
            value: "{{workflow.parameters.run-id}}"
      - name: report
        template: work
        depends: work.Failed || work.Succeeded
        when: "'{{tasks.work.outputs.result}}' != 'approve-it'"
        arguments:
          parameters:
          - name: message
            value: "{{tasks.work.outputs.result}}"
        hooks:
          exit:
            template: work
          running:
            expression: tasks["work"].status == "Running"
            template: work
  - name: work
    inputs:
      parameters:
      - name: message
        default: hello
    retryStrategy:
      limit: "2"
      retryPolicy: Always
      expression: lastRetry.status == "Error" || asInt(lastRetry.exitCode) == 75
      backoff:
        duration: "10s"
        factor: "2"
        cap: "1m"
        maxDuration: "10m"
    memoize:
      key: "work-{{workflow.parameters.run-id}}"
      maxAge: "24h"
      cache:
        configMap:
          name: work-cache
    synchronization:
      mutexes:
      - name: work
    metrics:
      prometheus:
      - name: work_total
        help: "work results"
        labels:
        - key: status
          value: "{{status}}"
        counter:
          value: "1"
      - name: work_seconds
        help: "work duration"
        gauge:
          realtime: true
          value: "{{duration}}"
    activeDeadlineSeconds: 300
    timeout: 5m
    volumes:
    - name: scratch
      emptyDir: {}
    container:
      image: busybox
      command: [sh, -c, "echo {{inputs.parameters.message}}"]
      resources:
        requests: {cpu: 1, memory: 64Mi}
      volumeMounts:
      - name: scratch
        mountPath: /scratch
  - name: gate
    suspend:
      duration: "3600"
  - name: pipeline
    steps:
    - - name: first
        template: work
        arguments:
          parameters:
          - name: message
            value: "{{workflow.parameters.run-id}}"
    - - name: second
        template: work
        when: "{{steps.first.outputs.result}} == ok"
        arguments:
          parameters:
          - name: message
            value: "{{steps.first.outputs.result}}"
"""

CRON = """
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata:
  name: nightly
spec:
  schedules: ["0 2 * * *"]
  workflowSpec:
    entrypoint: work
    templates:
    - name: work
      container:
        image: busybox
"""

Doc = dict[str, Any]
Expected = tuple[str, str, str]  # path, message, rule


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Callable[[Doc], object]
    expected: tuple[Expected, ...]
    reference_rejects: bool
    base: str = BASE


def tpl(doc: Doc, index: int) -> Doc:
    return doc["spec"]["templates"][index]


def work(doc: Doc) -> Doc:
    return tpl(doc, 1)


def backoff(doc: Doc) -> Doc:
    return work(doc)["retryStrategy"]["backoff"]


def metric(doc: Doc, index: int) -> Doc:
    return work(doc)["metrics"]["prometheus"][index]


def task(doc: Doc, index: int) -> Doc:
    return tpl(doc, 0)["dag"]["tasks"][index]


def step(doc: Doc, group: int, index: int) -> Doc:
    return tpl(doc, 3)["steps"][group][index]


W = "spec.templates[1]"
ARGO_DURATION = 'a Go duration such as "30s", "2m" or "1h30m", or whole seconds such as "30"'
GO_DURATION = 'a Go duration with a unit, such as "30s", "10m" or "24h"'
LEAVES = "container, containerSet, script, resource, data, http, plugin"
FACTOR = (
    "backoff factor must be an integer: Argo parses it with strconv.Atoi and errors the node at run time "
    '(got {}; expected an integer such as 2 or "2")'
)
BARE = "a bare number is not a Go duration: Argo reads this field with time.ParseDuration, which needs a unit"
MEMO = (
    '{} (got {}; expected a key matching ^[a-zA-Z0-9][-a-zA-Z0-9]*$ after substitution; '
    "hash free text with {{{{=sprig.sha256sum(...)}}}})"
)
REF = 'no template named "{0}" in this document (got "{0}"; expected one of: gate, main, pipeline, work{1})'

CASES = [
    Case(
        "typo-limitt",
        lambda d: work(d)["retryStrategy"].update(limitt="3"),
        (
            (
                f"{W}.retryStrategy.limitt",
                'unknown field "limitt" (expected one of: affinity, backoff, expression, limit, retryPolicy; '
                'did you mean "limit"?)',
                "schema",
            ),
        ),
        True,
    ),
    Case(
        "backoff-jitter",
        lambda d: backoff(d).update(jitter="full"),
        (
            (
                f"{W}.retryStrategy.backoff.jitter",
                'unknown field "jitter" (expected one of: cap, duration, factor, maxDuration)',
                "schema",
            ),
        ),
        True,
    ),
    Case(
        "retry-policy-enum",
        lambda d: work(d)["retryStrategy"].update(retryPolicy="Sometimes"),
        (
            (
                f"{W}.retryStrategy.retryPolicy",
                'not an allowed value (got "Sometimes"; expected one of "Always", "OnFailure", "OnError", '
                '"OnTransientError")',
                "schema",
            ),
        ),
        False,  # the reference adds no enum
    ),
    Case(
        "workflow-deadline-string",
        lambda d: d["spec"].update(activeDeadlineSeconds="600"),
        (
            (
                "spec.activeDeadlineSeconds",
                "the workflow's activeDeadlineSeconds must be a JSON integer (int64), unlike the template field; "
                'the API server and the controller reject anything else (got "600"; expected an integer number '
                "of seconds such as 600)",
                "active-deadline",
            ),
        ),
        True,
    ),
    Case(
        "missing-required-field",
        lambda d: work(d)["memoize"].pop("maxAge"),
        ((f"{W}.memoize.maxAge", 'missing required field "maxAge"', "schema"),),
        True,
    ),
    Case(
        "singular-mutex",
        lambda d: work(d)["synchronization"].update(mutex={"name": "m"}),
        (
            (
                f"{W}.synchronization.mutex",
                'removed in Argo v4; use mutexes: [...] (got {"name": "m"}; expected mutexes: [{"name": "m"}])',
                "removed-v4",
            ),
        ),
        True,
    ),
    Case(
        "singular-semaphore",
        lambda d: d["spec"].update(synchronization={"semaphore": {"configMapKeyRef": {"name": "l", "key": "k"}}}),
        (
            (
                "spec.synchronization.semaphore",
                'removed in Argo v4; use semaphores: [...] (got {"configMapKeyRef": {"key": "k", "name": "l"}}; '
                'expected semaphores: [{"configMapKeyRef": {"key": "k", "name": "l"}}])',
                "removed-v4",
            ),
        ),
        True,
    ),
    Case(
        "pod-priority",
        lambda d: d["spec"].update(podPriority=1),
        (
            (
                "spec.podPriority",
                "removed in Argo v4; use podPriorityClassName "
                "(got 1; expected podPriorityClassName: <name of a PriorityClass>)",
                "removed-v4",
            ),
        ),
        True,
    ),
    Case(
        "cron-schedule",
        lambda d: d["spec"].update(schedule="0 2 * * *"),
        (
            (
                "spec.schedule",
                'removed in Argo v4; use schedules: [...] (got "0 2 * * *"; expected schedules: ["0 2 * * *"])',
                "removed-v4",
            ),
        ),
        True,
        base=CRON,
    ),
    Case(
        "factor-decimal-string",
        lambda d: backoff(d).update(factor="1.5"),
        ((f"{W}.retryStrategy.backoff.factor", FACTOR.format('"1.5"'), "integer"),),
        False,
    ),
    Case(
        "factor-float",
        lambda d: backoff(d).update(factor=1.5),
        ((f"{W}.retryStrategy.backoff.factor", FACTOR.format("1.5"), "integer"),),
        True,
    ),
    Case(
        "limit-not-integer",
        lambda d: work(d)["retryStrategy"].update(limit="two"),
        (
            (
                f"{W}.retryStrategy.limit",
                "limit must be an integer: Argo parses it with strconv.Atoi and errors the node at run time "
                '(got "two"; expected an integer such as 2 or "2")',
                "integer",
            ),
        ),
        False,
    ),
    Case(
        "max-duration-in-days",
        lambda d: backoff(d).update(maxDuration="1d"),
        (
            (
                f"{W}.retryStrategy.backoff.maxDuration",
                f'Go durations have no unit "d"; use 24h per day (got "1d"; expected {ARGO_DURATION})',
                "duration",
            ),
        ),
        False,
    ),
    Case(
        "cap-not-a-duration",
        lambda d: backoff(d).update(cap="soon"),
        (
            (
                f"{W}.retryStrategy.backoff.cap",
                f'not a duration Go can parse (got "soon"; expected {ARGO_DURATION})',
                "duration",
            ),
        ),
        False,
    ),
    Case(
        "backoff-without-duration",
        lambda d: backoff(d).pop("duration"),
        (
            (
                f"{W}.retryStrategy.backoff.duration",
                'backoff has no duration, so Argo errors the retry node with "no base duration specified for '
                f'retryStrategy" (expected a base delay: {ARGO_DURATION})',
                "duration",
            ),
        ),
        False,
    ),
    Case(
        "timeout-bare-number",
        lambda d: work(d).update(timeout="300"),
        ((f"{W}.timeout", f'{BARE} (got "300"; expected {GO_DURATION})', "duration"),),
        False,
    ),
    Case(
        "memoize-max-age-bare-number",
        lambda d: work(d)["memoize"].update(maxAge="10"),
        ((f"{W}.memoize.maxAge", f'{BARE} (got "10"; expected {GO_DURATION})', "duration"),),
        False,
    ),
    Case(
        "suspend-duration-in-days",
        lambda d: tpl(d, 2)["suspend"].update(duration="1d"),
        (
            (
                "spec.templates[2].suspend.duration",
                f'Go durations have no unit "d"; use 24h per day (got "1d"; expected {ARGO_DURATION})',
                "duration",
            ),
        ),
        False,
    ),
    Case(
        "missing-limit",
        lambda d: work(d)["retryStrategy"].pop("limit"),
        (
            (
                f"{W}.retryStrategy.limit",
                "retryStrategy has no limit, so Argo would retry forever and skip the backoff "
                '(expected an explicit limit, the number of retries after the first attempt, e.g. limit: "2")',
                "retry-limit",
            ),
        ),
        False,
    ),
    Case(
        "memoize-key-with-dot",
        lambda d: work(d)["memoize"].update(key="work.{{workflow.parameters.run-id}}"),
        (
            (
                f"{W}.memoize.key",
                MEMO.format(
                    'memoize key has "." outside {{...}}, so Argo fails the node with "invalid cache key"',
                    '"work.{{workflow.parameters.run-id}}"',
                ),
                "memoize-key",
            ),
        ),
        False,
    ),
    Case(
        "memoize-key-leading-dash",
        lambda d: work(d)["memoize"].update(key="-{{workflow.parameters.run-id}}"),
        (
            (
                f"{W}.memoize.key",
                MEMO.format(
                    "memoize key starts with '-', so Argo fails the node with \"invalid cache key\"",
                    '"-{{workflow.parameters.run-id}}"',
                ),
                "memoize-key",
            ),
        ),
        False,
    ),
    Case(
        "metric-name-with-dash",
        lambda d: metric(d, 0).update(name="work-total"),
        (
            (
                f"{W}.metrics.prometheus[0].name",
                "invalid metric name: Prometheus names allow only letters, digits and '_' and cannot start with "
                'a digit (got "work-total"; expected a name matching ^[a-zA-Z_][a-zA-Z0-9_]*$)',
                "metric-name",
            ),
        ),
        False,
    ),
    Case(
        "metric-name-leading-digit",
        lambda d: metric(d, 0).update(name="1_total"),
        (
            (
                f"{W}.metrics.prometheus[0].name",
                "invalid metric name: Prometheus names allow only letters, digits and '_' and cannot start with "
                'a digit (got "1_total"; expected a name matching ^[a-zA-Z_][a-zA-Z0-9_]*$)',
                "metric-name",
            ),
        ),
        False,
    ),
    Case(
        "metric-help-empty",
        lambda d: metric(d, 0).update(help=""),
        (
            (
                f"{W}.metrics.prometheus[0].help",
                "metric has no help text, which Argo lint requires (expected a non-empty help string)",
                "metric-help",
            ),
        ),
        False,
    ),
    Case(
        "metric-name-two-types",
        lambda d: metric(d, 1).update(name="work_total"),
        (
            (
                f"{W}.metrics.prometheus[1].gauge",
                f'metric "work_total" is a gauge here but a counter at {W}.metrics.prometheus[0]; Argo refuses to '
                'emit a name already registered with another type (got "gauge"; expected counter, or another '
                "metric name)",
                "metric-type",
            ),
        ),
        False,
    ),
    Case(
        "metric-counter-and-gauge",
        lambda d: metric(d, 0).update(gauge={"realtime": False, "value": "1"}),
        (
            (
                f"{W}.metrics.prometheus[0]",
                'a metric needs exactly one of counter, gauge, histogram (got ["counter", "gauge"]; '
                "expected exactly one of them)",
                "metric-type",
            ),
        ),
        False,
    ),
    Case(
        "metric-label-key",
        lambda d: metric(d, 0)["labels"][0].update(key="status-code"),
        (
            (
                f"{W}.metrics.prometheus[0].labels[0].key",
                'invalid metric label key (got "status-code"; expected a key matching ^[a-zA-Z_][a-zA-Z0-9_]*$)',
                "metric-label",
            ),
        ),
        False,
    ),
    Case(
        "gauge-without-realtime",
        lambda d: metric(d, 1)["gauge"].pop("realtime"),
        (
            (
                f"{W}.metrics.prometheus[1].gauge.realtime",
                "gauges must set realtime explicitly: true updates while the template runs, false emits once "
                "when it ends (expected realtime: true or realtime: false)",
                "gauge-realtime",
            ),
        ),
        True,
    ),
    Case(
        "realtime-gauge-resources-duration",
        lambda d: metric(d, 1)["gauge"].update(value="{{resourcesDuration.cpu}}"),
        (
            (
                f"{W}.metrics.prometheus[1].gauge.value",
                "resourcesDuration.* cannot be used in a realtime gauge "
                '(got "{{resourcesDuration.cpu}}"; expected "{{duration}}" (or realtime: false))',
                "metric-value",
            ),
        ),
        False,
    ),
    Case(
        "spec-level-retry-strategy",
        lambda d: d["spec"].update(retryStrategy={"limit": "1"}),
        (
            (
                "spec.retryStrategy",
                "a spec-level retryStrategy applies to every template without its own, including steps/DAG "
                "templates, exit handlers and suspend gates, so retries multiply (argo-semantics §1.8); set "
                "retryStrategy on each leaf template instead",
                "spec-retry",
            ),
        ),
        False,
    ),
    Case(
        "template-defaults-retry-strategy",
        lambda d: d["spec"].update(templateDefaults={"retryStrategy": {"limit": "1"}}),
        (
            (
                "spec.templateDefaults.retryStrategy",
                "templateDefaults.retryStrategy is merged into every template, including steps/DAG templates and "
                "exit handlers, so retries multiply (argo-semantics §1.8); set retryStrategy on each leaf "
                "template instead",
                "spec-retry",
            ),
        ),
        False,
    ),
    Case(
        "non-leaf-active-deadline",
        lambda d: tpl(d, 0).update(activeDeadlineSeconds=60),
        (
            (
                "spec.templates[0].activeDeadlineSeconds",
                "activeDeadlineSeconds only applies to leaf templates, not to a dag template; Argo lint rejects it "
                f"(got 60; expected it only on leaf templates: {LEAVES})",
                "leaf-only",
            ),
        ),
        False,
    ),
    Case(
        "suspend-active-deadline",
        lambda d: tpl(d, 2).update(activeDeadlineSeconds=60),
        (
            (
                "spec.templates[2].activeDeadlineSeconds",
                "activeDeadlineSeconds only applies to leaf templates, not to a suspend template; Argo ignores it "
                f"there; bound the wait with suspend.duration (got 60; expected it only on leaf templates: {LEAVES})",
                "leaf-only",
            ),
        ),
        False,
    ),
    Case(
        "non-leaf-timeout",
        lambda d: tpl(d, 3).update(timeout="1m"),
        (
            (
                "spec.templates[3].timeout",
                "timeout only applies to leaf templates, not to a steps template; Argo lint rejects it "
                f'(got "1m"; expected it only on leaf templates: {LEAVES})',
                "leaf-only",
            ),
        ),
        False,
    ),
    Case(
        "unresolved-task-template",
        lambda d: task(d, 0).update(template="wrok"),
        (("spec.templates[0].dag.tasks[0].template", REF.format("wrok", '; did you mean "work"?'), "template-ref"),),
        False,
    ),
    Case(
        "unresolved-step-template",
        lambda d: tpl(d, 3)["steps"][0][0].update(template="missing"),
        (("spec.templates[3].steps[0][0].template", REF.format("missing", ""), "template-ref"),),
        False,
    ),
    Case(
        "unresolved-entrypoint",
        lambda d: d["spec"].update(entrypoint="mian"),
        (("spec.entrypoint", REF.format("mian", '; did you mean "main"?'), "template-ref"),),
        False,
    ),
    Case(
        "unresolved-on-exit",
        lambda d: d["spec"].update(onExit="cleanup"),
        (("spec.onExit", REF.format("cleanup", ""), "template-ref"),),
        False,
    ),
    Case(
        "unresolved-hook-template",
        lambda d: task(d, 1)["hooks"]["exit"].update(template="notify"),
        (("spec.templates[0].dag.tasks[1].hooks.exit.template", REF.format("notify", ""), "template-ref"),),
        False,
    ),
    Case(
        "hook-without-expression",
        lambda d: task(d, 1)["hooks"]["running"].pop("expression"),
        (
            (
                "spec.templates[0].dag.tasks[1].hooks.running.expression",
                'lifecycle hook "running" has no expression, which Argo requires for every hook except "exit" '
                '(expected a condition such as workflow.status == "Running")',
                "hook-expression",
            ),
        ),
        False,
    ),
    Case(
        "continue-on-with-depends",
        lambda d: task(d, 0).update(continueOn={"failed": True}),
        (
            (
                "spec.templates[0].dag.tasks[0].continueOn",
                'continueOn cannot be used in a DAG that uses depends (task "report" does); Argo lint rejects it '
                '(got {"failed": true}; expected "<task>.Failed" or "<task>.Errored" in the depends of the tasks '
                "that follow)",
                "continue-on-depends",
            ),
        ),
        False,
    ),
    Case(
        "inline-template-is-checked",
        lambda d: (
            tpl(d, 3)["steps"][0][0].pop("template"),
            tpl(d, 3)["steps"][0][0].update(
                inline={"container": {"image": "busybox"}, "retryStrategy": {"limit": "1.5"}}
            ),
        ),
        (
            (
                "spec.templates[3].steps[0][0].inline.retryStrategy.limit",
                "limit must be an integer: Argo parses it with strconv.Atoi and errors the node at run time "
                '(got "1.5"; expected an integer such as 2 or "2")',
                "integer",
            ),
        ),
        False,
    ),
    Case(
        "template-deadline-duration",
        lambda d: work(d).update(activeDeadlineSeconds="10m"),
        (
            (
                "spec.templates[1].activeDeadlineSeconds",
                'activeDeadlineSeconds must be whole seconds: Argo reads it with intstr.Int64 (strconv.Atoi) '
                'when it builds the pod and errors the node otherwise (got "10m"; expected an integer number of '
                'seconds such as 600 or "600", or a whole {{...}} reference)',
                "active-deadline",
            ),
        ),
        False,
    ),
    Case(
        "template-deadline-zero",
        lambda d: work(d).update(activeDeadlineSeconds=0),
        (
            (
                "spec.templates[1].activeDeadlineSeconds",
                'activeDeadlineSeconds must be at least 1: Kubernetes rejects a pod with a smaller deadline (got '
                '0; expected an integer number of seconds such as 600 or "600", or a whole {{...}} reference)',
                "active-deadline",
            ),
        ),
        False,
    ),
    Case(
        "template-deadline-glued-reference",
        lambda d: work(d).update(activeDeadlineSeconds="{{workflow.parameters.minutes}}0"),
        (
            (
                "spec.templates[1].activeDeadlineSeconds",
                'activeDeadlineSeconds must be whole seconds: Argo reads it with intstr.Int64 (strconv.Atoi) '
                'when it builds the pod and errors the node otherwise (got "{{workflow.parameters.minutes}}0"; '
                'expected an integer number of seconds such as 600 or "600", or a whole {{...}} reference)',
                "active-deadline",
            ),
        ),
        False,
    ),
    Case(
        "depends-unknown-task",
        lambda d: task(d,1).update(depends="work.Failed || wrok.Succeeded"),
        (
            (
                "spec.templates[0].dag.tasks[1].depends",
                'depends names task "wrok", which is not in this DAG (got "work.Failed || wrok.Succeeded"; '
                'expected task names of this DAG (report, work), optionally with '
                '.Succeeded|.Failed|.Errored|.Skipped|.Omitted|.Daemoned|.AnySucceeded|.AllFailed, joined by &&, '
                '||, ! and ())',
                "depends",
            ),
        ),
        False,
    ),
    Case(
        "depends-unknown-result",
        lambda d: task(d,1).update(depends="work.Failed || work.Succeded"),
        (
            (
                "spec.templates[0].dag.tasks[1].depends",
                'task result "Succeded" of "work" is not one Argo knows (got "work.Failed || work.Succeded"; '
                'expected task names of this DAG (report, work), optionally with '
                '.Succeeded|.Failed|.Errored|.Skipped|.Omitted|.Daemoned|.AnySucceeded|.AllFailed, joined by &&, '
                '||, ! and ())',
                "depends",
            ),
        ),
        False,
    ),
    Case(
        "depends-unbalanced",
        lambda d: task(d,1).update(depends="(work.Failed || work.Succeeded"),
        (
            (
                "spec.templates[0].dag.tasks[1].depends",
                'depends is not a valid expression: unbalanced parentheses: \'(\' without \')\' (got "(work.Failed '
                '|| work.Succeeded"; expected task names of this DAG (report, work), optionally with '
                '.Succeeded|.Failed|.Errored|.Skipped|.Omitted|.Daemoned|.AnySucceeded|.AllFailed, joined by &&, '
                '||, ! and ())',
                "depends",
            ),
        ),
        False,
    ),
    Case(
        "depends-item-result",
        lambda d: task(d,1).update(depends="work.AnySucceeded"),
        (
            (
                "spec.templates[0].dag.tasks[1].depends",
                'work.AnySucceeded needs "work" to loop (withItems, withParam or withSequence), and it does not '
                '(got "work.AnySucceeded"; expected task names of this DAG (report, work), optionally with '
                '.Succeeded|.Failed|.Errored|.Skipped|.Omitted|.Daemoned|.AnySucceeded|.AllFailed, joined by &&, '
                '||, ! and ())',
                "depends",
            ),
        ),
        False,
    ),
    Case(
        "dependencies-unknown-task",
        lambda d: (task(d,1).pop("depends"), task(d,1).update(dependencies=["wrok"])),
        (
            (
                "spec.templates[0].dag.tasks[1].dependencies[0]",
                'dependencies names task "wrok", which is not in this DAG (got "wrok"; expected one of: report, '
                'work; did you mean "work"?)',
                "depends",
            ),
        ),
        False,
    ),
    Case(
        "input-ref-simple-tag",
        lambda d: work(d)["container"].update(command=["sh","-c","echo {{inputs.parameters.mesage}}"]),
        (
            (
                "spec.templates[1].container.command[2]",
                'inputs.parameters.mesage names an input this template does not declare: argo lint fails with '
                '"failed to resolve" and the controller cannot substitute it (got "echo '
                '{{inputs.parameters.mesage}}"; expected one of its inputs.parameters: message; did you mean '
                '"message"?)',
                "input-ref",
            ),
        ),
        False,
    ),
    Case(
        "input-ref-expression-tag",
        lambda d: work(d)["container"].update(command=["sh","-c","echo {{= inputs.parameters['mesage'] }}"]),
        (
            (
                "spec.templates[1].container.command[2]",
                'inputs.parameters.mesage names an input this template does not declare: argo lint fails with '
                '"failed to resolve" and the controller cannot substitute it (got "echo {{= '
                'inputs.parameters[\'mesage\'] }}"; expected one of its inputs.parameters: message; did you mean '
                '"message"?)',
                "input-ref",
            ),
        ),
        False,
    ),
    Case(
        "input-ref-artifact",
        lambda d: work(d)["container"].update(args=["{{inputs.artifacts.data.path}}"]),
        (
            (
                "spec.templates[1].container.args[0]",
                'inputs.artifacts.data names an input this template does not declare: argo lint fails with '
                '"failed to resolve" and the controller cannot substitute it (got '
                '"{{inputs.artifacts.data.path}}"; expected an entry named "data" in inputs.artifacts (there is '
                'none yet))',
                "input-ref",
            ),
        ),
        False,
    ),
    Case(
        "node-ref-task-argument",
        lambda d: task(d,1)["arguments"]["parameters"][0].update(value="{{tasks.wrok.outputs.result}}"),
        (
            (
                "spec.templates[0].dag.tasks[1].arguments.parameters[0].value",
                'tasks.wrok names no task of this template, so Argo cannot resolve it (got '
                '"{{tasks.wrok.outputs.result}}"; expected one of its tasks: report, work; did you mean "work"?)',
                "node-ref",
            ),
        ),
        False,
    ),
    Case(
        "node-ref-step-when",
        lambda d: step(d,1,0).update(when="'{{steps.frist.outputs.result}}' == 'ok'"),
        (
            (
                "spec.templates[3].steps[1][0].when",
                'steps.frist names no step of this template, so Argo cannot resolve it (got '
                '"\'{{steps.frist.outputs.result}}\' == \'ok\'"; expected one of its steps: first, second; did you '
                'mean "first"?)',
                "node-ref",
            ),
        ),
        False,
    ),
    Case(
        "node-ref-hook-expression",
        lambda d: task(d,1)["hooks"]["running"].update(expression='tasks["wrok"].status == "Running"'),
        (
            (
                "spec.templates[0].dag.tasks[1].hooks.running.expression",
                'tasks.wrok names no task of this template, so Argo cannot resolve it (got '
                '"tasks[\\"wrok\\"].status == \\"Running\\""; expected one of its tasks: report, work; did you mean '
                '"work"?)',
                "node-ref",
            ),
        ),
        False,
    ),
    Case(
        "node-ref-tasks-in-steps",
        lambda d: step(d,1,0)["arguments"]["parameters"][0].update(value="{{tasks.first.outputs.result}}"),
        (
            (
                "spec.templates[3].steps[1][0].arguments.parameters[0].value",
                'tasks.first: this is a steps template, it has no tasks, so Argo cannot resolve it (got '
                '"{{tasks.first.outputs.result}}"; expected one of its steps: first, second; did you mean '
                '"first"?)',
                "node-ref",
            ),
        ),
        False,
    ),
    Case(
        "argument-not-declared",
        lambda d: step(d,0,0)["arguments"]["parameters"][0].update(name="mesage"),
        (
            (
                "spec.templates[3].steps[0][0].arguments.parameters[0].name",
                'template "work" has no input parameter "mesage", so Argo ignores this argument silently (got '
                '"mesage"; expected one of its inputs.parameters: message; did you mean "message"?)',
                "arguments",
            ),
        ),
        False,
    ),
    Case(
        "argument-required-missing",
        lambda d: (work(d)["inputs"]["parameters"][0].pop("default"), step(d,0,0).pop("arguments")),
        (
            (
                "spec.templates[3].steps[0][0].arguments",
                'template "work" requires inputs.parameters.message (no default), which this step does not pass, '
                'so Argo fails it with "inputs.parameters.message was not supplied" (expected '
                'arguments.parameters with an entry named "message", or a default in template "work")',
                "arguments",
            ),
        ),
        False,
    ),
    Case(
        "when-dashed-word",
        lambda d: step(d,1,0).update(when="{{steps.first.outputs.result}} == approve-it"),
        (
            (
                "spec.templates[3].steps[1][0].when",
                'when is read by govaluate after substitution, and the unquoted word "approve-it" contains "-", '
                'which govaluate does not read as one value; Argo errors the node at run time (got '
                '"{{steps.first.outputs.result}} == approve-it"; expected both sides single-quoted: '
                "'{{steps.first.outputs.result}}' == 'approve-it')",
                "when-quoting",
            ),
        ),
        False,
    ),
    Case(
        "when-tag-vs-dashed-literal",
        lambda d: task(d,1).update(when="{{tasks.work.outputs.result}} != 'approve-it'"),
        (
            (
                "spec.templates[0].dag.tasks[1].when",
                'when is read by govaluate after substitution, and an unquoted {{...}} is compared with '
                "'approve-it': a value equal to it is not one bare word, so the comparison errors exactly when "
                'it would match; Argo errors the node at run time (got "{{tasks.work.outputs.result}} != '
                '\'approve-it\'"; expected both sides single-quoted: \'{{tasks.work.outputs.result}}\' != '
                "'approve-it')",
                "when-quoting",
            ),
        ),
        False,
    ),
    Case(
        "retry-expression-unknown-name",
        lambda d: work(d)["retryStrategy"].update(expression="retry < 2"),
        (
            (
                "spec.templates[1].retryStrategy.expression",
                'retryStrategy expression does not compile: unknown name "retry" (workflow and input values go '
                'in as {{...}} tags, e.g. {{inputs.parameters.x}}); Argo errors the node when it evaluates it '
                '(got "retry < 2"; expected an expr-lang boolean over '
                'lastRetry.exitCode|status|duration|message, retries and functions such as asInt, asFloat, '
                'matches)',
                "expression",
            ),
        ),
        False,
    ),
    Case(
        "retry-expression-unknown-field",
        lambda d: work(d)["retryStrategy"].update(expression="lastRetry.exitcode == '75'"),
        (
            (
                "spec.templates[1].retryStrategy.expression",
                'retryStrategy expression reads lastRetry.exitcode, which is always nil (lastRetry has only '
                'duration, exitCode, message, status), so the condition never sees the real value (got '
                '"lastRetry.exitcode == \'75\'"; expected an expr-lang boolean over '
                'lastRetry.exitCode|status|duration|message, retries and functions such as asInt, asFloat, '
                'matches)',
                "expression",
            ),
        ),
        False,
    ),
    Case(
        "retry-expression-unterminated",
        lambda d: work(d)["retryStrategy"].update(expression="lastRetry.status == 'Error"),
        (
            (
                "spec.templates[1].retryStrategy.expression",
                "retryStrategy expression does not compile: unterminated string: the ' at column 21 is never "
                'closed; Argo errors the node when it evaluates it (got "lastRetry.status == \'Error"; expected '
                'an expr-lang boolean over lastRetry.exitCode|status|duration|message, retries and functions '
                'such as asInt, asFloat, matches)',
                "expression",
            ),
        ),
        False,
    ),
    Case(
        "hook-expression-unbalanced",
        lambda d: task(d,1)["hooks"]["running"].update(expression='(tasks["work"].status == "Running"'),
        (
            (
                "spec.templates[0].dag.tasks[1].hooks.running.expression",
                'lifecycle hook "running" expression does not compile: unbalanced brackets: the ( at column 1 is '
                'never closed; Argo errors the node when it evaluates it (got "(tasks[\\"work\\"].status == '
                '\\"Running\\""; expected an expr-lang boolean over workflow.*, inputs.*, steps["name"].* or '
                'tasks["name"].*)',
                "expression",
            ),
        ),
        False,
    ),
    Case(
        "workflow-hook-expression-steps",
        lambda d: d["spec"].update(
            hooks={"running": {"template": "work", "expression": 'steps["first"].status == "Running"'}}
        ),
        (
            (
                "spec.hooks.running.expression",
                'lifecycle hook "running" expression does not compile: unknown name "steps" (a workflow-level '
                "hook sees only the workflow's global variables); Argo errors the workflow when it evaluates it "
                '(got "steps[\\"first\\"].status == \\"Running\\""; expected an expr-lang boolean over workflow.* '
                'only, e.g. workflow.status == "Running")',
                "expression",
            ),
        ),
        False,
    ),
    Case(
        "volume-mount-unknown",
        lambda d: work(d)["container"]["volumeMounts"][0].update(name="scrach"),
        (
            (
                "spec.templates[1].container.volumeMounts[0].name",
                'volumeMount names volume "scrach", which neither this template\'s volumes, the workflow\'s '
                'volumes nor its volumeClaimTemplates declare; Kubernetes rejects the pod (got "scrach"; '
                'expected one of: scratch; did you mean "scratch"?)',
                "volume-mount",
            ),
        ),
        False,
    ),

]


def _broken(case: Case) -> Doc:
    doc = yaml.safe_load(case.base)
    case.mutate(doc)
    return doc


def _found(doc: Doc, schema: ArgoSchema | None) -> list[Expected]:
    return [(p.path, p.message, p.rule) for p in validate_documents([doc], source="sample.yaml", schema=schema)]


@pytest.mark.parametrize("base", [BASE, CRON], ids=["workflow-template", "cron-workflow"])
def test_the_unbroken_samples_are_valid(base: str, strict_schema: ArgoSchema) -> None:
    """The samples the cases break are themselves free of problems."""
    assert _found(yaml.safe_load(base), strict_schema) == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_broken_sample_reports_exactly_its_problem(case: Case, strict_schema: ArgoSchema) -> None:
    """One break yields exactly the expected path, message and rule, reported once."""
    assert _found(_broken(case), strict_schema) == list(case.expected)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_reference_validator_agrees_where_it_can_judge(case: Case, reference: ModuleType) -> None:
    """The reference (schema only) rejects exactly the samples marked so; we reject all of them."""
    doc = _broken(case)
    errors = list(reference.validators()[doc["kind"]].iter_errors(doc))
    assert bool(errors) is case.reference_rejects


SEMANTIC_CASES = [c for c in CASES if all(rule != "schema" for _, _, rule in c.expected)]


@pytest.mark.parametrize("case", SEMANTIC_CASES, ids=[c.id for c in SEMANTIC_CASES])
def test_semantic_checks_run_without_a_schema(case: Case) -> None:
    """Without a schema every semantic problem is still found, with the same message."""
    assert _found(_broken(case), None) == list(case.expected)


def test_policy_rules_are_the_ones_argo_itself_accepts() -> None:
    """Only the missing limit and the spec-level retryStrategy are stricter than Argo."""
    assert POLICY_RULES == {"retry-limit", "spec-retry"}


GOOD_VARIANTS = {
    "templated-values-are-left-to-argo": lambda d: (
        work(d)["inputs"]["parameters"].extend(
            {"name": n, "default": "1"} for n in ("retries", "factor", "budget", "timeout", "key", "age", "deadline")
        ),
        work(d).update(activeDeadlineSeconds="{{inputs.parameters.deadline}}"),
        work(d)["retryStrategy"].update(limit="{{inputs.parameters.retries}}"),
        backoff(d).update(factor="{{inputs.parameters.factor}}", maxDuration="{{inputs.parameters.budget}}"),
        work(d).update(timeout="{{inputs.parameters.timeout}}"),
        work(d)["memoize"].update(key="{{inputs.parameters.key}}", maxAge="{{inputs.parameters.age}}"),
    ),
    "integers-where-argo-takes-int-or-string": lambda d: (
        work(d)["retryStrategy"].update(limit=3),
        backoff(d).update(factor=2),
    ),
    "bare-seconds-in-backoff-and-suspend": lambda d: (
        backoff(d).update(duration="30", cap="600", maxDuration="3600"),
        tpl(d, 2)["suspend"].update(duration="60"),
    ),
    "zero-and-fractional-go-durations": lambda d: (
        work(d).update(timeout="1.5h"),
        work(d)["memoize"].update(maxAge="0"),
        backoff(d).update(duration="500ms"),
    ),
    "exit-hook-needs-no-expression": lambda d: task(d, 1)["hooks"]["running"].update(
        expression='tasks["work"].status == "Failed"'
    ),
    "continue-on-without-depends": lambda d: (
        task(d, 1).pop("depends"),
        task(d, 1).update(dependencies=["work"], continueOn={"failed": True}),
    ),
    "signed-factor-as-atoi-reads-it": lambda d: backoff(d).update(factor="+3"),
    "template-deadline-as-integer-string-or-reference": lambda d: (
        work(d).update(activeDeadlineSeconds="+30"),
        d["spec"].update(templateDefaults={"activeDeadlineSeconds": "{{workflow.parameters.deadline}}"}),
    ),
    "depends-with-negation-groups-and-item-results": lambda d: (
        task(d, 0).update(withItems=[1, 2]),
        task(d, 1).update(depends="!work.Errored && (work.AnySucceeded || work.AllFailed || work.Omitted)"),
    ),
    "when-with-plain-words-numbers-regex-and-expression-tags": lambda d: (
        task(d, 1).update(when="( {{tasks.work.outputs.result}} == heads && {{tasks.work.status}} != Failed )"),
        step(d, 1, 0).update(when="{{steps.first.outputs.result}} =~ 'app.*-it' || {{steps.first.exitCode}} < -1"),
        step(d, 0, 0).update(when="{{= inputs.parameters.message == 'approve-it' }}"),
        tpl(d, 3).update(inputs={"parameters": [{"name": "message", "value": "x"}]}),
    ),
    "input-references-in-every-form": lambda d: work(d)["container"].update(
        args=[
            "{{inputs.parameters}}",
            "{{= inputs.parameters.message }}",
            "{{=sprig.trim(inputs.parameters['message'])}}",
        ]
    ),
    "step-and-task-references-argo-resolves": lambda d: (
        step(d, 1, 0).update(hooks={"exit": {"template": "work", "arguments": {"parameters": [
            {"name": "message", "value": "{{steps.second.status}} {{steps.name}}"},
        ]}}}),
        tpl(d, 3).update(outputs={"parameters": [
            {"name": "out", "valueFrom": {"parameter": "{{steps.second.outputs.result}}"}},
        ]}),
        tpl(d, 0).update(outputs={"parameters": [
            {"name": "out", "valueFrom": {"expression": "tasks.report.outputs.result ?? tasks['work'].outputs.result"}},
        ]}),
    ),
    "arguments-argo-does-not-require": lambda d: (
        work(d)["inputs"].update(artifacts=[
            {"name": "data", "path": "/data", "optional": True},
            {"name": "seed", "path": "/seed", "raw": {"data": "1"}},
        ]),
        work(d)["inputs"]["parameters"].append(
            {"name": "cm", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
        ),
        # a template without inputs ignores arguments; upstream examples use them to label fan-out nodes
        step(d, 0, 0).update(
            template="gate", arguments={"parameters": [{"name": "label", "value": "{{item}}"}]}, withItems=[1, 2]
        ),
    ),
    "expressions-with-tags-functions-and-let": lambda d: (
        work(d)["retryStrategy"].update(
            expression="let r = asInt(retries); r < 2 && ('{{inputs.parameters.message}}' == 'retry' || "
            "(asInt(lastRetry.exitCode) >= 75 && lastRetry.message matches 'OOMKilled|pod deleted'))"
        ),
        d["spec"].update(hooks={"running": {"template": "work", "expression": 'workflow.status == "Running"'}}),
    ),
    "volumes-from-the-workflow-and-claim-templates": lambda d: (
        work(d).pop("volumes"),
        work(d)["container"]["volumeMounts"].append({"name": "workspace", "mountPath": "/workspace"}),
        d["spec"].update(
            volumes=[{"name": "scratch", "emptyDir": {}}],
            volumeClaimTemplates=[{
                "metadata": {"name": "workspace"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        ),
    ),
}


@pytest.mark.parametrize("mutate", GOOD_VARIANTS.values(), ids=list(GOOD_VARIANTS))
def test_valid_variants_are_accepted(mutate: Callable[[Doc], object], strict_schema: ArgoSchema) -> None:
    """Values Argo accepts are not reported."""
    doc = yaml.safe_load(BASE)
    mutate(doc)
    assert _found(doc, strict_schema) == []


def test_template_references_are_not_checked_through_a_workflow_template_ref(strict_schema: ArgoSchema) -> None:
    """A Workflow that runs a WorkflowTemplate names templates that live elsewhere."""
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "run-"},
        "spec": {"entrypoint": "main", "workflowTemplateRef": {"name": "sample"}},
    }
    assert _found(doc, strict_schema) == []


def test_volume_mounts_of_a_library_template_are_left_to_the_calling_workflow(strict_schema: ArgoSchema) -> None:
    """Without an entrypoint the template runs through templateRef, in a pod whose volumes the caller declares."""
    doc = yaml.safe_load(BASE)
    work(doc)["container"]["volumeMounts"][0]["name"] = "workspace"
    assert [rule for _, _, rule in _found(doc, strict_schema)] == ["volume-mount"]
    del doc["spec"]["entrypoint"]
    assert _found(doc, strict_schema) == []


def test_a_pod_spec_patch_may_supply_the_mounted_volume(strict_schema: ArgoSchema) -> None:
    """podSpecPatch can add volumes the validator cannot see, so mounts of that template are not judged."""
    doc = yaml.safe_load(BASE)
    work(doc)["container"]["volumeMounts"][0]["name"] = "workspace"
    work(doc)["podSpecPatch"] = '{"volumes": [{"name": "workspace", "emptyDir": {}}]}'
    assert _found(doc, strict_schema) == []


def test_arguments_through_a_template_ref_are_not_checked(strict_schema: ArgoSchema) -> None:
    """A templateRef names a template in another document (even if a local one has the same name)."""
    doc = yaml.safe_load(BASE)
    first = step(doc, 0, 0)
    first.pop("template")
    first.update(
        templateRef={"name": "elsewhere", "template": "work"},
        arguments={"parameters": [{"name": "x", "value": "1"}]},
    )
    assert _found(doc, strict_schema) == []


def test_references_inside_an_inline_template_resolve_against_its_own_inputs(strict_schema: ArgoSchema) -> None:
    """An inline template is its own scope: its inputs, not the enclosing steps template's."""
    doc = yaml.safe_load(BASE)
    first = step(doc, 0, 0)
    first.pop("template")
    first["inline"] = {
        "inputs": {"parameters": [{"name": "message"}]},
        "container": {"image": "busybox", "args": ["{{inputs.parameters.message}}", "{{inputs.parameters.other}}"]},
    }
    found = _found(doc, strict_schema)
    assert [(path, rule) for path, _, rule in found] == [
        ("spec.templates[3].steps[0][0].inline.container.args[1]", "input-ref")
    ]


def test_metric_types_are_compared_across_the_whole_document(strict_schema: ArgoSchema) -> None:
    """A workflow-level gauge and a template-level counter of the same name conflict."""
    doc = yaml.safe_load(BASE)
    doc["spec"]["metrics"] = {
        "prometheus": [{"name": "work_total", "help": "h", "gauge": {"realtime": False, "value": "1"}}]
    }
    found = _found(doc, strict_schema)
    assert [(path, rule) for path, _, rule in found] == [(f"{W}.metrics.prometheus[0].counter", "metric-type")]
    assert "is a counter here but a gauge at spec.metrics.prometheus[0]" in found[0][1]


def test_a_problem_is_one_line_naming_file_document_path_and_rule(strict_schema: ArgoSchema) -> None:
    """str(Problem) reads FILE#INDEX KIND/NAME PATH: MESSAGE [RULE] on one line."""
    doc = yaml.safe_load(BASE)
    backoff(doc).update(factor="1.5")
    (problem,) = validate_documents([None, doc], source="generated/x.yaml", schema=strict_schema)
    identity = (problem.file, problem.doc_index, problem.kind, problem.name)
    assert identity == ("generated/x.yaml", 1, "WorkflowTemplate", "sample")
    assert str(problem) == (
        f"generated/x.yaml#1 WorkflowTemplate/sample {W}.retryStrategy.backoff.factor: "
        + FACTOR.format('"1.5"')
        + " [integer]"
    )


def test_values_with_newlines_still_give_one_line(strict_schema: ArgoSchema) -> None:
    """A multi-line bad value is escaped, so each problem stays on one line."""
    doc = yaml.safe_load(BASE)
    work(doc)["memoize"]["key"] = "line one\nline two"
    (problem,) = validate_documents([doc], source="x.yaml", schema=strict_schema)
    assert "\n" not in str(problem) and '"line one\\nline two"' in str(problem)


def test_non_argo_documents_are_ignored(strict_schema: ArgoSchema) -> None:
    """ConfigMaps, Kustomizations and scalars produce no problems here (validate_paths counts them)."""
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "data": {"podPriority": 1}}, "text", [1, 2]]
    assert validate_documents(docs, source="x.yaml", schema=strict_schema) == []


def test_malformed_documents_do_not_crash_the_semantic_checks(strict_schema: ArgoSchema) -> None:
    """Wrong types everywhere are reported by the schema; the semantic checks just skip them."""
    doc = yaml.safe_load(BASE)
    doc["spec"]["templates"][0]["dag"] = ["not", "a", "dag"]
    doc["spec"]["templates"][1]["retryStrategy"] = "always"
    doc["spec"]["templates"][1]["metrics"] = {"prometheus": "none"}
    doc["spec"]["hooks"] = ["x"]
    found = _found(doc, strict_schema)
    assert {rule for _, _, rule in found} == {"schema"}
    assert {path for path, _, _ in found} == {
        "spec.hooks",
        "spec.templates[0].dag",
        f"{W}.metrics.prometheus",
        f"{W}.retryStrategy",
    }

