"""The pure policy core: durations, retry schedules, breaker state, resources, taxonomy.

Stdlib only: no Hera, no pydantic, no I/O. The runtime imports it too.
"""

from .breaker import BreakerConfig, BreakerState, Circuit, Decision, Event, transition
from .deadline import check_fits
from .duration import Duration, DurationLike
from .resources import Quantity, Resources
from .retry import Backoff, Custom, Exponential, Fixed, Jitter, Linear, Retry, RetryOn
from .taxonomy import (
    EXIT_TIMEOUT,
    EXIT_TRANSIENT,
    Category,
    Hint,
    Severity,
    default_severity,
    format_hint,
    parse_hint,
)

__all__ = [
    "Backoff",
    "BreakerConfig",
    "BreakerState",
    "Category",
    "Circuit",
    "Custom",
    "Decision",
    "Duration",
    "DurationLike",
    "EXIT_TIMEOUT",
    "EXIT_TRANSIENT",
    "Event",
    "Exponential",
    "Fixed",
    "Hint",
    "Jitter",
    "Linear",
    "Quantity",
    "Resources",
    "Retry",
    "RetryOn",
    "Severity",
    "check_fits",
    "default_severity",
    "format_hint",
    "parse_hint",
    "transition",
]
