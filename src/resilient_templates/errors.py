"""Every error resilient-templates raises on purpose, grouped by how callers catch them.

* ResilientTemplatesError         - base; never raised directly
  x PolicyError                   - an impossible policy value (a pure-core check)
    + DurationError               - not a Go duration Argo accepts ("1d", "-5s", "abc")
    + QuantityError               - not a Kubernetes quantity, or request > limit
    + ScheduleError               - a retry schedule that cannot fit its deadline
  x ConfigError                   - a config file is wrong; knows file, key path, value, expectation
  x LoweringError                 - a valid policy Argo cannot express
    + UnsupportedFeatureError
  x ValidationError               - a generated manifest fails Argo's schema or a semantic check
  x RuntimeFailure                - the runtime could not do its job (analysis, notification)
    + StateStoreError             - the state store is locked, unreachable or corrupt
    + DeliveryError               - a notification channel refused or failed

User mistakes are reported as one line (``str(error)``), never as a traceback: the CLIs catch
``ResilientTemplatesError`` and print it. This module is stdlib-only; the runtime imports it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "DurationError",
    "LoweringError",
    "PolicyError",
    "QuantityError",
    "ResilientTemplatesError",
    "RuntimeFailure",
    "ScheduleError",
    "StateStoreError",
    "UnsupportedFeatureError",
    "ValidationError",
]


class ResilientTemplatesError(Exception):
    """Base class of every deliberate error; ``str()`` is a complete one-line message."""


class PolicyError(ResilientTemplatesError, ValueError):
    """A policy value is impossible (caught in the pure core, before any config context)."""


class DurationError(PolicyError):
    """A duration is not one Argo's Go parser (``time.ParseDuration``) accepts."""


class QuantityError(PolicyError):
    """A Kubernetes resource quantity is malformed or inconsistent."""


class ScheduleError(PolicyError):
    """A retry schedule cannot fit the deadline it must run within."""


class ConfigError(ResilientTemplatesError):
    """A configuration problem, located precisely.

    ``str(error)`` reads ``FILE: KEY.PATH: problem (got VALUE; expected EXPECTATION)``.
    Several problems found in one pass are kept in ``problems`` and printed one per line.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        key: str | None = None,
        value: object = None,
        expected: str | None = None,
        has_value: bool = False,
        problems: list[ConfigError] | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.key = key
        self.value = value
        self.expected = expected
        self.has_value = has_value or value is not None
        self.problems = problems or [self]
        super().__init__(self._render())

    def _render_one(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.key:
            parts.append(self.key)
        detail = []
        if self.has_value:
            detail.append(f"got {self.value!r}")
        if self.expected:
            detail.append(f"expected {self.expected}")
        suffix = f" ({'; '.join(detail)})" if detail else ""
        return ": ".join([*parts, self.problem]) + suffix

    def _render(self) -> str:
        if len(self.problems) > 1:
            return "\n".join(p._render_one() for p in self.problems)
        return self._render_one()


class LoweringError(ResilientTemplatesError):
    """A valid policy cannot be expressed in the Argo target."""


class UnsupportedFeatureError(LoweringError):
    """The requested feature has no Argo primitive and no documented emulation."""


class ValidationError(ResilientTemplatesError):
    """A manifest does not pass Argo's schema (patched strict) or a semantic check."""


class RuntimeFailure(ResilientTemplatesError):
    """The runtime could not complete; ``exit_code`` is the documented process exit code."""

    exit_code = 70  # EX_SOFTWARE


class StateStoreError(RuntimeFailure):
    """The state store is unreachable, locked past its timeout, or corrupt."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class DeliveryError(RuntimeFailure):
    """A notification could not be delivered (after retries)."""

    exit_code = 69  # EX_UNAVAILABLE
