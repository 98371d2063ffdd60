"""Argo inputs parsed as they really arrive: workflow.failures, node messages, error contexts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilient_templates.policy.taxonomy import Category
from resilient_templates.runtime.analysis.argo import (
    InputError,
    parse_context,
    parse_failures,
    parse_node_message,
    stage_failures,
)


def _entry(name: str, message: str, *, template: str = "work", finished: str = "2026-08-21T10:00:00Z",
           phase: str = "Failed") -> dict:  # fmt: skip
    return {"displayName": name, "message": message, "templateName": template, "phase": phase,
            "podName": f"wf-abc12-{template}-1", "finishedAt": finished}  # fmt: skip


ENTRIES = [_entry("do-work(0)", "main: Error (exit code 3): TIMEOUT_UPSTREAM")]


def _argo(entries: list | None) -> str:
    """What Argo substitutes for {{workflow.failures}}: strconv.Quote(json.Marshal(...))."""
    return json.dumps(json.dumps(entries, separators=(",", ":")))


@pytest.mark.parametrize(
    "form",
    [
        _argo(ENTRIES),  # as Argo renders it (quoted twice)
        json.dumps(ENTRIES),  # decoded once (a shell stripped a level)
        json.dumps(json.dumps(json.dumps(ENTRIES))),  # quoted once more by a parameter
        json.dumps(ENTRIES[0]),  # a single object
        "\ufeff " + _argo(ENTRIES) + "\n",  # BOM and whitespace
    ],
)
def test_failures_are_read_in_every_form_they_arrive_in(form):
    """Twice-quoted, once-quoted or plain JSON give the same entries."""
    assert parse_failures(form) == ENTRIES


@pytest.mark.parametrize("empty", ['"null"', "null", "", "   ", "[]", None, _argo(None), b'"null"'])
def test_no_failures_is_an_empty_list(empty):
    """The 6-character string "null" (and its relatives) means nothing failed."""
    assert parse_failures(empty) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("[{displayName:x}", "not JSON"),
        ('"[{\\"displayName\\":"', "not JSON"),
        ("42", "expected a list of failed nodes, got int"),
        ('["x"]', r"failures\[0\]: expected an object"),
    ],
)
def test_malformed_failures_are_one_line_errors(bad, message):
    """Malformed failures raise InputError with a one-line explanation."""
    with pytest.raises(InputError, match=message) as info:
        parse_failures(bad)
    assert "\n" not in str(info.value)


RETRIED = [
    _entry("build(0)", "main: OOMKilled (exit code 137)", template="build", finished="2026-08-21T10:01:00Z"),
    _entry("build(1)", "main: OOMKilled (exit code 137)", template="build", finished="2026-08-21T10:03:00Z"),
    _entry("build(2)", "main: Error (exit code 1): rt:permanent category=resource_exhaustion",
           template="build", finished="2026-08-21T10:05:00Z"),
    _entry("build", "No more retries left", template="build", finished="2026-08-21T10:05:00Z"),
    _entry("[0]", "child 'wf-abc12-1234' failed", template="main", finished="2026-08-21T10:05:01Z"),
    _entry("wf-abc12", "child 'wf-abc12-999' failed", template="main", finished="2026-08-21T10:05:02Z"),
    _entry("test(0)", "main: Error (exit code 1)", template="test", finished="2026-08-21T09:59:00Z"),
]  # fmt: skip


def test_stages_are_deduplicated_to_their_last_attempt():
    """Retry attempts, the Retry parent and group nodes become one failure per stage."""
    failures = stage_failures(RETRIED, workflow_name="wf-abc12")
    assert [f.stage for f in failures] == ["build"]
    build = failures[0]
    assert build.display_name == "build(2)"
    assert build.message.startswith("main: Error (exit code 1): rt:permanent")
    assert build.attempts == 3
    assert build.retry_stopped == "No more retries left"


def test_a_stage_whose_later_attempt_succeeded_is_dropped():
    """test(0) failed without a failed parent: test(1) passed, so it is not a failure."""
    failures = stage_failures(RETRIED, workflow_name="wf-abc12")
    assert "test" not in [f.stage for f in failures]


def test_a_recovered_stage_is_kept_when_nothing_else_failed():
    """With only recovered attempts listed, they are still reported (flagged recovered)."""
    failures = stage_failures([RETRIED[-1]])
    assert [(f.stage, f.recovered) for f in failures] == [("test", True)]


def test_group_nodes_are_kept_when_they_are_all_there_is():
    """A list of group nodes only still yields something to report."""
    failures = stage_failures([RETRIED[4]])
    assert failures and failures[0].stage == "[0]"


@settings(max_examples=50, deadline=None)
@given(st.permutations(RETRIED))
def test_deduplication_does_not_depend_on_order(entries):
    """workflow.failures comes in random (Go map) order; the result does not."""
    assert stage_failures(list(entries), workflow_name="wf-abc12") == stage_failures(
        RETRIED, workflow_name="wf-abc12"
    )


def test_stages_are_ordered_by_when_they_failed():
    """The earliest failure comes first (the likely root of later ones)."""
    entries = [
        _entry("deploy", "main: Error (exit code 1)", template="deploy", finished="2026-08-21T11:00:00Z"),
        _entry("lint", "main: Error (exit code 2)", template="lint", finished="2026-08-21T10:00:00Z"),
    ]  # fmt: skip
    assert [f.stage for f in stage_failures(entries)] == ["lint", "deploy"]


@pytest.mark.parametrize(
    ("message", "reason", "code", "detail"),
    [
        ("main: OOMKilled (exit code 137)", "OOMKilled", 137, ""),
        ("main: Error (exit code 1): TIMEOUT_UPSTREAM", "Error", 1, "TIMEOUT_UPSTREAM"),
        ("Pod was active on the node longer than the specified deadline", "DeadlineExceeded", None,
         "Pod was active on the node longer than the specified deadline"),
        ("The node was low on resource: ephemeral-storage. Container wait was using 60Ki, which "
         "exceeds its request of 0. ", "Evicted", None, None),
        ("pod deleted", "PodDeleted", None, "pod deleted"),
        ("Step exceeded its deadline", "StepDeadlineExceeded", None, None),
        ("ImagePullBackOff: Back-off pulling image \"x\"", "ImagePullBackOff", None, None),
    ],
)  # fmt: skip
def test_node_messages_are_parsed(message, reason, code, detail):
    """Container and pod-level node messages give a reason, exit code and detail."""
    parsed = parse_node_message(message)
    assert parsed.reason == reason
    assert parsed.exit_code == code
    if detail is not None:
        assert parsed.detail == detail


def test_the_wrapper_hint_is_read_from_the_termination_message():
    """The rt:… hint appended to the node message is parsed."""
    parsed = parse_node_message(
        "main: Error (exit code 1): rt:transient category=external_dependency "
        "signature=github-rate-limit exit=1 delay=600"
    )
    assert parsed.hint.transient and parsed.hint.signature == "github-rate-limit"
    assert parsed.hint.category is Category.EXTERNAL_DEPENDENCY and parsed.hint.delay == 600


@pytest.mark.parametrize("message", ["No more retries left", "Max duration limit exceeded",
                                     "Backoff would exceed max duration limit"])  # fmt: skip
def test_retry_stop_messages_are_recognised(message):
    """Retry parents' messages say why retrying stopped; they are not causes."""
    assert parse_node_message(message).retry_stopped == message


