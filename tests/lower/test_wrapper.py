"""The stage wrapper, run for real under dash (Debian's /bin/sh) and BusyBox (Alpine-like images).

The BusyBox variant runs with a PATH holding only BusyBox applets, as in an Alpine image, so
any GNU-only tool or option the wrapper relied on would fail here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from resilient_templates.lower.wrapper import WRAPPER_SOURCE, wrapper_script
from resilient_templates.policy import parse_hint

BUSYBOX = shutil.which("busybox")


@pytest.fixture(scope="module")
def busybox_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    if BUSYBOX is None:
        if os.environ.get("RT_REQUIRE_BUSYBOX") == "1":
            pytest.fail("busybox not installed (apt-get install busybox-static)")
        pytest.skip("busybox not installed: the Alpine-like wrapper run is NOT tested")
    bindir = tmp_path_factory.mktemp("busybox-bin")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    for applet in applets:
        (bindir / applet).symlink_to(BUSYBOX)
    return str(bindir)


@pytest.fixture(params=["dash", "busybox"])
def run(request: pytest.FixtureRequest, tmp_path: Path):
    """Run ``argv`` under the wrapper; returns (exit code, context dict, termination text, stderr)."""
    if request.param == "dash":
        shell, path = "/bin/sh", os.environ["PATH"]
    else:
        path = request.getfixturevalue("busybox_path")
        shell = os.path.join(path, "sh")
    script = wrapper_script()

    def _run(*argv: str, timeout: float = 30, terminate_after: float | None = None, **env: str):
        ctx, term = tmp_path / "ctx" / "error-context.json", tmp_path / "term"
        full_env = {
            "PATH": path,
            "RT_CONTEXT": str(ctx),
            "RT_TERMINATION_LOG": str(term),
            "RT_STAGE": "demo",
            **env,
        }
        popen = subprocess.Popen(
            [shell, "-c", script, "rt-wrapper", *argv],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if terminate_after is not None:  # as Argo's executor does at a deadline
            time.sleep(terminate_after)
            popen.send_signal(signal.SIGTERM)
        stdout, stderr = popen.communicate(timeout=timeout)
        proc = subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr)
        context = json.loads(ctx.read_bytes().decode("utf-8", "replace")) if ctx.exists() else None
        termination = term.read_text() if term.exists() else None
        return proc.returncode, context, termination, proc.stderr.decode(errors="replace"), proc

    return _run


def test_success_writes_a_small_ok_context_and_no_termination_message(run):
    """A successful command exits 0, records ok=true without a log tail, and writes no hint."""
    rc, ctx, term, _, proc = run("sh", "-c", "echo out; echo err >&2")
    assert rc == 0
    assert ctx["ok"] is True and ctx["exit_code"] == 0 and "log_tail" not in ctx
    assert term is None
    assert proc.stdout.decode().splitlines() == ["out", "err"]  # output still reaches the log


def test_failure_keeps_exit_code_and_merged_tail(run):
    """A failing command's exit code is preserved and its merged output is in log_tail."""
    rc, ctx, term, _, _ = run("sh", "-c", "echo one; echo two >&2; exit 3")
    assert rc == 3
    assert ctx["ok"] is False and ctx["exit_code"] == 3 and ctx["signal"] is None
    assert ctx["log_tail"] == "one\ntwo"
    assert parse_hint(term).exit_code == 3 and parse_hint(term).transient is False


def test_hostile_bytes_still_give_valid_json(run):
    """NUL, control characters, quotes, backslashes and invalid UTF-8 cannot break the JSON."""
    rc, ctx, _, _, _ = run("sh", "-c", r"""printf 'a\000b\001c \\ " \377\376 {{x}}\n'; exit 1""")
    assert rc == 1
    assert ctx["log_tail"] == 'ab?c \\ " \ufffd\ufffd {{x}}'


