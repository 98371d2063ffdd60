"""Retry policies lower to the Argo retryStrategy (and wrapper env) that reproduces them exactly."""

from __future__ import annotations

import pytest

from resilient_templates.lower import lower_retry, retry_lowering
from resilient_templates.policy import Custom, Exponential, Fixed, Linear, Retry, RetryOn


def dump(strategy):
    return strategy.model_dump(exclude_none=True, by_alias=True, mode="json")


def test_single_attempt_has_no_retry_strategy():
    """One attempt needs no retryStrategy (and no {{retries}} reference)."""
    lowering = retry_lowering(Retry(1))
    assert lowering.strategy is None and lowering.env == {}


def test_exponential_lowers_natively_with_explicit_string_limit():
    """limit = attempts - 1 as a string; integer factor as a string; cap and budget as Go durations."""
    strategy = lower_retry(Retry(3, Exponential("30s", cap="5m"), budget="35m"))
    assert dump(strategy) == {
        "limit": "2",
        "retryPolicy": "Always",
        "backoff": {"duration": "30s", "factor": "2", "cap": "5m", "maxDuration": "35m"},
    }


def test_fixed_lowers_to_factor_one():
    """A fixed delay is Argo's backoff with factor 1."""
    assert dump(lower_retry(Retry(2, Fixed("60s"))))["backoff"] == {"duration": "1m", "factor": "1"}


def test_linear_waits_floor_natively_and_the_rest_in_the_pod():
    """Linear 30s+30s: Argo waits 30s pod-less, the pod sleeps 0s, 30s, 60s on top."""
    lowering = retry_lowering(Retry(4, Linear("30s")))
    assert dump(lowering.strategy)["backoff"] == {"duration": "30s", "factor": "1"}
    assert lowering.env == {"RT_RETRIES": "{{retries}}", "RT_FLOOR": "30", "RT_SLEEPS": "0 30 60"}
    assert lowering.max_in_pod.seconds == 60


def test_two_attempt_linear_needs_no_in_pod_wait():
    """With a single retry, the whole linear delay is the pod-less floor."""
    lowering = retry_lowering(Retry(2, Linear("30s")))
    assert lowering.env == {"RT_RETRIES": "{{retries}}"} and lowering.max_in_pod.seconds == 0


def test_custom_schedule_floor_is_its_smallest_delay():
    """Custom [10s, 1m, 5s]: floor 5s natively, in-pod 5s, 55s, 0s."""
    lowering = retry_lowering(Retry(4, Custom(["10s", "1m", "5s"])))
    assert dump(lowering.strategy)["backoff"]["duration"] == "5s"
    assert lowering.env["RT_SLEEPS"] == "5 55 0"


@pytest.mark.parametrize(
    ("jitter", "env"),
    [
        ("full", {"RT_JITTER": "full", "RT_BOUNDS": "0:10 0:20 0:40"}),
        ("equal", {"RT_JITTER": "equal", "RT_BOUNDS": "5:10 10:20 20:40"}),
        ("decorrelated", {"RT_JITTER": "decorrelated", "RT_BASE": "10", "RT_CAP": "40",
                          "RT_LAST_MESSAGE": "{{lastRetry.message}}"}),
    ],
)  # fmt: skip
def test_jitter_is_drawn_in_the_pod_within_bounds(jitter, env):
    """Jittered delays are drawn by the wrapper inside the schedule's bounds, above the floor."""
    lowering = retry_lowering(Retry(4, Exponential("10s", cap="40s", jitter=jitter)))
    expected_floor = {"full": "0", "equal": "5", "decorrelated": "10"}[jitter]
    assert lowering.env == {"RT_RETRIES": "{{retries}}", "RT_FLOOR": expected_floor, **env}


def test_full_jitter_without_budget_emits_no_backoff_block():
    """A zero floor and no budget leave nothing for Argo to wait: no backoff block."""
    assert "backoff" not in dump(lower_retry(Retry(3, Exponential("10s", jitter="full"))))


@pytest.mark.parametrize(
    ("retry_on", "policy", "expression"),
    [
        (RetryOn.ANY, "Always", None),
        (RetryOn.FAILED, "OnFailure", None),
        (RetryOn.ERRORED, "OnError", None),
        (RetryOn.TRANSIENT, "Always",
         "lastRetry.status == 'Error' || lastRetry.exitCode == '75' || "
         "lastRetry.message contains 'rt:transient'"),
        (RetryOn.SAFE, "Always",
         "(lastRetry.status == 'Error' && lastRetry.exitCode == '-1') || lastRetry.exitCode == '75'"),
    ],
)  # fmt: skip
def test_retry_on_lowers_to_policy_and_expression(retry_on, policy, expression):
    """Each RetryOn choice becomes Argo's retryPolicy, plus an expression where a policy is not enough."""
    d = dump(lower_retry(Retry(2, Fixed("1s"), retry_on=retry_on)))
    assert d["retryPolicy"] == policy and d.get("expression") == expression
