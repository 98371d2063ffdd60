"""Failure-analysis speed: multi-pattern engines side by side, cold start, import time.

Run: ``.venv/bin/python tests/bench/bench_analysis.py`` (or ``make bench``). Everything is
measured in one run on a generated CI log (seeded, so runs are comparable):

* throughput (MB/s) of the analysis engine (re2 Set + second pass) on a 10 MB log with ~3 %
  failure lines, next to a naive Jenkins-BFA-style loop (every signature pattern ``re.search``
  on every line), Python ``re`` over the whole text per pattern, and hyperscan (dev only);
* cold start of ``resilient-runtime analyze --log 1MB.log --no-store`` (median of N fresh
  processes) next to ``python -c pass``, with and without a bytecode cache;
* import time of the analysis path (``python -X importtime``).

Speed goals are ratios in this report, never assertions in tests.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "runtime" / "analysis" / "data" / "signature_samples.yaml"
SIZE_MB = int(os.environ.get("RT_BENCH_MB", "10"))
COLD_RUNS = int(os.environ.get("RT_BENCH_COLD_RUNS", "7"))
SLOW_MB = int(os.environ.get("RT_BENCH_SLOW_MB", "2"))

# ------------------------------------------------------------------ a realistic CI log

_NOISE = [
    "{ts} INFO  [worker-{n}] processed item {i} in {f:.3f}s status=ok",
    "{ts} DEBUG http GET https://api.internal/v1/items/{i} 200 {n}ms",
    "   Compiling serde_json v1.0.{n} (/build/vendor/serde_json)",
    "  Downloaded tokio v1.{n}.0",
    "tests/unit/test_module_{n}.py::test_case_{i} PASSED                      [{p:3d}%]",
    "=== RUN   TestHandler_{i}",
    "--- PASS: TestHandler_{i} (0.{n:02d}s)",
    "ok  \tgithub.com/org/service/pkg/part{n}\t0.{n:03d}s",
    "[INFO] Downloading from central: https://repo.maven.apache.org/maven2/org/x/lib{n}/1.{n}/lib{n}-1.{n}.pom",
    "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/x/lib{n}/1.{n}/lib{n}-1.{n}.jar ({n} kB at {i} kB/s)",
    "npm http fetch GET 200 https://registry.npmjs.org/pkg-{n} {n}ms (cache miss)",
    "Receiving objects:  {p}% ({i}/{j}), {n}.{n} MiB | {n}.00 MiB/s",
    "Step {n}/{j} : RUN apt-get install -y libfoo{n}-dev",
    " ---> Running in 3f{i:08x}",
    "{ts} {{\"level\":\"info\",\"msg\":\"request served\",\"path\":\"/api/{i}\",\"latency_ms\":{n}}}",
    "  File \"/app/service/handlers/h{n}.py\", line {i}, in handle",
    "gcc -O2 -Wall -c src/module{n}.c -o build/module{n}.o",
    "{ts} WARN  retrying connection to cache (attempt {n}/5)",
    "PASS src/components/Widget{n}.test.tsx ({f:.2f} s)",
    "    at Object.<anonymous> (/app/node_modules/lib{n}/index.js:{i}:{n})",
]


def _failure_lines() -> list[str]:
    import yaml

    data = yaml.safe_load(SAMPLES.read_text(encoding="utf-8"))
    return [line for entry in data.values() for line in entry.get("match", [])]


def generate_log(size_bytes: int, *, failure_ratio: float = 0.03, seed: int = 20260601) -> bytes:
    """A CI-like log: mostly noise, ``failure_ratio`` of lines from real failure shapes."""
    rng = random.Random(seed)
    failures = _failure_lines()
    out: list[str] = []
    total = 0
    i = 0
    while total < size_bytes:
        i += 1
        if rng.random() < failure_ratio:
            line = rng.choice(failures)
        else:
            n = rng.randint(1, 99)
            line = rng.choice(_NOISE).format(
                ts=f"2026-06-01T12:{i // 3600 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
                n=n, i=i, j=i + n, f=rng.random() * 3, p=min(100, i % 101),
            )  # fmt: skip
        out.append(line)
        total += len(line) + 1
    return ("\n".join(out) + "\n").encode("utf-8")


# ------------------------------------------------------------------ engines


def _patterns() -> list[tuple[str, str]]:
    from resilient_templates.runtime.analysis.knowledge import builtin

    return [(sig.name, p) for sig in builtin() for p in sig.patterns]


def naive_bfa(data: bytes) -> set[str]:
    """Jenkins BFA style: every pattern of every signature, ``re.search`` on every line."""
    compiled = [(name, re.compile(p)) for name, p in _patterns()]
    found = set()
    for line in data.decode("utf-8", errors="replace").splitlines():
        for name, regex in compiled:
            if regex.search(line):
                found.add(name)
    return found


def python_re_whole_text(data: bytes) -> set[str]:
    compiled = [(name, re.compile(p.encode(), re.M)) for name, p in _patterns()]
    return {name for name, regex in compiled if regex.search(data)}


def engine_scan(data: bytes) -> set[str]:
    """What the runtime does with a log: one Set pass, then each signature's evidence line."""
    from resilient_templates.runtime.analysis.api import analyzer

    scan = analyzer().engine.scan(data)
    for name in scan.names():
        scan.evidence_line(name)
    return set(scan.names())


def hyperscan_database():  # type: ignore[no-untyped-def]
    """The patterns compiled for hyperscan, or None when it is not installed (dev only)."""
    try:
        import hyperscan
    except ImportError:
        return None
    exprs, flags = [], []
    for _name, p in _patterns():
        # Hyperscan reports no captures: named groups become plain groups.
        exprs.append(re.sub(r"\(\?P<\w+>", "(", p).encode())
        flags.append(hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_SINGLEMATCH
                     | hyperscan.HS_FLAG_ALLOWEMPTY)  # fmt: skip
    db = hyperscan.Database()
    try:
        db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs),
                   flags=flags)  # fmt: skip
    except hyperscan.error:
        return None
    return db


