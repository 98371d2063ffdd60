"""Durations parse and render exactly as Argo's Go parser does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilient_templates.errors import DurationError
from resilient_templates.policy import Duration

GO_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("30s", 30 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("500ms", 5 * 10**8),
        ("1.5h", 5400 * 10**9),
        ("90", 90 * 10**9),  # a bare integer is seconds (Argo's ParseStringToDuration)
        ("0", 0),
        ("1h1m1s1ms1us1ns", 3661 * 10**9 + 10**6 + 10**3 + 1),
        ("2µs", 2000),
    ],
)
def test_parses_go_durations(text, ns):
    """Go duration strings and bare integers parse to the exact nanoseconds."""
    assert Duration.parse(text).nanoseconds == ns


def test_accepts_int_seconds_and_timedelta():
    """Ints are seconds and timedeltas keep microseconds."""
    assert Duration.parse(90) == Duration.parse("1m30s")
    assert Duration.parse(timedelta(minutes=1, microseconds=5)).nanoseconds == 60 * 10**9 + 5000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1d", "unit 'd', which Argo's Go parser does not accept (use 24h per day"),
        ("2w", "unit 'w'"),
        ("-5s", "must not be signed"),
        ("abc", "is not a Go duration"),
        ("", "must not be empty"),
        ("٣٠s", "is not a Go duration"),  # Arabic-Indic digits: Go accepts ASCII only
        ("5", None),
    ],
)
def test_rejects_what_argo_rejects(text, message):
    """'1d', signs and garbage are refused with a message that says what to write instead."""
    if message is None:
        assert Duration.parse(text).seconds == 5
        return
    with pytest.raises(DurationError, match=message.replace("(", r"\(")):
        Duration.parse(text)


@pytest.mark.parametrize(
    ("ns", "text"),
    [(0, "0s"), (90 * 10**9, "1m30s"), (3600 * 10**9, "1h"), (5 * 10**8, "500ms"),
     (1_500_000_000, "1.5s"), (3661 * 10**9 + 5 * 10**8, "1h1m1.5s"), (7, "7ns")],
)  # fmt: skip
def test_renders_the_shortest_go_string(ns, text):
    """Rendering picks the shortest form Go parses back to the same value."""
    assert Duration(ns).to_go() == text


def _go_parse(text: str) -> int:
    """An independent reference: Go's grammar (number + unit, repeated), no regex reuse."""
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            number += c
            i += 1
            continue
        for unit in ("ns", "us", "ms", "s", "m", "h"):
            if text.startswith(unit, i):
                total += float(number) * GO_NS[unit]
                number, i = "", i + len(unit)
                break
        else:
            raise AssertionError(text)
    return round(total)


@given(st.integers(min_value=0, max_value=10**18))
def test_render_round_trips(ns):
    """Every duration renders to a string that parses back to itself (no '1d', no loss)."""
    d = Duration(ns)
    text = d.to_go()
    assert "d" not in text.replace("ms", "").replace("ns", "")
    assert Duration.parse(text) == d
    assert abs(_go_parse(text) - ns) <= max(1, ns // 10**12)  # float reference: relative 1e-12
