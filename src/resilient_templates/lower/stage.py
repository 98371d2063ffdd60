"""Stage → Argo container template, run through the stage wrapper.

    - name: repository-clone
      retryStrategy: {limit: "2", retryPolicy: Always, backoff: {...}}
      activeDeadlineSeconds: "600"          # per attempt: the pod's hard deadline
      container:
        command: [/bin/sh, -c, <wrapper>, rt-wrapper]
        args: [<the stage's own command>]
        env: [RT_STAGE, RT_RETRIES={{retries}}, RT_TIMEOUT, RT_HINTS, …]
      outputs:
        parameters:
        - name: error-context               # collected from failed pods too (§4)
          valueFrom: {path: /tmp/rt/error-context.json, default: "{}"}

Deadlines: ``activeDeadlineSeconds`` = attempt timeout + the longest in-pod retry wait (the
kubelet kills the pod then). The wrapper stops the command a margin earlier (see
``soft_deadline``) so that the error context is written and saved before the kill.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from hera.workflows import Container, Env, Parameter
from hera.workflows import SecretEnv as HeraSecretEnv
from hera.workflows import models as m

from ..dsl import Stage
from ..policy import Duration
from .retry import retry_lowering
from .wrapper import CONTEXT_PATH, wrapper_script

CONTEXT_DIR = posixpath.dirname(CONTEXT_PATH)

__all__ = ["MANAGED_BY", "STAGE_LABEL", "WrapperHint", "soft_deadline", "stage_template"]

MANAGED_BY = {"app.kubernetes.io/managed-by": "resilient-templates"}
STAGE_LABEL = "resilient-templates.io/stage"

#: (signature, category, transient, POSIX ERE) as ``knowledge.wrapper_hints()`` returns them.
WrapperHint = tuple[str, str, bool, str]


def soft_deadline(timeout: Duration) -> tuple[int, int]:
    """(seconds until the wrapper stops the command, seconds it waits before SIGKILL).

    The pod's activeDeadlineSeconds counts from pod start (image pull included); the wrapper's
    clock starts later, and after the stop it still needs the kill grace plus up to 5 s to
    collect the output tail. So the margin is at least grace + 20 s (10 % of the timeout, at
    most 2 minutes), and never more than half the attempt.
    """
    total = timeout.ceil_seconds()
    grace = 10 if total >= 60 else max(1, total // 6)
    margin = min(max(grace + 20, min(120, total // 10)), total // 2)
    return max(1, total - margin), grace


def _hints_env(hints: Sequence[WrapperHint]) -> str:
    return "\n".join(
        f"{name}\t{category}\t{'true' if transient else 'false'}\t{ere}"
        for name, category, transient, ere in hints
    )


def _resources(stage: Stage) -> m.ResourceRequirements | None:
    requests, limits = stage.resources.requests(), stage.resources.limits()
    if not requests and not limits:
        return None
    return m.ResourceRequirements(
        requests={k: m.Quantity(v) for k, v in requests.items()} or None,
        limits={k: m.Quantity(v) for k, v in limits.items()} or None,
    )


def stage_template(stage: Stage, *, hints: Sequence[WrapperHint] | None = None) -> Container:
    """The container template of ``stage``.

    ``hints`` are the wrapper's classification patterns; by default the runtime knowledge
    base's own (``resilient_templates.runtime.analysis.knowledge.wrapper_hints``), so the
    same signatures classify in the pod and in the analysis.
    """
    if hints is None:
        from ..runtime.analysis.knowledge import wrapper_hints

        hints = wrapper_hints()
    lowering = retry_lowering(stage.retry)
    env: list[Env | HeraSecretEnv] = [Env(name="RT_STAGE", value=stage.name)]
    env += [Env(name=k, value=v) for k, v in lowering.env.items()]
    deadline: str | None = None
    if stage.retry.attempt_timeout is not None:
        stop_after, grace = soft_deadline(stage.retry.attempt_timeout)
        env += [
            Env(name="RT_TIMEOUT", value=str(stop_after)),
            Env(name="RT_KILL_GRACE", value=str(grace)),
        ]
        deadline = str((stage.retry.attempt_timeout + lowering.max_in_pod).ceil_seconds())
    mkdirs = sorted({posixpath.dirname(o.path) for o in stage.outputs} - {CONTEXT_DIR, ""})
    if mkdirs:
        env.append(Env(name="RT_MKDIRS", value=" ".join(mkdirs)))
    if hints:
        env.append(Env(name="RT_HINTS", value=_hints_env(hints)))
    env += [Env(name=k, value=v) for k, v in stage.env.items()]
    env += [
        HeraSecretEnv(name=s.env, secret_name=s.secret, secret_key=s.key, optional=s.optional or None)
        for s in stage.secret_env
    ]
    args = list(stage.command) if stage.command else ["/bin/sh", "-c", stage.script or ""]
    outputs = [
        Parameter(
            name="error-context",
            value_from=m.ValueFrom(path=CONTEXT_PATH, default="{}"),
            description="What the wrapper recorded: exit code, signal, hint, log tail (JSON).",
        )
    ]
    outputs += [
        Parameter(
            name=o.name,
            value_from=m.ValueFrom(path=o.path, default=o.default),
            description=o.description or None,
        )
        for o in stage.outputs
    ]
    inputs = [
        Parameter(
            name=p.name,
            description=p.description or None,
            enum=list(p.enum) or None,
            # Hera renders an explicit default=None as the string 'null': pass it only when set.
            **({"default": p.default} if p.default is not None else {}),
        )
        for p in stage.inputs
    ]
    mounts = (
        [m.VolumeMount(name="workspace", mount_path=stage.workspace)] if stage.workspace else None
    )
    return Container(
        name=stage.template_name,
        image=stage.image,
        command=["/bin/sh", "-c", wrapper_script(), "rt-wrapper"],
        args=args,
        env=env,
        inputs=inputs or None,
        outputs=outputs,
        resources=_resources(stage),
        retry_strategy=lowering.strategy,
        active_deadline_seconds=deadline,
        volume_mounts=mounts,
        labels={**MANAGED_BY, STAGE_LABEL: stage.template_name, **stage.labels},
    )
