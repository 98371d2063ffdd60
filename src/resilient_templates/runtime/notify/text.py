"""Small text helpers shared by the notification modules: compact JSON, clipping. Stdlib only."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["clip", "clip_tail", "dumps", "one_line"]


def dumps(value: Any, *, sort_keys: bool = True) -> str:
    """Compact JSON (no spaces, UTF-8 kept); deterministic with ``sort_keys``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)


def clip(text: str, limit: int, *, marker: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, ending with ``marker`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def clip_tail(text: str, limit: int, *, marker: str = "…") -> str:
    """The last ``limit`` characters of ``text`` (a log's end matters most), whole lines."""
    if len(text) <= limit:
        return text
    tail = text[-(limit - len(marker) - 1):]
    newline = tail.find("\n")
    if 0 <= newline < len(tail) // 2:
        tail = tail[newline + 1:]
    return marker + "\n" + tail


def one_line(text: str, limit: int = 300) -> str:
    """``text`` with its whitespace runs (newlines too) collapsed, clipped to ``limit``."""
    return clip(" ".join(str(text).split()), limit)
