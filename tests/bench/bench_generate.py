"""Generating an N-stage pipeline through the DSL vs the same templates hand-written in plain Hera.

Both sides build the identical WorkflowTemplate (asserted), then call Hera's ``to_dict()`` and
our renderer, so the ratio isolates what the DSL adds: value objects, validation, retry
lowering. Runs are interleaved (A, B, A, B, …) and the median is reported. Goal: ratio ≤ 1.2
at every N, and time per stage roughly constant as N grows (linear cost).
"""

from __future__ import annotations

import statistics
import time

from hera.workflows import DAG, Container, Env, Parameter, Task, WorkflowTemplate
from hera.workflows import models as m

from resilient_templates.dsl import Pipeline, Stage
from resilient_templates.lower import pipeline_template
from resilient_templates.lower.wrapper import CONTEXT_PATH, wrapper_script
from resilient_templates.policy import Exponential, Resources, Retry
from resilient_templates.render import dump_documents

HINTS: list = []


def dsl_stages(n: int) -> list[Stage]:
    return [
        Stage(
            name=f"stage_{i}",
            image="alpine:3.20",
            command=("sh", "-c", f"echo stage {i}"),
            retry=Retry(3, Exponential("30s", cap="5m"), attempt_timeout="10m"),
            resources=Resources(cpu_request="100m", memory_limit="256Mi"),
            workspace=None,
        )
        for i in range(n)
    ]


def via_dsl(n: int) -> dict:
    pipeline = Pipeline(name="bench", stages=dsl_stages(n), pod_gc="", workspace_size=None)
    return pipeline_template(pipeline, hints=HINTS).to_dict()


def via_hera(n: int) -> dict:
    """What a careful engineer writes by hand in Hera for the same templates."""
    wrapper = wrapper_script()
    labels = {"app.kubernetes.io/managed-by": "resilient-templates"}
    templates, tasks = [], []
    for i in range(n):
        name = f"stage-{i}"
        templates.append(
            Container(
                name=name,
                image="alpine:3.20",
                command=["/bin/sh", "-c", wrapper, "rt-wrapper"],
                args=["sh", "-c", f"echo stage {i}"],
                env=[
                    Env(name="RT_STAGE", value=f"stage_{i}"),
                    Env(name="RT_RETRIES", value="{{retries}}"),
                    Env(name="RT_TIMEOUT", value="540"),
                    Env(name="RT_KILL_GRACE", value="10"),
                ],
                outputs=[
                    Parameter(
                        name="error-context",
                        value_from=m.ValueFrom(path=CONTEXT_PATH, default="{}"),
                        description="What the wrapper recorded: exit code, signal, hint, log tail (JSON).",
                    )
                ],
                resources=m.ResourceRequirements(
                    requests={"cpu": m.Quantity("100m")}, limits={"memory": m.Quantity("256Mi")}
                ),
                retry_strategy=m.RetryStrategy(
                    limit="2",
                    retry_policy="Always",
                    backoff=m.Backoff(duration="30s", factor="2", cap="5m"),
                ),
                active_deadline_seconds="600",
                labels={**labels, "resilient-templates.io/stage": name},
            )
        )
        tasks.append(Task(name=name, template=name, depends=f"stage-{i - 1}" if i else None))
    return WorkflowTemplate(
        name="bench",
        labels={**labels, "resilient-templates.io/pipeline": "bench"},
        entrypoint="main",
        service_account_name="resilient-pipeline",
        workflow_metadata=m.WorkflowMetadata(
            labels={**labels, "resilient-templates.io/pipeline": "bench"}
        ),
        templates=[DAG(name="main", tasks=tasks), *templates],
    ).to_dict()


def timed(fn, n: int) -> float:
    started = time.perf_counter()
    dump_documents([fn(n)], source="bench")
    return time.perf_counter() - started


def main() -> None:
    assert via_dsl(10) == via_hera(10), "the two sides must build the same manifest"
    timed(via_dsl, 10), timed(via_hera, 10)  # warm imports and caches
    rows = []
    for n, repeats in ((10, 31), (100, 9), (1000, 3)):
        dsl, hera = [], []
        for _ in range(repeats):
            dsl.append(timed(via_dsl, n))
            hera.append(timed(via_hera, n))
        d, h = statistics.median(dsl), statistics.median(hera)
        rows.append((n, d, h))
    print(f"{'N':>6} {'DSL ms':>10} {'Hera ms':>10} {'ratio':>7} {'DSL ms/stage':>13} {'Hera ms/stage':>14}")
    for n, d, h in rows:
        print(f"{n:>6} {d * 1e3:>10.1f} {h * 1e3:>10.1f} {d / h:>7.2f} {d * 1e3 / n:>13.3f} {h * 1e3 / n:>14.3f}")
    worst = max(d / h for _, d, h in rows)
    growth = (rows[-1][1] / rows[-1][0]) / (rows[1][1] / rows[1][0])
    print(f"worst ratio {worst:.2f} (goal <= 1.2: {'met' if worst <= 1.2 else 'MISSED'}); "
          f"DSL time per stage at N=1000 vs N=100: {growth:.2f}x (1.0 = linear)")
