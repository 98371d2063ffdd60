"""`resilient-runtime analyze` as a process: outputs, exit codes, bad input, stores, big logs."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

NOW = "1764355200"
ENV = {k: v for k, v in os.environ.items() if k not in ("RT_STATE_URL", "RT_DEBUG")}


def analyze(*args: str, stdin: bytes | None = None, env: dict | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "resilient_templates.runtime", "analyze", "--now", NOW, *args],
        input=stdin, capture_output=True, timeout=timeout, env={**ENV, **(env or {})}, check=False,
    )


def documents(proc: subprocess.CompletedProcess) -> list[dict]:
    # JSON Lines are separated by "\n" only: str.splitlines() would also split inside a
    # string at U+0085, U+2028, \x1c-\x1e..., which json.dumps(ensure_ascii=False) keeps
    # literally (a binary log's tail produced them now and then: a flaky test).
    return [json.loads(line) for line in proc.stdout.decode().split("\n") if line.strip()]


def assert_clean(proc: subprocess.CompletedProcess) -> None:
    """No traceback, stderr at most a few one-line messages."""
    err = proc.stderr.decode()
    assert "Traceback" not in err, err


def test_a_log_gives_one_failure_analysis_line(tmp_path):
    """--log prints one FailureAnalysis JSON line and exits 0."""
    log = tmp_path / "build.log"
    log.write_text("Step 3/9 : RUN npm ci\nnpm ERR! code E503\n")
    proc = analyze("--log", str(log), "--stage", "build", "--workflow", "ci", "--uid", "u1",
                   "--stages", "clone,build,test", "--no-store")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [doc] = documents(proc)
    assert doc["root_cause"]["signature"] == "npm-registry-error"
    assert doc["root_cause"]["category"] == "external_dependency"
    assert doc["impact"]["blocked_stages"] == ["test"]
    assert doc["created_at"] == "2025-11-28T18:40:00Z"


def test_output_file_gets_the_same_lines(tmp_path):
    """--output writes exactly what is printed."""
    out = tmp_path / "out" / "analysis.jsonl"
    proc = analyze("--node-message", "main: OOMKilled (exit code 137)", "--output", str(out), "--no-store")
    assert proc.returncode == 0
    assert out.read_bytes() == proc.stdout


def test_jsonl_batch_prints_one_result_per_input_and_survives_bad_lines(tmp_path):
    """--jsonl: one line per input with the contract keys; a malformed line is an error line."""
    batch = tmp_path / "in.jsonl"
    batch.write_text("\n".join([
        json.dumps({"id": "a", "text": "fatal: Couldn't find remote ref refs/heads/x"}),
        "{this is not json",
        json.dumps({"id": 7, "text": "nothing to see here"}),
        json.dumps({"id": "c", "text": 42}),
        "",
        json.dumps({"id": "d", "text": "main: OOMKilled (exit code 137)"}),
    ]) + "\n")  # fmt: skip
    proc = analyze("--jsonl", str(batch))
    assert proc.returncode == 65
    assert_clean(proc)
    rows = documents(proc)
    assert [row["id"] for row in rows] == ["a", "line 2", 7, "c", "d"]
    good = [rows[0], rows[2], rows[4]]
    for row in good:
        assert {"id", "category", "transient", "confidence", "signature"} <= row.keys()
        assert isinstance(row["confidence"], float) and isinstance(row["transient"], bool)
    assert (rows[0]["category"], rows[0]["signature"]) == ("configuration", "git-missing-ref")
    assert (rows[2]["category"], rows[2]["signature"]) == ("unknown", None)
    assert rows[4]["signature"] == "oom-killed"
    assert "error" in rows[1] and "not JSON" in rows[1]["error"]
    assert "'text' must be a string" in rows[3]["error"]


def test_jsonl_from_stdin(tmp_path):
    """--jsonl - reads the batch from stdin; all good lines exit 0."""
    proc = analyze("--jsonl", "-", stdin=json.dumps({"id": 1, "text": "No space left on device"}).encode())
    assert proc.returncode == 0
    assert documents(proc)[0]["signature"] == "disk-full"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log", "/nonexistent/build.log"], "--log /nonexistent/build.log: No such file"),
        (["--threshold", "1.5"], "--threshold must be within [0, 1]"),
        (["--tail-bytes", "0"], "--tail-bytes must be positive"),
        (["--exit-code", "abc"], "usage error"),
        (["--resolve", "fa-1"], "--resolve needs --resolution"),
        (["--resolve", "fa-1", "--resolution", "x", "--no-store"], "needs a state store"),
        (["--log", "-", "--context", "-"], "only one input can read stdin"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, message):
    """Unusable arguments: exit 2, one line on stderr, nothing on stdout."""
    proc = analyze(*args)
    assert proc.returncode == 2
    assert_clean(proc)
    assert message in proc.stderr.decode()
    assert len(proc.stderr.decode().strip().splitlines()) == 1
    assert proc.stdout == b""


def test_a_broken_signatures_file_is_a_usage_error(tmp_path):
    """--signatures with an invalid signature names the file and the field; exit 2."""
    bad = tmp_path / "mine.yaml"
    bad.write_text("schema: 1\nsignatures:\n- name: flaky\n  category: weather\n  transient: true\n"
                   "  patterns: ['x']\n")  # fmt: skip
    proc = analyze("--signatures", str(bad), "--log", os.devnull)
    assert proc.returncode == 2
    assert "mine.yaml: signatures[0] (flaky).category: invalid category" in proc.stderr.decode()


def test_user_signatures_are_used(tmp_path):
    """--signatures adds a signature the analysis then reports."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(textwrap.dedent("""\
        schema: 1
        signatures:
        - name: license-server-down
          category: external_dependency
          transient: true
          precision: 0.95
          patterns: ['FlexLM: cannot connect to license server (?P<server>\\S+)']
          recommendations: [{action: 'Check license server {server}'}]
    """))
    proc = analyze("--signatures", str(extra), "--no-store", "--log", "-",
                   stdin=b"FlexLM: cannot connect to license server lic01\n")  # fmt: skip
    [doc] = documents(proc)
    assert doc["root_cause"]["signature"] == "license-server-down"
    assert doc["recommendations"][0]["action"] == "Check license server lic01"


@pytest.mark.parametrize(
    ("args", "stdin", "note"),
    [
        (["--failures", "[{broken"], None, "workflow failures: not JSON"),
        (["--context", "-"], b"{not json", "error context: not JSON"),
        ([], None, "no failure evidence given"),
    ],
)
def test_malformed_or_empty_input_still_prints_a_degraded_analysis(args, stdin, note):
    """Malformed failures/context or no input: an analysis saying why, exit 65."""
    proc = analyze(*args, "--status", "Failed", "--no-store", stdin=stdin)
    assert proc.returncode == 65
    assert_clean(proc)
    [doc] = documents(proc)
    assert doc["root_cause"]["category"] == "unknown"
    assert any(note in d for d in doc["degraded"])


def test_a_binary_log_is_analysed_without_errors(tmp_path):
    """Invalid UTF-8 and NUL bytes are tolerated; a failure line among them is found."""
    log = tmp_path / "bin.log"
    log.write_bytes(os.urandom(200_000) + b"\nnpm ERR! code ENOSPC\n" + b"\x00\xff\xfe" * 100)
    proc = analyze("--log", str(log), "--no-store")
    assert proc.returncode == 0
    assert_clean(proc)
    assert documents(proc)[0]["root_cause"]["signature"] == "disk-full"


def _max_rss_kb(command: list[str], *, feed_gib: float = 0.0) -> tuple[int, bytes]:
    """Run ``command`` in a helper process; return its peak RSS (KiB) and stdout."""
    helper = textwrap.dedent(f"""\
        import resource, subprocess, sys
        proc = subprocess.Popen({command!r}, stdin=subprocess.PIPE if {feed_gib} else None,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if {feed_gib}:
            chunk = (b"2026-06-01T12:00:00Z INFO a perfectly ordinary log line, nothing to see\\n" * 14000)
            sent, total = 0, int({feed_gib} * (1 << 30))
            while sent < total:
                proc.stdin.write(chunk)
                sent += len(chunk)
            proc.stdin.write(b"OSError: [Errno 28] No space left on device\\n")
            proc.stdin.close()
        out = proc.stdout.read()
        proc.wait()
        sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + "\\n")
        sys.stdout.buffer.write(out)
    """)
    done = subprocess.run([sys.executable, "-c", helper], capture_output=True, timeout=300,
                          env=ENV, check=True)  # fmt: skip
    first, _, rest = done.stdout.partition(b"\n")
    return int(first), rest


def test_a_1gb_sparse_log_file_is_read_from_its_tail_in_bounded_memory(tmp_path):
    """Only the tail of a 1 GiB file is read: memory stays far below the file size."""
    log = tmp_path / "huge.log"
    with open(log, "wb") as handle:
        handle.truncate(1 << 30)
        handle.seek((1 << 30) - 100)
        handle.write(b"\nOSError: [Errno 28] No space left on device\n")
    base = [sys.executable, "-m", "resilient_templates.runtime", "analyze", "--no-store"]
    rss, out = _max_rss_kb([*base, "--log", str(log)])
    assert json.loads(out)["root_cause"]["signature"] == "disk-full"
    assert rss < 150_000, f"peak RSS {rss} KiB for a 1 GiB file"


def test_a_1gb_log_on_stdin_is_streamed_in_bounded_memory():
    """1 GiB through a pipe: a bounded buffer keeps only the tail."""
    base = [sys.executable, "-m", "resilient_templates.runtime", "analyze", "--no-store"]
    rss, out = _max_rss_kb([*base, "--log", "-"], feed_gib=1.0)
    assert json.loads(out)["root_cause"]["signature"] == "disk-full"
    assert rss < 150_000, f"peak RSS {rss} KiB for a 1 GiB stream"


def test_workflow_failures_with_a_context_for_the_failed_stage(tmp_path):
    """--failures (as Argo renders it) plus --context for the stage: one analysis per stage."""
    failures = json.dumps(json.dumps([
        {"displayName": "clone(0)", "message": "main: Error (exit code 1): rt:transient "
         "category=external_dependency signature=github-rate-limit exit=1", "templateName": "clone",
         "phase": "Failed", "podName": "p", "finishedAt": "2026-08-21T10:00:00Z"},
        {"displayName": "clone", "message": "No more retries left", "templateName": "clone",
         "phase": "Failed", "podName": "p", "finishedAt": "2026-08-21T10:00:00Z"},
        {"displayName": "[0]", "message": "child 'x' failed", "templateName": "main",
         "phase": "Failed", "podName": "p", "finishedAt": "2026-08-21T10:00:01Z"},
    ]))  # fmt: skip
    (tmp_path / "failures.txt").write_text(failures)
    context = {"stage": "clone", "attempt": 1, "exit_code": 1,
               "log_tail": "< x-ratelimit-remaining: 0\n< x-ratelimit-reset: 1764357000\n"}  # fmt: skip
    (tmp_path / "ctx.json").write_text(json.dumps(context))
    proc = analyze("--failures", f"@{tmp_path / 'failures.txt'}", "--status", "Failed",
                   "--context", str(tmp_path / "ctx.json"), "--stage", "clone",
                   "--workflow", "ci", "--uid", "u1", "--no-store")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [doc] = documents(proc)
    assert doc["stage"] == "clone" and doc["root_cause"]["signature"] == "github-rate-limit"
    assert doc["retry_advice"]["delay_seconds"] == 1800
    assert doc["impact"]["retry_budget_left"] == 0


def test_history_and_resolution_through_the_cli(tmp_path, store_url):
    """Analyses are recorded; --resolve records a fix; the next one reports both (both stores)."""
    url = store_url
    log = tmp_path / "l.log"
    log.write_text("bash: fork: retry: Resource temporarily unavailable\n")
    first = documents(analyze("--log", str(log), "--stage", "test", "--uid", "u1", "--store", url))[0]
    resolved = analyze("--resolve", first["failure_id"], "--resolution", "raised pids limit", "--store", url)
    assert resolved.returncode == 0, resolved.stderr
    second = analyze("--log", str(log), "--stage", "test", "--uid", "u2", "--workflow", "w",
                     env={"RT_STATE_URL": url})  # fmt: skip
    assert second.returncode == 0
    history = documents(second)[0]["history"]
    assert history["seen_count"] == 1 and history["last_resolution"] == "raised pids limit"
    unknown = analyze("--resolve", "fa-nope", "--resolution", "x", "--store", url)
    assert unknown.returncode == 2 and "no analysis with failure id" in unknown.stderr.decode()


def test_a_locked_store_still_prints_and_writes_the_analysis_then_exits_75(tmp_path):
    """SQLite locked by another process: the analysis is printed and written, exit 75."""
    path = tmp_path / "state.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("CREATE TABLE x (y)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        out = tmp_path / "analysis.jsonl"
        proc = analyze("--node-message", "main: OOMKilled (exit code 137)", "--output", str(out),
                       "--store", f"sqlite:///{path}", env={"RT_STORE_TIMEOUT": "0.5"})  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 75
    assert_clean(proc)
    [doc] = documents(proc)
    assert doc["root_cause"]["signature"] == "oom-killed"
    assert any("history unavailable" in d and "locked" in d for d in doc["degraded"])
    assert out.read_bytes() == proc.stdout
    assert "locked" in proc.stderr.decode()


def test_an_unreachable_store_still_prints_the_analysis_then_exits_75():
    """A PostgreSQL URL nobody listens on: analysis printed, exit 75, one line on stderr."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = analyze("--node-message", "pod deleted", "--store", f"postgresql://rt@127.0.0.1:{port}/rt",
                   env={"RT_STORE_TIMEOUT": "1"})  # fmt: skip
    assert proc.returncode == 75
    assert_clean(proc)
    assert documents(proc)[0]["root_cause"]["signature"] == "pod-deleted"


