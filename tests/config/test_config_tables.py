"""[retry.<stage>] and [resources.<stage>] tables <-> policy objects: round trip and merge rules."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from resilient_templates.config import (
    resources_from_table,
    resources_to_table,
    retry_from_table,
    retry_to_table,
)
from resilient_templates.errors import ConfigError, ScheduleError
from resilient_templates.policy import (
    Custom,
    Duration,
    Exponential,
    Fixed,
    Jitter,
    Linear,
    Resources,
    Retry,
    RetryOn,
    check_fits,
)

seconds = st.integers(min_value=1, max_value=3 * 3600).map(lambda s: Duration(s * 10**9))
millis = st.integers(min_value=1, max_value=10**7).map(lambda ms: Duration(ms * 10**6))
delay = st.one_of(seconds, millis)


@st.composite
def backoffs(draw: st.DrawFn, retries: int) -> object:
    kinds = ["exponential", "linear", "fixed"] + (["custom"] if retries else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "exponential":
        base = draw(delay)
        cap = draw(st.none() | delay.filter(lambda d: d >= base))
        return Exponential(
            base, draw(st.integers(1, 5)), cap, draw(st.sampled_from(list(Jitter)))
        )
    if kind == "linear":
        increment = draw(delay)
        base = draw(st.none() | delay)
        start = increment if base is None else base
        cap = draw(st.none() | delay.filter(lambda d: d >= start))
        return Linear(increment, base, cap)
    if kind == "fixed":
        return Fixed(draw(st.just(Duration(0)) | delay))
    return Custom(draw(st.lists(delay, min_size=retries, max_size=retries)))


@st.composite
def retries(draw: st.DrawFn) -> Retry:
    max_attempts = draw(st.integers(1, 8))
    backoff = draw(backoffs(max_attempts - 1))
    retry = Retry(
        max_attempts,
        backoff,
        attempt_timeout=draw(st.none() | seconds),
        budget=draw(st.none() | seconds),
        retry_on=draw(st.sampled_from(list(RetryOn))),
    )
    try:
        check_fits(retry)
    except ScheduleError:
        assume(False)
    return retry


@given(retries())
def test_retry_table_round_trips(retry: Retry) -> None:
    """Any valid Retry survives retry_to_table then retry_from_table unchanged."""
    assert retry_from_table(retry_to_table(retry), base=None) == retry


@given(retries())
def test_retry_table_overlay_of_itself_is_identity(retry: Retry) -> None:
    """Laying a retry's own table over it changes nothing."""
    assert retry_from_table(retry_to_table(retry), base=retry) == retry


@given(retries())
def test_empty_table_keeps_the_default(retry: Retry) -> None:
    """An empty [retry.<stage>] table is the stage default itself."""
    assert retry_from_table({}, base=retry) == retry


def test_retry_table_uses_go_duration_strings() -> None:
    """The table is what a user would write: Go strings, integer factor, no defaults spelt out."""
    retry = Retry(3, Exponential("30s", cap="300s"), attempt_timeout="600s", budget="1h")
    assert retry_to_table(retry) == {
        "max_attempts": 3,
        "backoff_type": "exponential",
        "base_duration": "30s",
        "factor": 2,
        "max_duration": "5m",
        "timeout": "10m",
        "budget": "1h",
        "retry_on": "any",
    }


def test_partial_table_overrides_only_its_keys() -> None:
    """max_attempts alone changes the attempts and keeps the default's backoff and timeouts."""
    default = Retry(3, Exponential("30s", cap="300s"), attempt_timeout="600s")
    assert retry_from_table({"max_attempts": 5}, base=default) == Retry(
        5, Exponential("30s", cap="300s"), attempt_timeout="600s"
    )


def test_switching_type_starts_a_new_backoff() -> None:
    """exponential -> fixed drops every backoff key of the default and keeps the common keys."""
    default = Retry(3, Exponential("30s", factor=3, cap="300s"), attempt_timeout="5m",
                    budget="1h", retry_on="safe")
    assert retry_from_table({"backoff_type": "fixed", "base_duration": "1m"}, base=default) == (
        Retry(3, Fixed("1m"), attempt_timeout="5m", budget="1h", retry_on="safe")
    )


def test_switching_type_does_not_carry_base_duration_over() -> None:
    """fixed 60s -> linear with increment 30s waits 30s, 60s (not 60s, 90s): base_duration
    meant the fixed delay, not a linear first delay."""
    default = Retry(3, Fixed("60s"))
    table = {"backoff_type": "linear", "increment": "30s"}
    assert retry_from_table(table, base=default).schedule() == (
        Duration.parse("30s"),
        Duration.parse("60s"),
    )


def test_switching_type_requires_the_new_types_key() -> None:
    """exponential -> fixed without base_duration is incomplete, not silently 'the old base'."""
    default = Retry(3, Exponential("30s"))
    with pytest.raises(ConfigError) as caught:
        retry_from_table({"backoff_type": "fixed"}, base=default, where="retry.x")
    assert str(caught.value) == (
        "retry.x.base_duration: missing key 'base_duration': fixed backoff needs it "
        "(expected a Go duration such as '30s')"
    )


def test_switching_to_custom_needs_only_the_delays() -> None:
    """exponential -> custom keeps no backoff key of the default."""
    default = Retry(3, Exponential("30s", cap="300s"), attempt_timeout="10m")
    table = {"backoff_type": "custom", "delays": ["10s", "1m"]}
    assert retry_from_table(table, base=default) == Retry(
        3, Custom(["10s", "1m"]), attempt_timeout="10m"
    )


def test_linear_base_follows_the_increment_unless_given() -> None:
    """A linear default whose base is its increment keeps following a new increment."""
    default = Retry(2, Linear("30s"))
    assert retry_from_table({"increment": "10s"}, base=default) == Retry(2, Linear("10s"))


def test_integer_durations_are_seconds() -> None:
    """As in Argo, a bare integer duration counts seconds."""
    table = {"max_attempts": 2, "backoff_type": "fixed", "base_duration": 90, "timeout": 600}
    assert retry_from_table(table) == Retry(2, Fixed("90s"), attempt_timeout="10m")


def test_resources_table_round_trips() -> None:
    """Quantities keep their spelling through a round trip."""
    resources = Resources(cpu_request="200m", cpu_limit="1", memory_request="512Mi",
                          memory_limit="2Gi", ephemeral_storage_request="1Gi",
                          ephemeral_storage_limit="4Gi")
    assert resources_from_table(resources_to_table(resources)) == resources


def test_resources_table_overrides_the_default_key_by_key() -> None:
    """A table setting only the memory limit keeps the default's other values."""
    default = Resources(cpu_request="200m", memory_request="512Mi", memory_limit="1Gi")
    merged = resources_from_table({"memory_limit": "2Gi"}, base=default)
    assert resources_to_table(merged) == {
        "cpu_request": "200m",
        "memory_request": "512Mi",
        "memory_limit": "2Gi",
    }


def test_numeric_cpu_is_accepted() -> None:
    """TOML numbers are quantities too: cpu_limit = 0.5."""
    assert resources_from_table({"cpu_limit": 0.5}).limits() == {"cpu": "0.5"}
