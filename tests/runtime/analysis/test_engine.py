"""The one-pass engine: re2 Set per block, a local second pass, and the line-owner rule."""

from __future__ import annotations

import os
import random
from pathlib import Path

import yaml

from resilient_templates.runtime.analysis.engine import BLOCK_BYTES, Engine, _blocks
from resilient_templates.runtime.analysis.knowledge import builtin

SAMPLES = yaml.safe_load((Path(__file__).parent / "data" / "signature_samples.yaml").read_text())
FAILURES = [line for entry in SAMPLES.values() for line in entry.get("match", [])]


def _log(lines: int, seed: int, *, noise: bytes | None = None) -> bytes:
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        if rng.random() < 0.03:
            out.append(rng.choice(FAILURES).encode())
        elif noise is not None:
            out.append(noise[rng.randrange(len(noise) - 200):][: rng.randint(20, 160)].replace(b"\n", b" "))
        else:
            out.append(f"2026-06-01T12:00:{i % 60:02d}Z INFO worker-{i % 7} item {i} ok".encode())
    return b"\n".join(out) + b"\n"


def _summary(engine: Engine, data: bytes) -> dict[str, tuple[int, int] | None]:
    scan = engine.scan(data)
    result = {}
    for name in scan.names():
        line, _captures = scan.evidence_line(name)
        result[name] = (line.start, line.end) if line else None
    return result


def test_re2_and_python_backends_agree_on_a_ci_log():
    """The re2 Set finds the same signatures and evidence lines as plain Python re."""
    kb = builtin()
    data = _log(20_000, seed=1)
    fast, slow = Engine(kb), Engine(kb, prefer_re2=False)
    assert (fast.backend_name, slow.backend_name) == ("re2", "python-re")
    assert _summary(fast, data) == _summary(slow, data)


def test_re2_set_misses_nothing_on_binary_noise():
    """Random bytes between failure lines (a DFA-hostile text) do not make the Set drop matches."""
    kb = builtin()
    data = _log(8_000, seed=2, noise=os.urandom(1 << 20))
    assert _summary(Engine(kb), data) == _summary(Engine(kb, prefer_re2=False), data)


def test_blocks_are_line_aligned_and_cover_the_text():
    """Blocks end on newlines, are contiguous and cover every byte."""
    data = _log(30_000, seed=3)
    blocks = _blocks(data)
    assert blocks[0][0] == 0 and blocks[-1][1] == len(data)
    for (_s1, e1), (s2, _e2) in zip(blocks, blocks[1:]):
        assert e1 == s2 and data[e1 - 1 : e1] == b"\n"
    assert max(e - s for s, e in blocks) < BLOCK_BYTES + 1000


def test_a_line_is_owned_by_its_most_specific_signature():
    """`npm ERR! code ECONNRESET` belongs to npm-registry-transfer-error, not connection-reset."""
    scan = Engine(builtin()).scan(b"npm ERR! code ECONNRESET\n")
    assert set(scan.names()) >= {"npm-registry-transfer-error", "connection-reset"}
    line, _ = scan.evidence_line("npm-registry-transfer-error")
    assert line is not None
    assert scan.evidence_line("connection-reset")[0] is None


def test_evidence_is_the_latest_owned_line_with_its_captures():
    """The latest matching line is the evidence; its captures are returned."""
    data = (b"Could not resolve host: first.example\n" + b"noise\n" * 5000
            + b"Could not resolve host: last.example\n")  # fmt: skip
    scan = Engine(builtin()).scan(data)
    line, captures = scan.evidence_line("dns-resolution-failure")
    assert scan.text(line) == "Could not resolve host: last.example"
    assert captures["host"] == "last.example"


def test_a_line_repeated_many_times_is_examined_a_bounded_number_of_times():
    """A log repeating one line is handled: the owner check stops after a bounded number of lines."""
    data = b"npm ERR! code ECONNRESET\n" * 50_000
    scan = Engine(builtin()).scan(data)
    assert scan.evidence_line("connection-reset") == (None, {})
    assert len(scan._owners) <= 64  # noqa: SLF001 - the bound is the behaviour under test


def test_invalid_utf8_does_not_hide_matches():
    """Bytes that are not UTF-8 next to a failure line do not stop it from matching."""
    data = b"\xff\xfe\x80 garbage \xc3\x28\nERROR: No space left on device \xe9\n"
    scan = Engine(builtin()).scan(data)
    line, _ = scan.evidence_line("disk-full")
    assert "No space left on device" in scan.text(line)


def test_empty_text_matches_nothing():
    """An empty log has no signatures."""
    assert Engine(builtin()).scan(b"").names() == []


def test_extract_reads_capture_only_patterns():
    """extract patterns (a reset header) give captures without being evidence."""
    engine = Engine(builtin())
    sig = builtin().get("github-rate-limit")
    data = b"< x-ratelimit-reset: 1764358800\n< retry-after: 60\n"
    assert engine.extract(sig, data) == {"reset": "1764358800", "retry_after": "60"}
    assert "github-rate-limit" not in engine.scan(b"< x-ratelimit-reset: 1764358800\n").names()