def test_help_lists_the_options():
    """--help documents the inputs and exits 0."""
    proc = subprocess.run([sys.executable, "-m", "resilient_templates.runtime", "analyze", "--help"],
                          capture_output=True, env=ENV, check=False)  # fmt: skip
    assert proc.returncode == 0
    for option in ("--context", "--log", "--failures", "--jsonl", "--store", "--threshold"):
        assert option in proc.stdout.decode()


def test_a_log_that_cannot_be_attached_to_a_stage_is_reported(tmp_path):
    """Two failed stages and no --stage: the log is not guessed onto one; the analyses say so."""
    failures = json.dumps(json.dumps([
        {"displayName": "lint", "message": "main: Error (exit code 1)", "finishedAt": "2026-08-21T10:00:00Z"},
        {"displayName": "test", "message": "main: Error (exit code 1)", "finishedAt": "2026-08-21T10:01:00Z"},
    ]))  # fmt: skip
    log = tmp_path / "l.log"
    log.write_text("No space left on device\n")
    proc = analyze("--failures", failures, "--status", "Failed", "--log", str(log), "--no-store")
    docs = documents(proc)
    assert [d["stage"] for d in docs] == ["lint", "test"]
    assert all(any("--log/--context not used" in n for n in d["degraded"]) for d in docs)
    assert all(d["root_cause"]["signature"] != "disk-full" for d in docs)