def test_child_failed_messages_are_group_nodes():
    """'child … failed' marks a StepGroup/DAG node."""
    assert parse_node_message("child 'wf-1' failed").group
    assert parse_node_message("child 'wf-1' errored").group


FULL_CONTEXT = {
    "schema": 1, "ok": False, "stage": "repository_clone", "attempt": 2, "exit_code": 137,
    "signal": "KILL", "timed_out": False, "started_at": 1764355200, "duration_seconds": 12,
    "waited_seconds": 30, "hint": "rt:transient category=external_dependency "
    "signature=github-rate-limit exit=1", "log_tail": "line one\nline two\n",
    "log_tail_bytes": 8192, "log_truncated": True,
}  # fmt: skip


def test_a_full_error_context_is_parsed():
    """Every field of the wrapper's JSON is read."""
    ctx = parse_context(json.dumps(FULL_CONTEXT).encode())
    assert (ctx.stage, ctx.attempt, ctx.exit_code, ctx.signal) == ("repository_clone", 2, 137, "KILL")
    assert ctx.duration_seconds == 12 and ctx.log_truncated and not ctx.empty
    assert ctx.hint.signature == "github-rate-limit"
    assert ctx.log_tail == b"line one\nline two\n"


def test_invalid_utf8_inside_the_log_tail_is_tolerated():
    """Raw non-UTF-8 bytes inside log_tail are decoded with replacement before json.loads."""
    raw = b'{"exit_code": 1, "log_tail": "caf\xe9 \xff\xfe broken\\n"}'
    ctx = parse_context(raw)
    assert ctx.exit_code == 1
    assert "broken" in ctx.log_tail.decode()


@pytest.mark.parametrize("empty", [b"{}", b"", b"  \n", None])
def test_an_empty_context_is_degraded_not_an_error(empty):
    """"{}" (the output's default when the pod died first) parses as an empty context."""
    ctx = parse_context(empty)
    assert ctx.empty and ctx.exit_code is None and ctx.log_tail == b""


def test_fields_of_the_wrong_type_are_dropped_with_a_note():
    """A wrong-typed field is ignored and noted; the rest of the context is used."""
    ctx = parse_context(b'{"exit_code": "137", "attempt": true, "stage": "build"}')
    assert ctx.stage == "build" and ctx.exit_code is None and ctx.attempt is None
    assert any("exit_code" in note for note in ctx.notes)
    assert any("attempt" in note for note in ctx.notes)


@pytest.mark.parametrize(("raw", "message"), [(b"{nope", "not JSON"), (b"[1, 2]", "expected a JSON object")])
def test_a_malformed_context_is_an_input_error(raw, message):
    """Bytes that are not a JSON object raise InputError."""
    with pytest.raises(InputError, match=message):
        parse_context(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_as_context_give_a_context_or_an_input_error(raw):
    """Whatever the error-context parameter holds, parsing ends in a context or InputError."""
    try:
        parse_context(raw)
    except InputError:
        pass


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(JSONISH, st.integers(min_value=0, max_value=3))
def test_any_json_as_failures_gives_stages_or_an_input_error(value, quoting):
    """Any JSON value, quoted 0–3 times, parses and deduplicates or raises InputError only."""
    text = json.dumps(value)
    for _ in range(quoting):
        text = json.dumps(text)
    try:
        entries = parse_failures(text)
    except InputError:
        return
    stage_failures(entries, workflow_name="wf")
