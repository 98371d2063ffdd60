"""The circuit breaker's pure transitions: closed -> open -> half-open -> closed/open."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from resilient_templates.policy import BreakerConfig, BreakerState, Circuit, Decision, Event, transition

CFG = BreakerConfig(failure_threshold=3, recovery_timeout="60s", half_open_max_probes=2)


def run(events, cfg=CFG, start=0.0):
    state, now, decisions = BreakerState(), start, []
    for event, dt in events:
        now += dt
        state, decision = transition(cfg, state, event, now)
        decisions.append(decision)
    return state, decisions


def test_opens_after_threshold_consecutive_failures():
    """Three consecutive failures open the circuit; the next request fails fast."""
    state, decisions = run([(Event.FAILURE, 1)] * 3 + [(Event.REQUEST, 1)])
    assert state.circuit is Circuit.OPEN and decisions[-1] is Decision.REJECT


def test_success_resets_the_failure_count():
    """A success in between means the failures were not consecutive."""
    state, _ = run([(Event.FAILURE, 1), (Event.FAILURE, 1), (Event.SUCCESS, 1), (Event.FAILURE, 1)])
    assert state.circuit is Circuit.CLOSED and state.failures == 1


def test_half_open_after_recovery_timeout_admits_limited_probes():
    """After the recovery timeout, two probes are admitted and a third request is rejected."""
    _, decisions = run([(Event.FAILURE, 0)] * 3 + [(Event.REQUEST, 60), (Event.REQUEST, 0), (Event.REQUEST, 0)])
    assert decisions[-3:] == [Decision.PROBE, Decision.PROBE, Decision.REJECT]


def test_probe_successes_close_and_a_probe_failure_reopens():
    """Enough probe successes close the circuit; one probe failure reopens it with a fresh clock."""
    base = [(Event.FAILURE, 0)] * 3 + [(Event.REQUEST, 60), (Event.REQUEST, 0)]
    closed, _ = run(base + [(Event.SUCCESS, 1), (Event.SUCCESS, 1)])
    assert closed == BreakerState()
    reopened, _ = run(base + [(Event.SUCCESS, 1), (Event.FAILURE, 1)])
    assert reopened.circuit is Circuit.OPEN and reopened.opened_at == 62


events = st.lists(
    st.tuples(st.sampled_from(list(Event)), st.floats(min_value=0, max_value=120)), max_size=60
)


@settings(max_examples=300)
@given(events)
def test_invariants_hold_for_any_event_sequence(seq):
    """Whatever happens: requests are rejected only when open/saturated; counters stay in range."""
    state, now = BreakerState(), 0.0
    for event, dt in seq:
        now += dt
        before = state
        state, decision = transition(CFG, state, event, now)
        assert 0 <= state.probes_in_flight <= CFG.half_open_max_probes
        assert state.probe_successes < CFG.half_open_max_probes
        if decision is Decision.ALLOW:
            assert before.circuit is Circuit.CLOSED
        if decision is Decision.REJECT:
            assert before.circuit is not Circuit.CLOSED
        if state.circuit is Circuit.OPEN:
            assert state.opened_at is not None
        if state.circuit is Circuit.CLOSED:
            assert state.failures < CFG.failure_threshold


@given(st.integers(1, 20))
def test_never_opens_below_threshold(threshold):
    """threshold-1 consecutive failures never open the circuit."""
    cfg = BreakerConfig(failure_threshold=threshold)
    state, _ = run([(Event.FAILURE, 1)] * (threshold - 1), cfg)
    assert state.circuit is Circuit.CLOSED
