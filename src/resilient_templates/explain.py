"""``resilient-templates explain [STAGE...]``: the retry timeline Argo will run, stage by stage.

For each stage: attempts and Argo ``limit``, which failures retry, the backoff and how it is
lowered (pod-less Argo wait vs in-pod wait), per-attempt and total deadlines, then the timeline:
when attempt k starts if every attempt fails at once (waits only) and in the worst case (every
attempt runs to its timeout), and whether the worst case fits the stage budget. Schedules that
cannot fit are refused when the config loads, so ``explain`` never prints an impossible one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .dsl import Pipeline, Stage
from .errors import ConfigError
from .policy import Duration, Exponential, Fixed, Jitter, Linear, Retry, RetryOn

__all__ = ["describe_backoff", "explain_pipeline", "explain_stage", "run"]

_RETRY_ON = {
    RetryOn.ANY: "any failure (retryPolicy Always)",
    RetryOn.FAILED: "main-container failures only (retryPolicy OnFailure)",
    RetryOn.ERRORED: "pod errors only (retryPolicy OnError)",
    RetryOn.TRANSIENT: "pod errors and failures marked transient (exit 75 or rt:transient hint)",
    RetryOn.SAFE: "only failures proven side-effect free (pod never ran, or exit 75)",
}


def describe_backoff(retry: Retry) -> str:
    b = retry.backoff
    if isinstance(b, Exponential):
        text = f"exponential: {b.base} x {b.factor}^(n-1)"
        if b.cap is not None:
            text += f", capped at {b.cap}"
        if b.jitter is not Jitter.NONE:
            text += f", {b.jitter.value} jitter"
    elif isinstance(b, Linear):
        text = f"linear: {b.base} + (n-1) x {b.increment}"
        if b.cap is not None:
            text += f", capped at {b.cap}"
    elif isinstance(b, Fixed):
        text = f"fixed: {b.delay}"
    else:
        text = "custom: " + ", ".join(str(d) for d in b.delays)
    how = "native Argo backoff" if retry.is_native else "Argo waits the floor, the pod the rest"
    return f"{text}   [{how}]"


def _span(lo: Duration, hi: Duration) -> str:
    return str(lo) if lo == hi else f"{lo}..{hi}"


def explain_stage(stage: Stage) -> list[str]:
    from .lower.retry import retry_lowering
    from .lower.stage import soft_deadline

    retry = stage.retry
    lowering = retry_lowering(retry)
    lines = [f"stage {stage.name}  (template {stage.template_name})"]
    limit = f'limit "{retry.limit}"' if lowering.strategy is not None else "no retryStrategy"
    lines.append(f"  attempts   {retry.max_attempts} ({limit})")
    if retry.max_attempts > 1:
        lines.append(f"  retry on   {_RETRY_ON[retry.retry_on]}")
        lines.append(f"  backoff    {describe_backoff(retry)}")
    if retry.attempt_timeout is not None:
        stop, _ = soft_deadline(retry.attempt_timeout)
        deadline = (retry.attempt_timeout + lowering.max_in_pod).ceil_seconds()
        lines.append(
            f"  attempt    timeout {retry.attempt_timeout} (activeDeadlineSeconds {deadline}; "
            f"the wrapper stops the command after {Duration.parse(stop)})"
        )
    else:
        lines.append("  attempt    no timeout: an attempt may run until the workflow deadline")
    if retry.budget is not None:
        lines.append(f"  budget     {retry.budget} (backoff.maxDuration, from the first attempt's start)")
    lines.append(
        "  timeline   (a wait starts when the previous attempt ends; 'starts at' assumes every"
        " attempt fails at once, 'worst case' that each runs to its timeout)"
    )
    timeout = retry.attempt_timeout
    best, longest, worst = Duration(0), Duration(0), Duration(0)
    lines.append("    attempt 1  starts at +0s")
    for n, (lo, hi) in enumerate(retry.bounds(), start=1):
        floor = lowering.floor
        if retry.is_native or hi <= floor:
            where = "Argo, pod-less"
        elif floor:
            where = f"Argo {floor} pod-less, then the pod"
        else:
            where = "in the pod"
        lines.append(f"    retry {n}    waits {_span(lo, hi)} ({where})")
        best, longest = best + lo, longest + hi
        start = "+" + _span(best, longest).replace("..", "..+")
        if timeout is not None:
            worst = worst + timeout + hi
            lines.append(f"    attempt {n + 1}  starts at {start}   worst case +{worst}")
        else:
            lines.append(f"    attempt {n + 1}  starts at {start}")
    total = retry.worst_case()
    if total is not None:
        verdict = ""
        if retry.budget is not None:
            verdict = f"; fits the {retry.budget} budget"
        lines.append(f"  worst case {total} (every attempt times out, every wait its longest){verdict}")
    return lines


def explain_pipeline(pipeline: Pipeline, names: Sequence[str] = ()) -> list[str]:
    known = [s.name for s in pipeline.stages]
    for name in names:
        if name not in known:
            raise ConfigError(
                f"unknown stage {name!r}", expected="one of " + ", ".join(known)
            )
    lines: list[str] = []
    for stage in pipeline.stages:
        if names and stage.name not in names:
            continue
        lines += [*explain_stage(stage), ""]
    if not names:
        worst = [s.retry.worst_case() for s in pipeline.stages]
        if all(w is not None for w in worst):
            total = Duration(0)
            for w in worst:
                total = total + w
            gate = pipeline.gate.timeout if pipeline.gate else Duration(0)
            line = f"pipeline {pipeline.name}: stages worst case {total}"
            if pipeline.gate:
                line += f" + approval wait up to {gate}"
            if pipeline.deadline is not None:
                line += f"; workflow deadline {pipeline.deadline}"
                if total + gate > pipeline.deadline:
                    line += " (WARNING: the deadline can cut the last stages' retries short)"
            lines.append(line)
    return lines


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="resilient-templates explain", description=__doc__.split("\n")[0])
    parser.add_argument("stages", nargs="*", help="stage names (default: all)")
    parser.add_argument("--config", default="stages/resilient.toml")
    parser.add_argument("--env", help="environment overlay")
    args = parser.parse_args(argv[1:])
    from resilient_templates.stages import STAGES
    from resilient_templates.stages.pipeline import build_pipeline

    from .config import load_config

    config = load_config(args.config, env=args.env, stages={s.name: s.retry for s in STAGES})
    print("\n".join(explain_pipeline(build_pipeline(config), args.stages)))
    return 0
