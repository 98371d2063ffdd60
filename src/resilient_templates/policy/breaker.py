"""Circuit breaker: configuration and a pure state-transition function.

Semantics (resilience4j/pybreaker vocabulary, consecutive-failure counting):

* CLOSED: calls pass. Each failure increments ``failures``; a success resets it to 0.
  Reaching ``failure_threshold`` consecutive failures opens the circuit.
* OPEN: calls fail fast. Once ``recovery_timeout`` has passed since it opened, the next call
  moves it to HALF_OPEN.
* HALF_OPEN: at most ``half_open_max_probes`` calls are admitted as probes; others fail fast.
  Any probe failure reopens (the recovery clock restarts). ``half_open_max_probes`` successful
  probes close it.

``transition(config, state, event)`` is the whole behaviour: no clock, no I/O. Wiring the
breaker into Argo templates (a ConfigMap snapshot read by a pod-less gate) is a later step;
this module is the contract both sides share.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from ..errors import PolicyError
from .duration import Duration, DurationLike

__all__ = ["BreakerConfig", "BreakerState", "Circuit", "Event", "Decision", "transition"]


class Circuit(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Event(str, enum.Enum):
    REQUEST = "request"  # a call wants to run; the resulting Decision says whether it may
    SUCCESS = "success"  # an admitted call succeeded
    FAILURE = "failure"  # an admitted call failed (only failures that count, e.g. transient)


class Decision(str, enum.Enum):
    ALLOW = "allow"
    PROBE = "probe"  # allowed as a half-open probe
    REJECT = "reject"  # fail fast
    RECORDED = "recorded"  # outcome events


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5
    recovery_timeout: Duration = Duration.of(seconds=60)
    half_open_max_probes: int = 1

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: DurationLike = 60,
        half_open_max_probes: int = 1,
    ) -> None:
        for name, value in (
            ("failure_threshold", failure_threshold),
            ("half_open_max_probes", half_open_max_probes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PolicyError(f"breaker {name} must be an integer >= 1, got {value!r}")
        object.__setattr__(self, "failure_threshold", failure_threshold)
        object.__setattr__(self, "recovery_timeout", Duration.parse(recovery_timeout))
        object.__setattr__(self, "half_open_max_probes", half_open_max_probes)
        if not self.recovery_timeout:
            raise PolicyError("breaker recovery_timeout must be greater than 0s")


@dataclass(frozen=True, slots=True)
class BreakerState:
    """Everything the breaker remembers. ``now``/``opened_at`` are seconds since the epoch."""

    circuit: Circuit = Circuit.CLOSED
    failures: int = 0  # consecutive failures while closed
    opened_at: float | None = None
    probes_in_flight: int = 0
    probe_successes: int = 0


def transition(
    config: BreakerConfig, state: BreakerState, event: Event, now: float
) -> tuple[BreakerState, Decision]:
    """The next state and the decision for ``event`` happening at ``now``."""
    event = Event(event)
    if event is Event.REQUEST:
        return _on_request(config, state, now)
    if event is Event.SUCCESS:
        return _on_success(config, state), Decision.RECORDED
    return _on_failure(config, state, now), Decision.RECORDED


def _on_request(
    config: BreakerConfig, state: BreakerState, now: float
) -> tuple[BreakerState, Decision]:
    if state.circuit is Circuit.CLOSED:
        return state, Decision.ALLOW
    if state.circuit is Circuit.OPEN:
        assert state.opened_at is not None
        if now - state.opened_at < config.recovery_timeout.seconds:
            return state, Decision.REJECT
        state = BreakerState(Circuit.HALF_OPEN, opened_at=state.opened_at)
    if state.probes_in_flight + state.probe_successes >= config.half_open_max_probes:
        return state, Decision.REJECT
    return replace(state, probes_in_flight=state.probes_in_flight + 1), Decision.PROBE


def _on_success(config: BreakerConfig, state: BreakerState) -> BreakerState:
    if state.circuit is Circuit.CLOSED:
        return replace(state, failures=0)
    if state.circuit is Circuit.OPEN:
        return state  # a late success from before the trip does not close the circuit
    successes = state.probe_successes + 1
    if successes >= config.half_open_max_probes:
        return BreakerState()
    return replace(
        state, probes_in_flight=max(0, state.probes_in_flight - 1), probe_successes=successes
    )


def _on_failure(config: BreakerConfig, state: BreakerState, now: float) -> BreakerState:
    if state.circuit is Circuit.CLOSED:
        failures = state.failures + 1
        if failures >= config.failure_threshold:
            return BreakerState(Circuit.OPEN, failures=failures, opened_at=now)
        return replace(state, failures=failures)
    if state.circuit is Circuit.OPEN:
        return state  # late failure: already open, keep the original recovery clock
    return BreakerState(Circuit.OPEN, failures=state.failures, opened_at=now)