def hyperscan_scan(db, data: bytes) -> set[str]:  # type: ignore[no-untyped-def]
    pats = _patterns()
    found: set[str] = set()

    def on_match(pid: int, start: int, end: int, fl: int, ctx: object) -> None:
        found.add(pats[pid][0])

    db.scan(data, match_event_handler=on_match)
    return found


def _throughput(fn, data: bytes, *, repeat: int = 1) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(data)
        best = min(best, time.perf_counter() - start)
    return len(data) / 1e6 / best, result


# ------------------------------------------------------------------ cold start


def _median_wall(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False, timeout=120)  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_start(log_path: str, runs: int, quiet_log: str) -> dict[str, float]:
    py = sys.executable
    analyze = [py, "-m", "resilient_templates.runtime", "analyze", "--log", log_path, "--no-store"]
    quiet = [py, "-m", "resilient_templates.runtime", "analyze", "--log", quiet_log, "--no-store"]
    env = {k: v for k, v in os.environ.items() if k not in ("RT_STATE_URL",)}
    results = {}
    nocache = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory(prefix="rt-pyc-") as prefix:
        cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = prefix
        subprocess.run(analyze, env=cached, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)  # warm the bytecode cache  # fmt: skip
        results["pass"] = _median_wall([py, "-c", "pass"], cached, runs)
        results["analyze (bytecode cached)"] = _median_wall(analyze, cached, runs)
        results["  same, log with one failure"] = _median_wall(quiet, cached, runs)
    results["analyze (no bytecode cache)"] = _median_wall(analyze, nocache, runs)
    return results


def import_time() -> dict[str, float]:
    """Cumulative import time (``-X importtime``, bytecode cached) of the analysis modules."""
    py = sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = {}
    with tempfile.TemporaryDirectory(prefix="rt-pyc-") as prefix:
        env["PYTHONPYCACHEPREFIX"] = prefix
        for module in ("resilient_templates.runtime.analysis",
                       "resilient_templates.runtime.analysis.cli",
                       "resilient_templates.runtime.analysis.api"):  # fmt: skip
            subprocess.run([py, "-c", f"import {module}"], env=env, check=False)  # warm
            proc = subprocess.run([py, "-X", "importtime", "-c", f"import {module}"],
                                  capture_output=True, text=True, env=env, check=False)  # fmt: skip
            total = 0
            for line in proc.stderr.splitlines():
                if line.rstrip().endswith(f"| {module}"):
                    total = int(line.split("|")[1])
            out[module] = total / 1000
    return out


# ------------------------------------------------------------------ report


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    data = generate_log(SIZE_MB * 1_000_000)
    print(f"## analysis (log {len(data) / 1e6:.1f} MB, {len(_patterns())} patterns, one run)")
    engine_scan(data[:1000])  # compile the Set outside the measurement
    engine_mbs, _ = _throughput(engine_scan, data, repeat=3)
    # The slow baselines run on the first SLOW_MB of the same log (their MB/s do not depend
    # on the length; the full 10 MB would take minutes for the naive loop).
    prefix = data[: data.find(b"\n", SLOW_MB * 1_000_000) + 1]
    naive_mbs, naive_found = _throughput(naive_bfa, prefix)
    py_mbs, _ = _throughput(python_re_whole_text, prefix)
    rows = [
        ("naive loop (re.search per line per pattern)*", naive_mbs),
        ("python re, each pattern over the whole text*", py_mbs),
        ("engine: re2 Set + second pass (runtime)", engine_mbs),
    ]
    db = hyperscan_database()
    if db is not None:
        hs_mbs, _ = _throughput(lambda d: hyperscan_scan(db, d), data, repeat=3)
        rows.append(("hyperscan (dev only; no captures)", hs_mbs))
    for label, mbs in rows:
        print(f"  {label:<46} {mbs:9.1f} MB/s  {mbs / naive_mbs:7.1f}x naive")
    print(f"  (* on the first {SLOW_MB} MB of the same log)")
    on_prefix = engine_scan(prefix)
    same = "yes" if on_prefix == naive_found else f"NO ({sorted(on_prefix ^ naive_found)})"
    print(f"  engine finds the same signatures as the naive loop (same text): {same}")
    print(f"  goal >= 10x naive: {'met' if engine_mbs >= 10 * naive_mbs else 'NOT met'} "
          f"({engine_mbs / naive_mbs:.0f}x)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rt-bench-") as tmp:
        log = os.path.join(tmp, "1MB.log")
        Path(log).write_bytes(generate_log(1_000_000, seed=7))
        quiet = os.path.join(tmp, "1MB-one-failure.log")
        Path(quiet).write_bytes(generate_log(1_000_000, seed=7, failure_ratio=0.0)
                                + b"npm ERR! code E503\n")  # fmt: skip
        cold = cold_start(log, COLD_RUNS, quiet)
    base = cold["pass"]
    print(f"  cold start, median of {COLD_RUNS} fresh processes (analyze --log 1MB.log --no-store;"
          " 1MB.log has ~3 % failure lines of ~90 kinds, a worst case):")  # fmt: skip
    for label, seconds in cold.items():
        extra = "" if label == "pass" else f"  (+{(seconds - base) * 1000:.0f} ms over python -c pass)"
        print(f"    {label:<30} {seconds * 1000:7.0f} ms{extra}")
    for module, ms in import_time().items():
        print(f"  import {module:<44} {ms:6.1f} ms (bytecode cached)")


if __name__ == "__main__":
    main()