def test_tail_is_bounded_and_marked_truncated(run):
    """Only the last RT_TAIL_BYTES bytes of a large output are kept."""
    rc, ctx, _, _, proc = run(
        "sh", "-c", "i=0; while [ $i -lt 5000 ]; do echo line-$i; i=$((i+1)); done; exit 2",
        RT_TAIL_BYTES="1024",
    )
    assert rc == 2 and ctx["log_truncated"] is True and ctx["log_tail_bytes"] == 1024
    assert ctx["log_tail"].endswith("line-4999")
    assert len(proc.stdout.splitlines()) == 5000  # the container log is complete


def test_first_matching_hint_classifies_the_failure(run):
    """RT_HINTS patterns are tried in order; the first match names signature and category."""
    hints = "\n".join(
        [
            "docker-rate-limit\texternal_dependency\ttrue\ttoomanyrequests",
            "github-rate-limit\texternal_dependency\ttrue\tAPI rate limit exceeded",
            "anything\tcode_quality\tfalse\t.",
        ]
    )
    rc, ctx, term, _, _ = run("sh", "-c", "echo 'API rate limit exceeded for 1.2.3.4'; exit 1",
                              RT_HINTS=hints)  # fmt: skip
    hint = parse_hint(term)
    assert (hint.signature, hint.category.value, hint.transient) == (
        "github-rate-limit", "external_dependency", True,
    )  # fmt: skip
    assert ctx["hint"] == term


@pytest.mark.parametrize(
    ("code", "signature", "transient"),
    [(75, "declared-transient", True), (127, "command-not-runnable", False), (1, None, False)],
)
def test_exit_code_fallback_hints(run, code, signature, transient):
    """Without a pattern match, exit 75 is transient and 126/127 a configuration problem."""
    rc, _, term, _, _ = run("sh", "-c", f"exit {code}")
    hint = parse_hint(term)
    assert rc == code and hint.signature == signature and hint.transient is transient


def test_soft_deadline_kills_and_reports_timeout(run):
    """The command is stopped at RT_TIMEOUT; the wrapper exits 124 and says it timed out."""
    rc, ctx, term, _, _ = run("sleep", "30", RT_TIMEOUT="1", RT_KILL_GRACE="1", timeout=20)
    assert rc == 124
    assert ctx["timed_out"] is True and ctx["signal"] == "TERM"
    assert parse_hint(term).signature == "attempt-timeout"


def test_sigterm_is_forwarded_and_context_still_written(run, tmp_path):
    """A SIGTERM to the wrapper (Argo's deadline) reaches the command; the context is written."""
    # The wrapper signals itself shortly after start, as the Argo executor would.
    rc, ctx, _, _, _ = run("sh", "-c", "kill -TERM $PPID; sleep 5; exit 0", timeout=20)
    assert ctx is not None and ctx["ok"] is False
    assert rc == 143 and ctx["signal"] == "TERM"


def test_first_attempt_never_waits(run):
    """Attempt 1 runs at once, whatever the schedule says."""
    _, ctx, _, err, _ = run("true", RT_SLEEPS="30", RT_NO_SLEEP="1")
    assert ctx["attempt"] == 1 and ctx["waited_seconds"] == 0 and "sleep" not in err


def test_deterministic_schedule_waits_its_in_pod_part(run):
    """Retry n sleeps RT_SLEEPS[n-1] in the pod; the recorded delay adds Argo's native floor."""
    _, ctx, term, err, _ = run("false", RT_RETRIES="2", RT_SLEEPS="0 30", RT_FLOOR="30",
                               RT_NO_SLEEP="1")  # fmt: skip
    assert "rt: sleep 30" in err
    assert ctx["attempt"] == 3 and ctx["waited_seconds"] == 60
    assert parse_hint(term).delay == 60


@pytest.mark.parametrize("attempt", range(1, 4))
def test_jittered_delay_stays_within_bounds(run, attempt):
    """A jittered retry draws its delay inside RT_BOUNDS and sleeps only above the floor."""
    for _ in range(5):
        _, ctx, _, err, _ = run("false", RT_RETRIES=str(attempt), RT_JITTER="equal",
                                RT_BOUNDS="15:30 30:60 60:120", RT_FLOOR="15", RT_NO_SLEEP="1")  # fmt: skip
        lo, hi = [(15, 30), (30, 60), (60, 120)][attempt - 1]
        assert lo <= ctx["waited_seconds"] <= hi
        slept = [int(line.split()[-1]) for line in err.splitlines() if line.startswith("rt: sleep")]
        assert sum(slept) == ctx["waited_seconds"] - 15


