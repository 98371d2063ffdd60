"""Retry → Argo ``retryStrategy`` (+ the wrapper's in-pod wait where Argo cannot express it).

Argo's own backoff waits ``duration × factor^(n-1)`` (capped) after attempt n fails, holds no
pod while waiting, and has an integer factor and no jitter (argo-semantics §1.5). So:

* Exponential without jitter and Fixed lower natively and exactly.
* Linear, Custom and jittered Exponential lower to a *native floor plus an in-pod remainder*:
  Argo waits the smallest delay of the schedule (``backoff.duration``, factor 1, pod-less),
  then the next attempt's wrapper sleeps the rest, keyed on ``{{retries}}``: a precomputed
  list (linear, custom) or a draw inside the delay's bounds (jitter; decorrelated jitter reads
  the previous delay back from ``{{lastRetry.message}}``). The realised delay equals the
  schedule's, like the native case, plus the next pod's start-up time in both cases.

  Why not unroll attempts into a DAG with suspend waits (holding no pod at all)? It is the
  better shape for classification-driven retry and breakers and is planned for them; for the
  schedule alone it multiplies nodes and YAML per stage, and `argo resume` of a workflow would
  end every retry wait early. Here the pod holds only the part above the floor (linear: n × the
  increment; a two-attempt linear schedule holds nothing).

* ``budget`` lowers to ``backoff.maxDuration`` (from the first attempt's start; a retry whose wait
  would overshoot it is not made), so a backoff block is emitted whenever a budget is set.

Which failures retry (``RetryOn``) becomes ``retryPolicy`` + ``expression``; Argo ANDs them, and
with an expression the policy is ``Always`` so the expression alone decides (§1.3–1.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hera.workflows import models as m

from ..policy import Duration, Exponential, Fixed, Jitter, Retry, RetryOn
from ..policy.taxonomy import EXIT_TRANSIENT, HINT_TRANSIENT

__all__ = ["RetryLowering", "lower_retry", "retry_lowering", "EXPRESSIONS", "POLICIES"]

POLICIES = {
    RetryOn.ANY: "Always",
    RetryOn.FAILED: "OnFailure",
    RetryOn.ERRORED: "OnError",
    RetryOn.TRANSIENT: "Always",
    RetryOn.SAFE: "Always",
}

#: ``lastRetry.exitCode`` is a string, "-1" when the main container never ran (§1.4).
EXPRESSIONS = {
    RetryOn.TRANSIENT: (
        "lastRetry.status == 'Error' || "
        f"lastRetry.exitCode == '{EXIT_TRANSIENT}' || "
        f"lastRetry.message contains '{HINT_TRANSIENT}'"
    ),
    RetryOn.SAFE: (
        "(lastRetry.status == 'Error' && lastRetry.exitCode == '-1') || "
        f"lastRetry.exitCode == '{EXIT_TRANSIENT}'"
    ),
}


@dataclass(frozen=True, slots=True)
class RetryLowering:
    """Everything a stage template needs from its Retry."""

    strategy: m.RetryStrategy | None
    env: dict[str, str] = field(default_factory=dict)  # RT_* variables for the wrapper's wait
    floor: Duration = field(default_factory=Duration.zero)  # waited by Argo, pod-less
    max_in_pod: Duration = field(default_factory=Duration.zero)  # longest wait inside the pod


def _seconds(d: Duration) -> int:
    return d.ceil_seconds()


def _in_pod_env(retry: Retry, floor: Duration) -> tuple[dict[str, str], Duration]:
    """The wrapper variables for the part of each delay above the native floor."""
    if retry.jitter is Jitter.NONE:
        sleeps = [d - floor for d in retry.schedule()]
        if not any(sleeps):
            return {}, Duration(0)
        env = {"RT_SLEEPS": " ".join(str(_seconds(s)) for s in sleeps)}
        return env, max(sleeps)
    backoff = retry.backoff
    assert isinstance(backoff, Exponential)
    env = {"RT_JITTER": retry.jitter.value}
    if retry.jitter is Jitter.DECORRELATED:
        env["RT_BASE"] = str(_seconds(backoff.base))
        if backoff.cap is not None:
            env["RT_CAP"] = str(_seconds(backoff.cap))
        env["RT_LAST_MESSAGE"] = "{{lastRetry.message}}"
    else:
        env["RT_BOUNDS"] = " ".join(f"{_seconds(lo)}:{_seconds(hi)}" for lo, hi in retry.bounds())
    highest = max(hi for _, hi in retry.bounds())
    return env, highest - floor


def retry_lowering(retry: Retry) -> RetryLowering:
    """Lower ``retry``; a single-attempt policy needs no retryStrategy at all."""
    if retry.max_attempts == 1:
        return RetryLowering(strategy=None)
    native = retry.is_native
    floor = retry.floor()
    backoff: m.Backoff | None = None
    env: dict[str, str] = {}
    max_in_pod = Duration(0)
    if native:
        b = retry.backoff
        if isinstance(b, Fixed):
            backoff = m.Backoff(duration=b.delay.to_go(), factor="1")
        else:
            assert isinstance(b, Exponential)
            backoff = m.Backoff(
                duration=b.base.to_go(),
                factor=str(b.factor),
                cap=b.cap.to_go() if b.cap is not None else None,
            )
    else:
        env, max_in_pod = _in_pod_env(retry, floor)
        if floor or retry.budget is not None:
            backoff = m.Backoff(duration=floor.to_go(), factor="1")
        if env:
            env = {"RT_FLOOR": str(_seconds(floor)), **env}
    if retry.budget is not None:
        assert backoff is not None
        backoff = backoff.model_copy(update={"max_duration": retry.budget.to_go()})
    env = {"RT_RETRIES": "{{retries}}", **env}
    strategy = m.RetryStrategy(
        limit=str(retry.limit),
        retry_policy=POLICIES[retry.retry_on],
        expression=EXPRESSIONS.get(retry.retry_on),
        backoff=backoff,
    )
    return RetryLowering(strategy=strategy, env=env, floor=floor, max_in_pod=max_in_pod)


def lower_retry(retry: Retry) -> m.RetryStrategy | None:
    """Just the ``retryStrategy`` of ``retry`` (None for a single attempt)."""
    return retry_lowering(retry).strategy
