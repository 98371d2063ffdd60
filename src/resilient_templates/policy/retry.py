"""Retry policies: how many attempts, how long between them, which failures qualify.

``max_attempts`` counts ALL attempts, the first included, and lowers to Argo's
``limit = max_attempts - 1`` (Argo's limit counts retries: argo-semantics §1.2).

Four backoff kinds. Argo's own backoff is ``duration × factor^(n-1)`` capped at ``cap``, counted
from the previous attempt's finish (§1.5), with an integer factor and no jitter. So:

=============  =========================================  ==============================
kind           delay before retry n (n = 1 .. limit)      Argo lowering
=============  =========================================  ==============================
Exponential    min(cap, base × factor^(n-1))              native backoff
  + jitter     drawn in [low_n, high_n] (see Jitter)      native floor + in-pod sleep
Linear         min(cap, base + (n-1) × increment)         native floor + in-pod sleep
Fixed          delay                                      native backoff (factor 1)
Custom         delays[n-1]                                native floor + in-pod sleep
=============  =========================================  ==============================

``schedule()`` returns the exact delays; ``bounds()`` the [low, high] interval of each delay
(equal unless jittered). ``sample(rng)`` draws one concrete jittered schedule.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Union

from ..errors import PolicyError
from .duration import MAX_GO_DURATION_NS, Duration, DurationLike

__all__ = [
    "Backoff",
    "Custom",
    "Exponential",
    "Fixed",
    "Jitter",
    "Linear",
    "Retry",
    "RetryOn",
    "DECORRELATED_MULTIPLIER",
]

#: AWS "Exponential Backoff and Jitter": sleep = min(cap, random(base, prev × 3)).
DECORRELATED_MULTIPLIER = 3


class Jitter(str, enum.Enum):
    """Randomisation of an exponential delay d_n (AWS Architecture Blog, Brooker 2015).

    NONE          exactly d_n
    FULL          uniform in [0, d_n]
    EQUAL         uniform in [d_n / 2, d_n]
    DECORRELATED  uniform in [base, min(cap, 3 × previous delay)], previous starting at base
    """

    NONE = "none"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"


class RetryOn(str, enum.Enum):
    """Which failed attempts may be retried.

    ANY        any failure: main container non-zero (Failed) or pod/executor Error. Argo ``Always``.
    FAILED     only main-container failures. Argo ``OnFailure``.
    ERRORED    only pod-level errors (never started, evicted, executor). Argo ``OnError``.
    TRANSIENT  pod errors, plus failures the stage or its wrapper declared transient
               (exit code 75, EX_TEMPFAIL, or an ``rt:transient`` termination hint).
    SAFE       only failures with no exit code from the command (an Error with exitCode -1: the
               pod never started, or was deleted/evicted mid-run), or the command's own exit 75
               ("nothing was done, try again"). For non-idempotent steps such as creating a pull
               request; a pod lost mid-run may still have acted, so the command should also be
               find-or-create (ours is).
    """

    ANY = "any"
    FAILED = "failed"
    ERRORED = "errored"
    TRANSIENT = "transient"
    SAFE = "safe"


def _d(value: DurationLike, what: str) -> Duration:
    try:
        return Duration.parse(value)
    except PolicyError as exc:
        raise type(exc)(f"{what}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Exponential:
    """``min(cap, base × factor^(n-1))``; factor is an integer because Argo parses it with Atoi."""

    base: Duration
    factor: int = 2
    cap: Duration | None = None
    jitter: Jitter = Jitter.NONE

    def __init__(
        self,
        base: DurationLike,
        factor: int = 2,
        cap: DurationLike | None = None,
        jitter: Jitter | str = Jitter.NONE,
    ) -> None:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise PolicyError(
                f"exponential factor must be an integer (Argo parses it with strconv.Atoi; "
                f"'1.5' fails at run time), got {factor!r}"
            )
        if factor < 1:
            raise PolicyError(f"exponential factor must be >= 1, got {factor}")
        object.__setattr__(self, "base", _d(base, "exponential base"))
        object.__setattr__(self, "factor", factor)
        object.__setattr__(self, "cap", None if cap is None else _d(cap, "exponential cap"))
        try:
            object.__setattr__(self, "jitter", Jitter(jitter))
        except ValueError:
            raise PolicyError(
                f"jitter must be one of none, full, equal, decorrelated, got {jitter!r}"
            ) from None
        if not self.base:
            raise PolicyError("exponential base must be greater than 0s")
        if self.cap is not None and self.cap < self.base:
            raise PolicyError(f"exponential cap {self.cap} is below its base {self.base}")

    def nominal(self, retries: int) -> tuple[Duration, ...]:
        out: list[Duration] = []
        ns = self.base.nanoseconds
        cap = self.cap.nanoseconds if self.cap is not None else None
        for n in range(1, retries + 1):
            value = ns if cap is None else min(ns, cap)
            if value > MAX_GO_DURATION_NS:
                raise PolicyError(
                    f"uncapped exponential backoff: the delay before retry {n} exceeds Go's "
                    "maximum duration (about 292 years); set a cap"
                )
            out.append(Duration(value))
            if cap is None or ns < cap:  # stop multiplying once capped: no overflow at n=10_000
                ns *= self.factor
        return tuple(out)

    def bounds(self, retries: int) -> tuple[tuple[Duration, Duration], ...]:
        nominal = self.nominal(retries)
        if self.jitter is Jitter.NONE:
            return tuple((d, d) for d in nominal)
        if self.jitter is Jitter.FULL:
            return tuple((Duration(0), d) for d in nominal)
        if self.jitter is Jitter.EQUAL:
            return tuple((Duration(d.nanoseconds // 2), d) for d in nominal)
        # decorrelated: high_n = min(cap, base × 3^n) is the largest value the chain can reach
        out, high = [], self.base.nanoseconds
        cap = self.cap.nanoseconds if self.cap is not None else None
        for _ in range(retries):
            high = high * DECORRELATED_MULTIPLIER if cap is None or high < cap else high
            out.append((self.base, Duration(high if cap is None else min(high, cap))))
        return tuple(out)

    def sample(self, retries: int, rng: random.Random) -> tuple[Duration, ...]:
        if self.jitter is not Jitter.DECORRELATED:
            return tuple(
                Duration(rng.randint(lo.nanoseconds, hi.nanoseconds))
                for lo, hi in self.bounds(retries)
            )
        out, prev = [], self.base.nanoseconds
        for _ in range(retries):
            high = prev * DECORRELATED_MULTIPLIER
            if self.cap is not None:
                high = min(high, self.cap.nanoseconds)
            prev = rng.randint(self.base.nanoseconds, max(high, self.base.nanoseconds))
            out.append(Duration(prev))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Linear:
    """``min(cap, base + (n-1) × increment)``; base defaults to the increment (30s, 60s, …)."""

    increment: Duration
    base: Duration
    cap: Duration | None = None

    def __init__(
        self,
        increment: DurationLike,
        base: DurationLike | None = None,
        cap: DurationLike | None = None,
    ) -> None:
        object.__setattr__(self, "increment", _d(increment, "linear increment"))
        object.__setattr__(
            self, "base", self.increment if base is None else _d(base, "linear base")
        )
        object.__setattr__(self, "cap", None if cap is None else _d(cap, "linear cap"))
        if not self.increment and not self.base:
            raise PolicyError("linear backoff needs a non-zero base or increment")
        if self.cap is not None and self.cap < self.base:
            raise PolicyError(f"linear cap {self.cap} is below its base {self.base}")

    def nominal(self, retries: int) -> tuple[Duration, ...]:
        out = []
        for n in range(retries):
            d = self.base + self.increment * n
            out.append(d if self.cap is None or d <= self.cap else self.cap)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Fixed:
    """The same delay before every retry."""

    delay: Duration

    def __init__(self, delay: DurationLike) -> None:
        object.__setattr__(self, "delay", _d(delay, "fixed delay"))

    def nominal(self, retries: int) -> tuple[Duration, ...]:
        return (self.delay,) * retries


@dataclass(frozen=True, slots=True)
class Custom:
    """An explicit delay before each retry: ``Custom(["10s", "1m", "5m"])``."""

    delays: tuple[Duration, ...]

    def __init__(self, delays: "list[DurationLike] | tuple[DurationLike, ...]") -> None:
        if isinstance(delays, (str, bytes)) or not delays:
            raise PolicyError("custom backoff needs a non-empty list of delays")
        object.__setattr__(
            self, "delays", tuple(_d(d, f"custom delay #{i + 1}") for i, d in enumerate(delays))
        )

    def nominal(self, retries: int) -> tuple[Duration, ...]:
        if retries != len(self.delays):
            raise PolicyError(
                f"custom backoff lists {len(self.delays)} delays but {retries} retries need one "
                f"each (max_attempts = {retries + 1})"
            )
        return self.delays


Backoff = Union[Exponential, Linear, Fixed, Custom]


@dataclass(frozen=True, slots=True)
class Retry:
    """Attempts, the wait between them, per-attempt and total time limits, and what qualifies.

    ``attempt_timeout`` bounds one attempt (Argo ``activeDeadlineSeconds``, per pod).
    ``budget`` bounds all attempts and waits, measured from the first attempt's start
    (Argo ``backoff.maxDuration``): a retry whose wait would overshoot it is not made.
    """

    max_attempts: int
    backoff: Backoff
    attempt_timeout: Duration | None = None
    budget: Duration | None = None
    retry_on: RetryOn = RetryOn.ANY
    _schedule: tuple[Duration, ...] = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        max_attempts: int,
        backoff: Backoff | None = None,
        *,
        attempt_timeout: DurationLike | None = None,
        budget: DurationLike | None = None,
        retry_on: RetryOn | str = RetryOn.ANY,
    ) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise PolicyError(f"max_attempts must be an integer, got {max_attempts!r}")
        if max_attempts < 1:
            raise PolicyError(
                f"max_attempts counts every attempt including the first, so it must be >= 1, "
                f"got {max_attempts}"
            )
        object.__setattr__(self, "max_attempts", max_attempts)
        object.__setattr__(self, "backoff", backoff if backoff is not None else Fixed(0))
        object.__setattr__(
            self,
            "attempt_timeout",
            None if attempt_timeout is None else _d(attempt_timeout, "attempt timeout"),
        )
        object.__setattr__(self, "budget", None if budget is None else _d(budget, "budget"))
        try:
            object.__setattr__(self, "retry_on", RetryOn(retry_on))
        except ValueError:
            choices = ", ".join(r.value for r in RetryOn)
            raise PolicyError(f"retry_on must be one of {choices}, got {retry_on!r}") from None
        if self.attempt_timeout is not None and not self.attempt_timeout:
            raise PolicyError("attempt timeout must be greater than 0s")
        if self.budget is not None and not self.budget:
            raise PolicyError("budget must be greater than 0s")
        object.__setattr__(self, "_schedule", self.backoff.nominal(self.limit))

    @classmethod
    def none(cls) -> Retry:
        """A single attempt: Argo ``limit: "0"``."""
        return cls(1)

    @property
    def limit(self) -> int:
        """Argo ``retryStrategy.limit``: retries, not attempts."""
        return self.max_attempts - 1

    @property
    def jitter(self) -> Jitter:
        return self.backoff.jitter if isinstance(self.backoff, Exponential) else Jitter.NONE

    def schedule(self) -> tuple[Duration, ...]:
        """The delay before retry 1, 2, … limit; for jittered backoff, each delay's ceiling."""
        if isinstance(self.backoff, Exponential) and self.backoff.jitter is not Jitter.NONE:
            return tuple(hi for _, hi in self.bounds())
        return self._schedule

    def bounds(self) -> tuple[tuple[Duration, Duration], ...]:
        """[low, high] of each delay; low == high unless jittered."""
        if isinstance(self.backoff, Exponential):
            return self.backoff.bounds(self.limit)
        return tuple((d, d) for d in self._schedule)

    def sample(self, rng: random.Random | None = None) -> tuple[Duration, ...]:
        """One concrete schedule; jittered backoffs draw from ``rng``."""
        if isinstance(self.backoff, Exponential) and self.backoff.jitter is not Jitter.NONE:
            return self.backoff.sample(self.limit, rng or random.Random())
        return self._schedule

    @property
    def is_native(self) -> bool:
        """True when Argo's own backoff produces exactly this schedule (no in-pod wait)."""
        if isinstance(self.backoff, Fixed):
            return True
        return isinstance(self.backoff, Exponential) and self.backoff.jitter is Jitter.NONE

    def floor(self) -> Duration:
        """The pod-less part of every wait: the smallest possible delay (lowered natively)."""
        lows = [lo for lo, _ in self.bounds()]
        return min(lows) if lows else Duration(0)

    def worst_case(self) -> Duration | None:
        """Longest possible stage time: every attempt hits its timeout, every wait its ceiling.

        None when attempts are unbounded (no attempt timeout).
        """
        if self.attempt_timeout is None:
            return None
        total = self.attempt_timeout * self.max_attempts
        for delay in self.schedule():
            total = total + delay
        return total

    def best_case(self) -> Duration:
        """Time until the last attempt starts if every attempt fails instantly (waits only)."""
        total = Duration(0)
        for lo, _ in self.bounds():
            total = total + lo
        return total
