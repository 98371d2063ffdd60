"""The wrapper's termination hint round-trips through Argo's node message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from resilient_templates.policy import Category, Hint, Severity, default_severity, format_hint, parse_hint


def test_hint_found_inside_argo_node_message():
    """Argo prefixes the termination message with 'main: Error (exit code N): '."""
    msg = "main: Error (exit code 1): rt:transient category=external_dependency signature=gh exit=1 delay=30"
    assert parse_hint(msg) == Hint(True, Category.EXTERNAL_DEPENDENCY, "gh", 1, None, 30)


def test_no_hint_is_none():
    """Messages without a hint (or empty/None) parse to None."""
    assert parse_hint("main: OOMKilled (exit code 137)") is None and parse_hint(None) is None


@given(
    transient=st.booleans(),
    category=st.one_of(st.none(), st.sampled_from(list(Category))),
    signature=st.one_of(st.none(), st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True)),
    exit_code=st.one_of(st.none(), st.integers(-1, 255)),
    signal=st.one_of(st.none(), st.sampled_from(["KILL", "TERM"])),
    delay=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_format_parse_round_trip(transient, category, signature, exit_code, signal, delay):
    """Any hint the wrapper can write is parsed back unchanged."""
    hint = Hint(transient, category, signature, exit_code, signal, delay)
    assert parse_hint("main: Error (exit code 1): " + format_hint(hint)) == hint


def test_every_category_has_a_default_severity():
    """Each category maps to a PagerDuty severity."""
    assert {default_severity(c) for c in Category} <= set(Severity)
