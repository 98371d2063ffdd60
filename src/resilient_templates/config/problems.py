"""Turn pydantic's validation errors into one-line ``ConfigError`` problems.

Each problem names the key path as written in the file (``env.production.retry.clone.factor``),
the value, and what was expected; unknown keys get a "did you mean" from difflib.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from ..errors import ConfigError
from .models import keys_of, model_at, toml_type

__all__ = ["dotted", "from_pydantic", "raise_all", "suggest", "unknown_name"]

Loc = tuple[Any, ...]


def dotted(path: Iterable[Any]) -> str:
    """``('retry', 'clone', 'delays', 1)`` -> ``retry.clone.delays[1]``; odd keys are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        if not text or not all(c.isalnum() or c in "_-" for c in text):
            text = '"' + text.replace('"', '\\"') + '"'
        out += f".{text}" if out else text
    return out


def suggest(name: str, choices: Iterable[str]) -> str:
    """'; did you mean 'x'?' for a close match, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_name(
    what: str, name: str, choices: Iterable[str], *, file: str | None, key: str
) -> ConfigError:
    """'unknown stage 'x'; did you mean 'y'? (expected one of …)'."""
    choices = sorted(choices)
    expected = "one of " + ", ".join(choices) if choices else f"no {what}s are defined"
    return ConfigError(
        f"unknown {what} {name!r}{suggest(name, choices)}", file=file, key=key, expected=expected
    )


def from_pydantic(
    exc: PydanticValidationError,
    *,
    file: str | None,
    prefix: str = "",
    model_for: Callable[[Loc], type[BaseModel] | None] = model_at,
) -> list[ConfigError]:
    """One ConfigError per pydantic error, keyed by ``prefix.loc`` (``model_for(loc)`` names
    the table model at a location, for 'did you mean')."""
    return [_one(error, file=file, prefix=prefix, model_for=model_for) for error in exc.errors()]


def _one(
    error: Any,
    *,
    file: str | None,
    prefix: str,
    model_for: Callable[[Loc], type[BaseModel] | None],
) -> ConfigError:
    loc: Loc = tuple(error["loc"])
    key = ".".join(p for p in (prefix, dotted(loc)) if p)
    kind, value = error["type"], error.get("input")
    if kind == "rt":
        ctx = error["ctx"]
        return ConfigError(
            ctx["problem"], file=file, key=key, value=value, expected=ctx["expected"],
            has_value=True,
        )
    if kind == "extra_forbidden":
        model = model_for(loc[:-1])
        allowed = keys_of(model) if model is not None else []
        return ConfigError(
            f"unknown key {loc[-1]!r}{suggest(str(loc[-1]), allowed)}",
            file=file,
            key=key,
            expected="one of " + ", ".join(allowed) if allowed else None,
        )
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return ConfigError(
            f"must be a table, not {toml_type(value)}", file=file, key=key, value=value,
            expected="a table", has_value=True,
        )
    if kind == "list_type":
        return ConfigError(
            f"must be an array, not {toml_type(value)}", file=file, key=key, value=value,
            expected="an array such as ['10s', '1m']", has_value=True,
        )
    return ConfigError(error["msg"], file=file, key=key, value=value, has_value=True)


def raise_all(problems: list[ConfigError]) -> None:
    """Raise nothing, the one problem, or one ConfigError carrying them all (one per line)."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        first = problems[0]
        raise ConfigError(first.problem, file=first.file, key=first.key, problems=problems)
