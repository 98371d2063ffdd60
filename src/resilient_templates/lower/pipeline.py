"""Pipeline → one DAG WorkflowTemplate (+ a stage library for ``templateRef`` users).

    spec:
      entrypoint: main                      # DAG: stages in dependency order
      onExit: exit-handler                  # analyse + notify, only when the run did not succeed
      activeDeadlineSeconds, podGC, ttlStrategy, serviceAccountName, volumeClaimTemplates
      templates: [main, <stages>, <gate>, exit-handler, rt-analyze, rt-notify]

Manual intervention: the gate is a suspend node before the guarded stage, with a timeout and a
supplied ``decision`` output whose default applies on expiry (argo-semantics §3.2); the guarded
stage runs only when the decision is ``approve``. A human answers with

    argo node set WF --node-field-selector inputs.parameters.gate-id.value=GATE \\
        -p decision=approve --phase Succeeded

(``argo resume --node-field-selector`` would not apply defaults, §3.3.)

Happy path cost: the exit handler's steps are skipped by ``when`` on success, so a run in which
nothing fails creates no pod beyond its stages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from hera.workflows import DAG, Container, CronWorkflow, Parameter, SecretEnv, Step, Steps, Suspend, Task
from hera.workflows import WorkflowTemplate
from hera.workflows import models as m

from ..dsl import ApprovalGate, ExitHandler, Pipeline
from ..errors import LoweringError
from .stage import MANAGED_BY, WrapperHint, stage_template

__all__ = [
    "exit_handler_templates",
    "gate_template",
    "pipeline_template",
    "stage_library",
    "tick_cron_workflow",
]

PIPELINE_LABEL = "resilient-templates.io/pipeline"
ANALYSIS_PATH = "/tmp/rt/analysis.json"
NOTIFY_MOUNT = "/etc/resilient-templates/notify"
FAILED = "'{{workflow.status}}' != 'Succeeded'"
ANALYSIS_REF = "{{=steps.analyze.outputs?.parameters?.analysis ?? '[]'}}"
#: Exit-handler pods are exempt from the workflow deadline (argo-semantics §2.2) and Argo does
#: not give up on ImagePullBackOff: `timeout` (Pending time included) bounds them.
RUNTIME_TIMEOUT = "10m"
SUCCEEDED = "'{{workflow.status}}' == 'Succeeded'"


def gate_template(gate: ApprovalGate) -> Suspend:
    """A suspend node that waits for a human decision, defaulting on timeout."""
    return Suspend(
        name=gate.name,
        duration=gate.timeout.to_go(),
        inputs=[
            Parameter(name="gate-id", description="Target this gate with --node-field-selector."),
            Parameter(
                name="decision",
                default=gate.default,
                enum=["approve", "reject"],
                description=gate.description,
            ),
        ],
        outputs=[
            Parameter(
                name="decision",
                value_from=m.ValueFrom(supplied=m.SuppliedValueFrom(), default=gate.default),
            )
        ],
    )


def _runtime_env(handler: ExitHandler) -> list[SecretEnv]:
    """The shared state store's URL, from a Secret (optional: SQLite in the pod otherwise)."""
    return [SecretEnv(name="RT_STATE_URL", secret_name=handler.state_secret, secret_key="url",
                      optional=True)]  # fmt: skip


def _notify_volume(handler: ExitHandler) -> tuple[list[m.Volume], list[m.VolumeMount]]:
    volume = m.Volume(
        name="notify-config",
        config_map=m.ConfigMapVolumeSource(name=handler.notify_config, optional=True),
    )
    mount = m.VolumeMount(name="notify-config", mount_path=NOTIFY_MOUNT, read_only=True)
    return [volume], [mount]


def _secrets(handler: ExitHandler) -> list[m.EnvFromSource]:
    return [m.EnvFromSource(secret_ref=m.SecretEnvSource(name=handler.secrets, optional=True))]


