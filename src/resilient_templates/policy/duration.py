"""Durations exactly as Argo parses them.

Argo reads ``backoff.duration``, ``maxDuration``, ``cap`` and ``suspend.duration`` with
``ParseStringToDuration`` (a bare integer is seconds, anything else goes to Go's
``time.ParseDuration``), and ``memoize.maxAge`` / ``timeout`` with ``time.ParseDuration`` alone
(argo-semantics §1.5, §5, §6.1). Go knows the units ns, us (µs, μs), ms, s, m and h: there is
no ``d``, so ``"1d"`` is refused here, at generation time, rather than by the controller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from typing import Union

from ..errors import DurationError

__all__ = ["Duration", "DurationLike", "MAX_GO_DURATION_NS"]

DurationLike = Union["Duration", int, str, timedelta]

#: Go's time.Duration is an int64 of nanoseconds (~292 years).
MAX_GO_DURATION_NS = 2**63 - 1

_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_COMPONENT = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_SUGGEST = {"d": "24h per day", "w": "168h per week", "y": "8760h per year"}


def _parse_go(text: str) -> int:
    """Nanoseconds of ``text`` per Go's ``time.ParseDuration`` (no sign allowed here)."""
    if text == "0":
        return 0
    if text.startswith(("-", "+")):
        raise DurationError(f"duration {text!r} must not be signed (expected e.g. '30s', '1h30m')")
    pos, total = 0, Fraction(0)
    while pos < len(text):
        match = _COMPONENT.match(text, pos)
        if match is None:
            rest = text[pos:]
            unit = re.match(r"[0-9.]*([a-zA-Z]+)", rest)
            if unit and unit.group(1) in _SUGGEST:
                raise DurationError(
                    f"duration {text!r} uses unit {unit.group(1)!r}, which Argo's Go parser does "
                    f"not accept (use {_SUGGEST[unit.group(1)]}, e.g. '24h')"
                )
            raise DurationError(
                f"duration {text!r} is not a Go duration "
                "(expected a number and a unit ns/us/ms/s/m/h, e.g. '500ms', '30s', '1h30m')"
            )
        total += Fraction(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if total.denominator != 1 and total != int(total):
        # Go truncates sub-nanosecond fractions; we refuse them rather than round silently.
        raise DurationError(f"duration {text!r} is finer than a nanosecond")
    return int(total)


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    """A non-negative span of time, stored as integer nanoseconds.

    ``Duration.parse("1h30m")``, ``Duration.parse(90)`` (seconds, as Argo reads a bare integer)
    and ``Duration.parse(timedelta(minutes=1))`` all work; ``str(d)`` renders the shortest Go
    string (``"1h30m"``, ``"500ms"``) that Argo parses back to the same value.
    """

    nanoseconds: int

    def __post_init__(self) -> None:
        if not isinstance(self.nanoseconds, int) or isinstance(self.nanoseconds, bool):
            raise DurationError(f"duration must be whole nanoseconds, got {self.nanoseconds!r}")
        if self.nanoseconds < 0:
            raise DurationError(f"duration must not be negative, got {self.nanoseconds}ns")
        if self.nanoseconds > MAX_GO_DURATION_NS:
            raise DurationError("duration exceeds Go's maximum (about 292 years)")

    @classmethod
    def parse(cls, value: DurationLike) -> Duration:
        """Accept a Go duration string, an int of seconds, a ``timedelta`` or a Duration."""
        if isinstance(value, Duration):
            return value
        if isinstance(value, bool):
            raise DurationError(f"duration must be a string or seconds, got {value!r}")
        if isinstance(value, int):
            if value < 0:
                raise DurationError(f"duration must not be negative, got {value}")
            return cls(value * 1_000_000_000)
        if isinstance(value, timedelta):
            micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
            return cls(micros * 1_000)
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"[0-9]+", text):
                return cls(int(text) * 1_000_000_000)  # Argo: bare integer = seconds
            if not text:
                raise DurationError("duration must not be empty (expected e.g. '30s')")
            return cls(_parse_go(text))
        raise DurationError(f"duration must be a string or seconds, got {type(value).__name__}")

    @classmethod
    def of(cls, *, hours: int = 0, minutes: int = 0, seconds: int = 0, ms: int = 0) -> Duration:
        return cls(((hours * 60 + minutes) * 60 + seconds) * 1_000_000_000 + ms * 1_000_000)

    @property
    def seconds(self) -> float:
        return self.nanoseconds / 1_000_000_000

    @property
    def whole_seconds(self) -> int:
        """Seconds, for fields typed as integers (``activeDeadlineSeconds``); must be exact."""
        seconds, rest = divmod(self.nanoseconds, 1_000_000_000)
        if rest:
            raise DurationError(f"{self} is not a whole number of seconds")
        return seconds

    def ceil_seconds(self) -> int:
        return -(-self.nanoseconds // 1_000_000_000)

    def to_go(self) -> str:
        """The shortest Go duration string for this value ("0s", "90ms", "1h30m", "2m3.5s")."""
        ns = self.nanoseconds
        if ns == 0:
            return "0s"
        hours, ns = divmod(ns, _UNIT_NS["h"])
        minutes, ns = divmod(ns, _UNIT_NS["m"])
        out = ""
        if hours:
            out += f"{hours}h"
        if minutes:
            out += f"{minutes}m"
        if ns:
            if ns % 1_000_000_000 == 0:
                out += f"{ns // 1_000_000_000}s"
            elif not hours and not minutes and ns < 1_000_000_000:
                for unit in ("ms", "us", "ns"):
                    if ns % _UNIT_NS[unit] == 0:
                        out += f"{ns // _UNIT_NS[unit]}{unit}"
                        break
            else:
                whole, frac = divmod(ns, 1_000_000_000)
                out += f"{whole}.{frac:09d}".rstrip("0") + "s"
        return out

    def __str__(self) -> str:
        return self.to_go()

    def __repr__(self) -> str:
        return f"Duration({self.to_go()!r})"

    def __add__(self, other: Duration) -> Duration:
        return Duration(self.nanoseconds + Duration.parse(other).nanoseconds)

    def __sub__(self, other: Duration) -> Duration:
        return Duration(self.nanoseconds - Duration.parse(other).nanoseconds)

    def __mul__(self, factor: int) -> Duration:
        if not isinstance(factor, int):
            raise TypeError("durations multiply by integers only")
        return Duration(self.nanoseconds * factor)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return self.nanoseconds != 0

    @classmethod
    def zero(cls) -> Duration:
        return cls(0)
