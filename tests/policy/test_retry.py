"""Retry schedules are exact, bounded and never overflow; Argo's limit counts retries."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilient_templates.errors import PolicyError, ScheduleError
from resilient_templates.policy import (
    Custom, Duration, Exponential, Fixed, Jitter, Linear, Retry, RetryOn, check_fits,
)  # fmt: skip

S = Duration.parse


def secs(delays):
    return [d.seconds for d in delays]


def test_max_attempts_counts_the_first_attempt():
    """max_attempts=3 means two retries: Argo limit 2, two delays."""
    r = Retry(3, Exponential("30s"))
    assert r.limit == 2 and secs(r.schedule()) == [30, 60]


def test_spec_schedules():
    """The spec's five stage schedules come out exactly."""
    assert secs(Retry(3, Exponential("30s", cap="300s")).schedule()) == [30, 60]
    assert secs(Retry(4, Exponential("30s", cap="300s")).schedule()) == [30, 60, 120]
    assert secs(Retry(2, Fixed("60s")).schedule()) == [60]
    assert secs(Retry(3, Linear("30s")).schedule()) == [30, 60]
    assert secs(Retry(5, Custom(["10s", "1m", "5s", "2m"])).schedule()) == [10, 60, 5, 120]


def test_exponential_respects_cap():
    """Delays stop growing at the cap, as Argo's backoff.cap does."""
    assert secs(Retry(6, Exponential("10s", factor=2, cap="2m")).schedule()) == [10, 20, 40, 80, 120]


@pytest.mark.parametrize("factor", [1.5, "1.5", "2", True, 0])
def test_factor_must_be_a_positive_integer(factor):
    """Argo parses factor with Atoi: 1.5 and strings are refused at generation time."""
    with pytest.raises(PolicyError, match="factor must be"):
        Exponential("10s", factor=factor)


def test_custom_needs_one_delay_per_retry():
    """A custom list shorter or longer than the retries is an error, not silently padded."""
    with pytest.raises(PolicyError, match="lists 2 delays but 3 retries need one each"):
        Retry(4, Custom(["1s", "2s"]))


@pytest.mark.parametrize("attempts", [0, -1, 1.0, True])
def test_attempts_must_be_positive_integers(attempts):
    """max_attempts below 1 or non-integers are refused."""
    with pytest.raises(PolicyError, match="max_attempts"):
        Retry(attempts)


@given(
    base=st.integers(1, 3600),
    factor=st.integers(1, 10),
    cap=st.one_of(st.none(), st.integers(1, 86_400)),
    attempts=st.integers(1, 60),
)
def test_exponential_is_monotone_and_capped(base, factor, cap, attempts):
    """Exponential delays never decrease, never exceed the cap, and match base x factor^(n-1)."""
    if cap is not None and cap < base:
        cap = base
    if cap is None and base * 10**9 * factor ** (attempts - 2) > 2**63 - 1:
        with pytest.raises(PolicyError, match="uncapped exponential backoff: the delay before retry"):
            Retry(attempts, Exponential(base, factor=factor))
        return
    r = Retry(attempts, Exponential(base, factor=factor, cap=cap))
    delays = [d.nanoseconds for d in r.schedule()]
    assert len(delays) == attempts - 1
    assert delays == sorted(delays)
    for n, d in enumerate(delays, start=1):
        expected = base * 10**9 * factor ** (n - 1)
        assert d == (expected if cap is None else min(expected, cap * 10**9))


def test_huge_attempt_counts_do_not_overflow():
    """10,000 attempts with a cap compute instantly and stay at the cap."""
    r = Retry(10_000, Exponential("1s", factor=10, cap="1h"))
    assert r.schedule()[-1] == S("1h") and len(r.schedule()) == 9_999


@given(base=st.integers(1, 600), inc=st.integers(0, 600), attempts=st.integers(1, 50))
def test_linear_grows_by_the_increment(base, inc, attempts):
    """Linear delay n is base + (n-1) x increment."""
    delays = Retry(attempts, Linear(inc, base=base)).schedule()
    assert [d.seconds for d in delays] == [base + n * inc for n in range(attempts - 1)]


@given(
    jitter=st.sampled_from([Jitter.FULL, Jitter.EQUAL, Jitter.DECORRELATED]),
    base=st.integers(1, 120),
    cap=st.integers(120, 3600),
    attempts=st.integers(2, 12),
    seed=st.integers(0, 2**32),
)
def test_jittered_samples_stay_in_bounds(jitter, base, cap, attempts, seed):
    """Every sampled jittered delay lies inside its declared [low, high] bounds."""
    r = Retry(attempts, Exponential(base, cap=cap, jitter=jitter))
    sample = r.sample(random.Random(seed))
    for d, (lo, hi) in zip(sample, r.bounds(), strict=True):
        assert lo <= d <= hi
    assert r.schedule() == tuple(hi for _, hi in r.bounds())


def test_decorrelated_draws_depend_on_the_previous_delay():
    """Decorrelated jitter draws each delay in [base, min(cap, 3 x previous)]."""
    r = Retry(8, Exponential("10s", cap="10m", jitter="decorrelated"))
    prev = S("10s")
    for d in r.sample(random.Random(7)):
        assert S("10s") <= d <= min(S("10m"), prev * 3)
        prev = d


def test_native_only_without_jitter():
    """Exponential and fixed lower natively; jitter, linear and custom do not."""
    assert Retry(3, Exponential("1s")).is_native and Retry(3, Fixed("1s")).is_native
    assert not Retry(3, Exponential("1s", jitter="full")).is_native
    assert not Retry(3, Linear("1s")).is_native and not Retry(3, Custom(["1s", "2s"])).is_native


def test_schedule_longer_than_budget_is_refused():
    """A worst case above the stage budget is a ScheduleError that says what to change."""
    r = Retry(3, Exponential("30s"), attempt_timeout="10m", budget="20m")
    with pytest.raises(ScheduleError, match=r"needs up to 31m30s \(3 attempts x 10m \+ waits 1m30s\)"):
        check_fits(r)
    check_fits(Retry(3, Exponential("30s"), attempt_timeout="10m", budget="32m"))


def test_waits_alone_longer_than_budget_is_refused():
    """Without an attempt timeout the waits alone are checked against the budget."""
    with pytest.raises(ScheduleError, match="the waits alone take 3m"):
        check_fits(Retry(3, Fixed("90s"), budget="2m"))


def test_retry_on_values():
    """retry_on accepts the documented names only."""
    assert Retry(2, retry_on="safe").retry_on is RetryOn.SAFE
    with pytest.raises(PolicyError, match="retry_on must be one of any, failed"):
        Retry(2, retry_on="sometimes")