def tick_cron_workflow(pipeline: Pipeline, handler: ExitHandler) -> CronWorkflow:
    """Escalations, reminders, grouped messages and delivery retries need a clock.

    A failure container cannot wait five minutes, so one long-running tick (a pod every five
    minutes, ticking for just under five) sends what has come due. It needs the shared state
    store (Secret ``resilient-state``, key ``url``); without it there is nothing to escalate.
    """
    volumes, mounts = _notify_volume(handler)
    tick = Container(
        name="tick",
        image=handler.runtime_image,
        command=["resilient-runtime", "tick"],
        args=["--config", f"{NOTIFY_MOUNT}/plan.json", "--loop", "--for", "290s"],
        env=_runtime_env(handler),
        env_from=_secrets(handler),
        volumes=volumes,
        volume_mounts=mounts,
        labels=dict(MANAGED_BY),
    )
    return CronWorkflow(
        name=f"{pipeline.name}-notify-tick",
        namespace=pipeline.namespace,
        labels={**MANAGED_BY, PIPELINE_LABEL: pipeline.name},
        schedules=["*/5 * * * *"],
        concurrency_policy="Forbid",
        starting_deadline_seconds=60,
        successful_jobs_history_limit=1,
        failed_jobs_history_limit=3,
        entrypoint="tick",
        service_account_name=pipeline.service_account,
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        active_deadline_seconds=600,
        templates=[tick],
    )


def exit_handler_templates(
    pipeline: Pipeline, handler: ExitHandler
) -> tuple[Steps, Container, Container]:
    """``exit-handler`` (steps), ``rt-analyze`` and ``rt-notify`` (runtime containers)."""
    stages = ",".join(s.name for s in pipeline.stages)
    workflow_args = [
        "--workflow", "{{workflow.name}}",
        "--namespace", "{{workflow.namespace}}",
        "--uid", "{{workflow.uid}}",
        "--status", "{{workflow.status}}",
        "--failures", "{{workflow.failures}}",
    ]  # fmt: skip
    analyze = Container(
        name="rt-analyze",
        image=handler.runtime_image,
        command=["resilient-runtime", "analyze"],
        args=[*workflow_args, "--stages", stages, "--output", ANALYSIS_PATH],
        env=_runtime_env(handler),
        timeout=RUNTIME_TIMEOUT,
        outputs=[
            Parameter(
                name="analysis",
                value_from=m.ValueFrom(path=ANALYSIS_PATH, default="[]"),
                description="FailureAnalysis JSON documents, one per failed stage.",
            )
        ],
        labels=dict(MANAGED_BY),
    )
    notify = Container(
        name="rt-notify",
        image=handler.runtime_image,
        command=["resilient-runtime", "notify"],
        args=[
            "--config", f"{NOTIFY_MOUNT}/plan.json",
            "--analysis", ANALYSIS_PATH,
            *workflow_args,
        ],  # fmt: skip
        env=_runtime_env(handler),
        env_from=_secrets(handler),
        timeout=RUNTIME_TIMEOUT,
        inputs=[
            Parameter(name="analysis", default="[]"),
            m.Artifact(
                name="analysis",
                path=ANALYSIS_PATH,
                raw=m.RawArtifact(data="{{inputs.parameters.analysis}}"),
            ),
        ],
        volumes=_notify_volume(handler)[0],
        volume_mounts=_notify_volume(handler)[1],
        labels=dict(MANAGED_BY),
    )
    resolve_steps = []
    if handler.resolve_on_success:
        resolve_steps = [
            Step(
                name="resolve",
                template="rt-notify",
                when=SUCCEEDED,
                arguments={"analysis": "[]"},
            )
        ]
    steps = Steps(
        name="exit-handler",
        sub_steps=[
            Step(
                name="analyze",
                template="rt-analyze",
                when=FAILED,
                continue_on=m.ContinueOn(failed=True, error=True),
            ),
            Step(
                name="notify",
                template="rt-notify",
                when=FAILED,
                # guarded: an analyze pod that errored has no outputs, and a plain reference to
                # a missing output would keep the exit handler waiting (failure-path §1.5)
                arguments={"analysis": ANALYSIS_REF},
            ),
            *resolve_steps,
        ],
    )
    return steps, analyze, notify


