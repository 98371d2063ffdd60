"""TOML tables <-> policy objects: ``[retry.<stage>]`` to ``Retry``, ``[resources.<stage>]`` to
``Resources``, with the rules that span keys.

A table is a PARTIAL override of the stage's default: start from the default's fields, lay the
table over them. When the table changes ``backoff_type``, it starts a new backoff: the default's
backoff keys are all dropped and only max_attempts, timeout, budget and retry_on carry over.
(``base_duration`` means the exponential base, the fixed delay or the linear first delay, so
carrying a fixed 60s into ``backoff_type = "linear"``, ``increment = "30s"`` would give 60s,
90s where the file reads as 30s, 60s.) A key the chosen type does not use (``increment`` with
exponential) is an error, never silently ignored. Every retry is checked with
``policy.check_fits``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from ..errors import ConfigError, PolicyError, QuantityError, ScheduleError
from ..policy import (
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
from .models import BACKOFF_KEYS, BACKOFF_TYPES, COMMON_RETRY_KEYS, ResourcesTable, RetryTable
from .problems import from_pydantic, raise_all

__all__ = [
    "resources_from_table",
    "resources_to_table",
    "retry_from_table",
    "retry_to_table",
]

#: Full key path of a key in the table being built (it may come from an env overlay).
KeyOf = Callable[[str], str]

_REQUIRED = {
    "exponential": "base_duration",
    "linear": "increment",
    "fixed": "base_duration",
    "custom": "delays",
}
_EXPECTED_REQUIRED = {
    "base_duration": "a Go duration such as '30s'",
    "increment": "a Go duration such as '30s'",
    "delays": "an array of Go durations, one per retry, such as ['10s', '1m']",
}
_RESOURCE_KINDS = ("cpu", "memory", "ephemeral_storage")


# --- Retry ----------------------------------------------------------------------------------


def _retry_fields(retry: Retry) -> dict[str, Any]:
    """A Retry as validated table values (Durations, ints, strings), in table key order."""
    fields: dict[str, Any] = {"max_attempts": retry.max_attempts}
    backoff = retry.backoff
    if isinstance(backoff, Exponential):
        fields |= {"backoff_type": "exponential", "base_duration": backoff.base}
        fields["factor"] = backoff.factor
        if backoff.cap is not None:
            fields["max_duration"] = backoff.cap
        if backoff.jitter is not Jitter.NONE:
            fields["jitter"] = backoff.jitter.value
    elif isinstance(backoff, Linear):
        fields["backoff_type"] = "linear"
        if backoff.base != backoff.increment:
            fields["base_duration"] = backoff.base
        if backoff.cap is not None:
            fields["max_duration"] = backoff.cap
        fields["increment"] = backoff.increment
    elif isinstance(backoff, Fixed):
        fields |= {"backoff_type": "fixed", "base_duration": backoff.delay}
    elif isinstance(backoff, Custom):
        fields |= {"backoff_type": "custom", "delays": list(backoff.delays)}
    else:  # pragma: no cover - Backoff is a closed union
        raise TypeError(f"unknown backoff {backoff!r}")
    if retry.attempt_timeout is not None:
        fields["timeout"] = retry.attempt_timeout
    if retry.budget is not None:
        fields["budget"] = retry.budget
    fields["retry_on"] = retry.retry_on.value
    return fields


def _to_toml(value: Any) -> Any:
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, list):
        return [_to_toml(v) for v in value]
    return value


def retry_to_table(retry: Retry) -> dict[str, Any]:
    """The ``[retry.<stage>]`` table that describes ``retry`` exactly (durations as Go strings)."""
    return {key: _to_toml(value) for key, value in _retry_fields(retry).items()}


def retry_from_table(
    table: Mapping[str, Any],
    *,
    base: Retry | None = None,
    where: str = "retry",
    file: str | None = None,
) -> Retry:
    """Build a Retry from a TOML table laid over ``base`` (None: the table must be complete).

    ``where`` is the table's key path (``retry.repository_clone``) used in error messages.
    Raises ConfigError listing every problem found.
    """
    given = _validate(RetryTable, table, where=where, file=file)
    problems: list[ConfigError] = []
    retry = build_retry(
        given, dict(table), base=base, key_of=lambda k: f"{where}.{k}", file=file,
        problems=problems,
    )
    raise_all(problems)
    assert retry is not None
    return retry


def _validate(model: Any, table: Mapping[str, Any], *, where: str, file: str | None) -> dict:
    if not isinstance(table, Mapping):
        raise ConfigError(
            "must be a table", file=file, key=where, value=table, expected="a table",
            has_value=True,
        )
    try:
        return model.model_validate(dict(table)).given()
    except PydanticValidationError as exc:
        problems = from_pydantic(
            exc, file=file, prefix=where, model_for=lambda loc: None if loc else model
        )
        raise_all(problems)
        raise  # pragma: no cover - raise_all raised


def _blame(keys: tuple[str, ...], latest: Collection[str], given: Collection[str]) -> str:
    """The key to name for a conflict: one the overlay wrote, else one the file wrote."""
    for written in (latest, given):
        for key in keys:
            if key in written:
                return key
    return keys[0]


def _owners(key: str) -> str:
    owners = [kind for kind in BACKOFF_TYPES if key in BACKOFF_KEYS[kind]]
    if len(owners) == 1:
        article = "an" if owners[0][0] in "aeiou" else "a"
        return f"{article} {owners[0]} key"
    return "a key of " + ", ".join(owners[:-1]) + f" or {owners[-1]} backoff"


def build_retry(
    given: dict[str, Any],
    raw: dict[str, Any],
    *,
    base: Retry | None,
    key_of: KeyOf,
    file: str | None,
    problems: list[ConfigError],
    lenient: bool = False,
    latest: Collection[str] = (),
) -> Retry | None:
    """Lay validated ``given`` keys over ``base``; append problems; None when not buildable.

    ``raw`` holds the values as written (for messages). ``lenient`` (no default known) skips
    the checks that need the stage's default when the table alone does not say enough.
    ``latest`` are the keys the env overlay wrote: a conflict is blamed on them first.
    """

    def problem(key: str, text: str, expected: str | None, *, value: Any = _MISSING) -> None:
        if value is _MISSING:
            value = raw.get(key, _to_toml(merged.get(key)))
        problems.append(
            ConfigError(
                text, file=file, key=key_of(key), value=value, expected=expected,
                has_value=value is not None,
            )
        )

    def blame(*keys: str) -> str:
        return _blame(keys, latest, given)

    merged = _retry_fields(base) if base is not None else {}
    old_type = merged.get("backoff_type")
    kind = given.get("backoff_type", old_type)
    before = len(problems)
    if kind is not None:
        allowed = set(COMMON_RETRY_KEYS) | set(BACKOFF_KEYS[kind])
        for key in given:
            if key not in allowed:
                problem(
                    key,
                    f"{key!r} does not apply to backoff_type {kind!r} (it is {_owners(key)})",
                    f"one of the keys {kind} backoff takes: "
                    + ", ".join(k for k in RetryTable.model_fields if k in allowed),
                )
    if kind != old_type and old_type is not None:
        # A new type starts a new backoff: base_duration means a different thing per type.
        merged = {k: v for k, v in merged.items() if k in COMMON_RETRY_KEYS}
    merged.update(given)

    if lenient and any(
        key not in given for key in ("max_attempts", "backoff_type", _REQUIRED.get(kind, ""))
    ):
        return None  # the stage's default would fill the gaps; retry_for() checks it later
    for key in ("max_attempts", "backoff_type"):
        if key not in merged:
            problem(key, f"missing key {key!r} (the stage has no default to inherit it from)",
                    _EXPECTED_MISSING[key], value=None)
    if kind is not None and _REQUIRED[kind] not in merged:
        need = _REQUIRED[kind]
        problem(need, f"missing key {need!r}: {kind} backoff needs it", _EXPECTED_REQUIRED[need],
                value=None)
    if len(problems) > before:
        return None

    if lenient and kind == "linear" and "base_duration" not in given:
        return None  # the default's base_duration decides the schedule; retry_for() checks it
    backoff = _build_backoff(kind, merged, problem, blame)
    if backoff is None:
        return None
    try:
        retry = Retry(
            merged["max_attempts"],
            backoff,
            attempt_timeout=merged.get("timeout"),
            budget=merged.get("budget"),
            retry_on=RetryOn(merged.get("retry_on", RetryOn.ANY)),
        )
    except PolicyError as exc:  # pragma: no cover - every rule is checked above
        problem(blame("max_attempts"), str(exc), None)
        return None
    try:
        check_fits(retry, where="@")
    except ScheduleError as exc:
        waits = sum((d.nanoseconds for d in retry.schedule()), 0)
        needed = retry.worst_case() or Duration(waits)
        problem(
            blame("budget", "timeout", "max_attempts", *BACKOFF_KEYS[kind]),
            "schedule longer than its budget: " + str(exc).removeprefix("@: "),
            f"a budget of at least {needed}",
        )
        return None
    return retry


_MISSING = object()
_EXPECTED_MISSING = {
    "max_attempts": "an integer >= 1 counting every attempt, e.g. 3",
    "backoff_type": "one of " + ", ".join(repr(t) for t in BACKOFF_TYPES),
}


def _build_backoff(
    kind: str,
    merged: dict[str, Any],
    problem: Callable[..., None],
    blame: Callable[..., str],
) -> Any:
    cap = merged.get("max_duration")
    if kind == "exponential":
        base = merged["base_duration"]
        if not base:
            problem("base_duration", "exponential backoff needs a base above 0s",
                    "a positive Go duration such as '30s'")
            return None
        if cap is not None and cap < base:
            problem(blame("max_duration", "base_duration"),
                    f"max_duration {cap} (the cap on each delay) is below base_duration {base}",
                    "max_duration >= base_duration")
            return None
        return Exponential(base, merged.get("factor", 2), cap, merged.get("jitter", "none"))
    if kind == "linear":
        increment = merged["increment"]
        base = merged.get("base_duration", increment)
        if not increment and not base:
            problem(blame("increment", "base_duration"),
                    "linear backoff needs a base_duration or increment above 0s",
                    "a positive Go duration such as '30s'")
            return None
        if cap is not None and cap < base:
            problem(blame("max_duration", "base_duration", "increment"),
                    f"max_duration {cap} (the cap on each delay) is below the first delay {base}",
                    "max_duration >= base_duration (which defaults to the increment)")
            return None
        return Linear(increment, base, cap)
    if kind == "fixed":
        return Fixed(merged["base_duration"])
    delays, retries = merged["delays"], merged["max_attempts"] - 1
    if len(delays) != retries:
        key = blame("delays", "max_attempts")
        if retries == 0:
            text = "max_attempts = 1 makes no retries, so custom backoff has nothing to delay"
            expected = "max_attempts >= 2, or backoff_type 'fixed'"
        else:
            text = (
                f"custom backoff lists {_plural(len(delays), 'delay')} but max_attempts = "
                f"{merged['max_attempts']} makes {retries} retries, one delay each"
            )
            expected = f"exactly max_attempts - 1 = {_plural(retries, 'delay')}"
        problem(key, text, expected)
        return None
    return Custom(delays)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --- Resources ------------------------------------------------------------------------------


def _resource_fields(resources: Resources) -> dict[str, str]:
    out = {}
    for key in ResourcesTable.model_fields:
        quantity = getattr(resources, key)
        if quantity is not None:
            out[key] = quantity.text
    return out


def resources_to_table(resources: Resources) -> dict[str, str]:
    """The ``[resources.<stage>]`` table describing ``resources`` (quantities as written)."""
    return _resource_fields(resources)


def resources_from_table(
    table: Mapping[str, Any],
    *,
    base: Resources | None = None,
    where: str = "resources",
    file: str | None = None,
) -> Resources:
    """Build Resources from a TOML table laid over ``base``; ConfigError lists every problem."""
    given = _validate(ResourcesTable, table, where=where, file=file)
    problems: list[ConfigError] = []
    resources = build_resources(
        given, base=base, key_of=lambda k: f"{where}.{k}", file=file, problems=problems
    )
    raise_all(problems)
    assert resources is not None
    return resources


def build_resources(
    given: dict[str, Any],
    *,
    base: Resources | None,
    key_of: KeyOf,
    file: str | None,
    problems: list[ConfigError],
    latest: Collection[str] = (),
) -> Resources | None:
    """Lay ``given`` over ``base``: each key alone, then each request/limit pair, then all."""
    merged: dict[str, Any] = _resource_fields(base) if base is not None else {}
    merged.update(given)
    before = len(problems)
    failed = set()
    for key, value in given.items():
        try:
            Resources(**{key: value})
        except QuantityError as exc:
            failed.add(key)
            problems.append(_quantity_problem(exc, key, value, key_of, file))
    for kind in _RESOURCE_KINDS:
        request, limit = f"{kind}_request", f"{kind}_limit"
        if request in merged and limit in merged and not failed & {request, limit}:
            try:
                Resources(**{request: merged[request], limit: merged[limit]})
            except QuantityError as exc:
                key = _blame((request, limit), latest, given)
                problems.append(
                    ConfigError(
                        str(exc), file=file, key=key_of(key), value=merged[key],
                        expected=f"{request} <= {limit}",
                    )
                )
    if len(problems) > before:
        return None
    return Resources(**merged)


def _quantity_problem(
    exc: QuantityError, key: str, value: Any, key_of: KeyOf, file: str | None
) -> ConfigError:
    kind = key.rsplit("_", 1)[0]
    expected = "a byte quantity such as '512Mi' or '2Gi'" if kind != "cpu" else None
    return ConfigError(str(exc), file=file, key=key_of(key), value=value, expected=expected)