def test_decorrelated_jitter_grows_from_the_previous_delay(run):
    """Decorrelated jitter draws in [base, min(cap, 3 x previous delay)], reading lastRetry.message."""
    for _ in range(10):
        _, ctx, _, _, _ = run(
            "false", RT_RETRIES="2", RT_JITTER="decorrelated", RT_BASE="10", RT_CAP="100",
            RT_FLOOR="10", RT_NO_SLEEP="1",
            RT_LAST_MESSAGE="main: Error (exit code 1): rt:transient exit=1 delay=20",
        )  # fmt: skip
        assert 10 <= ctx["waited_seconds"] <= 60


def test_wrapper_source_is_posix_sh_syntax():
    """The shipped wrapper parses under dash -n (no bashisms that break parsing)."""
    subprocess.run(["/bin/sh", "-n", "-c", WRAPPER_SOURCE], check=True)


def test_output_directories_exist_before_the_command_runs(run, tmp_path):
    """The context directory and RT_MKDIRS exist before the command starts (it may write there)."""
    out_dir = tmp_path / "outputs" / "deep"
    rc, ctx, _, _, _ = run("sh", "-c", f"echo done > {out_dir}/result", RT_MKDIRS=str(out_dir))
    assert rc == 0 and (out_dir / "result").read_text() == "done\n" and ctx["ok"] is True


def test_well_known_secrets_are_redacted_in_the_tail(run):
    """Tokens, JWTs, URL passwords and private keys never reach the error context verbatim."""
    secrets = [
        "ghp_" + "a" * 36,
        "xoxb-123456789012-abcdefghijkl",
        "AKIAABCDEFGHIJKLMNOP",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
        "https://deploy:hunter2secret@git.example.com/r.git",
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz",
    ]
    script = "; ".join(f"echo '{s}'" for s in secrets)
    script += "; printf -- '-----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY-----\\n'; exit 1"
    rc, ctx, _, _, proc = run("sh", "-c", script)
    tail = ctx["log_tail"]
    for secret in ("a" * 36, "abcdefghijkl", "IJKLMNOP", "c2lnbmF0dXJl", "hunter2secret",
                   "abcdefghijklmnopqrstuvwxyz", "MIIEow"):  # fmt: skip
        assert secret not in tail
    assert "https://deploy:[REDACTED:url-password]@git.example.com" in tail
    assert "Authorization: Bearer [REDACTED:authorization-header]" in tail
    assert b"hunter2secret" in proc.stdout  # the live log is the command's own, untouched


def test_ordinary_text_is_not_redacted(run):
    """Look-alikes stay: a git SHA, 'Bearer' in prose, a URL without credentials."""
    text = "commit 3f5a9c2e1b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a; the Bearer scheme; https://example.com:8443/x"
    rc, ctx, _, _, _ = run("sh", "-c", f"echo '{text}'; exit 1")
    assert ctx["log_tail"] == text


def test_without_a_usable_temp_dir_the_command_still_runs(run, tmp_path):
    """If the capture cannot be set up (read-only /tmp), the wrapper runs the command plainly."""
    rc, _, _, err, proc = run("sh", "-c", "echo still-ran; exit 4", TMPDIR="/proc/self",
                              RT_CONTEXT="/proc/self/ctx.json")  # fmt: skip
    assert rc == 4 and proc.stdout == b"still-ran\n" and "without the wrapper" in err


def test_sigterm_during_the_in_pod_wait_still_records_context(run):
    """A deadline or drain that stops the pod while it waits leaves an error context (exit 143)."""
    rc, ctx, term, _, _ = run("true", RT_RETRIES="1", RT_SLEEPS="30", RT_FLOOR="0",
                              terminate_after=1.0, timeout=20)  # fmt: skip
    assert rc == 143
    assert ctx["ok"] is False and ctx["signal"] == "TERM" and ctx["exit_code"] == 143
    assert parse_hint(term).signature == "terminated-while-waiting"