def _main_dag(pipeline: Pipeline) -> DAG:
    deps = pipeline.resolved_dependencies()
    by_name = {s.name: s for s in pipeline.stages}
    params = {p.name for p in pipeline.parameters}
    gate = pipeline.gate
    tasks: list[Task] = []
    for stage in pipeline.stages:
        upstream = [by_name[u].template_name for u in deps[stage.name]]
        when = None
        if gate is not None and gate.before == stage.name:
            tasks.append(
                Task(
                    name=gate.name,
                    template=gate.name,
                    depends=" && ".join(upstream) or None,
                    arguments={"gate-id": gate.name},
                )
            )
            upstream = [gate.name]
            when = f"'{{{{tasks.{gate.name}.outputs.parameters.decision}}}}' == 'approve'"
        arguments = {
            p.name: f"{{{{workflow.parameters.{p.name}}}}}" for p in stage.inputs if p.name in params
        }
        tasks.append(
            Task(
                name=stage.template_name,
                template=stage.template_name,
                depends=" && ".join(upstream) or None,
                when=when,
                arguments=arguments or None,
            )
        )
    return DAG(name="main", tasks=tasks)


def _check(pipeline: Pipeline) -> None:
    if pipeline.gate is not None and pipeline.deadline is not None:
        if pipeline.gate.timeout >= pipeline.deadline:
            raise LoweringError(
                f"pipeline {pipeline.name!r}: approval timeout {pipeline.gate.timeout} is not "
                f"shorter than the workflow deadline {pipeline.deadline}; the deadline would "
                "fail the waiting gate before its default applies"
            )
    reserved = {"main", "exit-handler", "rt-analyze", "rt-notify"}
    names = [s.template_name for s in pipeline.stages]
    if pipeline.gate is not None:
        names.append(pipeline.gate.name)
    clash = sorted((set(names) & reserved) | {n for n, c in Counter(names).items() if c > 1})
    if clash:
        raise LoweringError(f"pipeline {pipeline.name!r}: template name {clash[0]!r} is taken")


def pipeline_template(
    pipeline: Pipeline, *, hints: Sequence[WrapperHint] | None = None
) -> WorkflowTemplate:
    """The pipeline's WorkflowTemplate: DAG, stages, gate, exit handler and run settings."""
    _check(pipeline)
    templates: list = [_main_dag(pipeline)]
    templates += [stage_template(s, hints=hints) for s in pipeline.stages]
    if pipeline.gate is not None:
        templates.append(gate_template(pipeline.gate))
    if pipeline.on_exit is not None:
        templates += list(exit_handler_templates(pipeline, pipeline.on_exit))
    labels = {**MANAGED_BY, PIPELINE_LABEL: pipeline.name, **pipeline.labels}
    ttl = None
    if pipeline.ttl_after_success is not None or pipeline.ttl_after_failure is not None:
        ttl = m.TTLStrategy(
            seconds_after_success=_int_seconds(pipeline.ttl_after_success),
            seconds_after_failure=_int_seconds(pipeline.ttl_after_failure),
        )
    claims = None
    if pipeline.workspace_size and any(s.workspace for s in pipeline.stages):
        claims = [
            m.PersistentVolumeClaim(
                metadata=m.ObjectMeta(name="workspace"),
                spec=m.PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    resources=m.VolumeResourceRequirements(
                        requests={"storage": m.Quantity(pipeline.workspace_size)}
                    ),
                ),
            )
        ]
    return WorkflowTemplate(
        name=pipeline.name,
        namespace=pipeline.namespace,
        labels=labels,
        entrypoint="main",
        service_account_name=pipeline.service_account,
        active_deadline_seconds=_int_seconds(pipeline.deadline),
        pod_gc=m.PodGC(strategy=pipeline.pod_gc) if pipeline.pod_gc else None,
        ttl_strategy=ttl,
        on_exit="exit-handler" if pipeline.on_exit is not None else None,
        workflow_metadata=m.WorkflowMetadata(labels=labels),
        arguments=[
            Parameter(name=p.name, description=p.description or None, enum=list(p.enum) or None,
                      **({"value": p.default} if p.default is not None else {}))
            for p in pipeline.parameters
        ] or None,  # fmt: skip
        volume_claim_templates=claims,
        templates=templates,
    )


def _int_seconds(value) -> int | None:
    return None if value is None else value.ceil_seconds()


def stage_library(
    name: str, stages: Sequence, *, namespace: str | None = None,
    hints: Sequence[WrapperHint] | None = None,
) -> WorkflowTemplate:  # fmt: skip
    """A WorkflowTemplate holding only stage templates, for YAML users' ``templateRef``."""
    return WorkflowTemplate(
        name=name,
        namespace=namespace,
        labels=dict(MANAGED_BY),
        templates=[stage_template(s, hints=hints) for s in stages],
    )
