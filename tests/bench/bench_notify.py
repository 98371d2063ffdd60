"""Notification delivery under chaos and load (the figures quoted for issue 4).

* chaos: 1,000 notifications through the real pipeline to the four HTTP provider servers,
  30 % of requests faulted (drop before processing, 500, 429 with Retry-After 0.05 s, slow
  within the timeout). Baseline side by side: the same run with max_attempts=1 (a 429 does
  not count as an attempt, so only those are retried there).
* load: 120 concurrent ``resilient-runtime notify`` processes sharing one store, 40 failures
  reported 3 times each, a webhook with a 5/s budget and Slack at 1/s.

Both on SQLite and on a throwaway PostgreSQL server. Run: ``make bench`` or
``.venv/bin/python tests/bench/run.py notify``. ``RT_BENCH_NOTIFY_LOAD=0`` skips the load part.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests/runtime/notify"), str(ROOT / "tests/runtime/notify/delivery")]

from notify_scenarios import postgres_server, run_chaos, run_load  # noqa: E402


def _chaos_rows(url: str, backend: str) -> list[str]:
    ours = run_chaos(url, notifications=1000, fault_rate=0.30)
    lines = [
        f"chaos  {backend:<10} delivered {ours.delivered}/{ours.notifications} "
        f"({ours.delivered_ratio:.1%}), duplicates {ours.duplicates}, "
        f"faulted requests {ours.faulted_requests}/{ours.requests} "
        f"({ours.faulted_requests / max(1, ours.requests):.0%}), "
        f"latency p50 {ours.latency_p50_ms:.0f} ms p99 {ours.latency_p99_ms:.0f} ms "
        f"max {ours.latency_max_ms:.0f} ms, {ours.notifications / ours.seconds:.0f} notifications/s "
        f"({ours.seconds:.1f} s)",
    ]
    return lines


def _baseline_row(url: str, backend: str) -> str:
    base = run_chaos(url, notifications=1000, fault_rate=0.30, max_attempts=1)
    return (
        f"chaos  {backend:<10} BASELINE max_attempts=1 (only 429s retried, as they do not "
        f"count): delivered {base.delivered}/"
        f"{base.notifications} ({base.delivered_ratio:.1%})"
    )


def _load_row(url: str, backend: str) -> str:
    with tempfile.TemporaryDirectory(prefix="rt-bench-load-") as workdir:
        r = run_load(url, Path(workdir), processes=120)
    codes = ",".join(f"{k}:{v}" for k, v in sorted(r.exit_codes.items()))
    windows = ", ".join(
        f"{ch} {r.max_per_window[ch]}/{r.budget[ch]} per 1 s ({r.messages_per_second[ch]} msg/s)"
        for ch in sorted(r.budget)
    )
    return (
        f"load   {backend:<10} {r.processes} processes (exit {codes}), incidents {r.incidents}, "
        f"messages {sum(r.messages.values())} (unique {sum(r.unique_keys.values())}), "
        f"duplicates {r.duplicates}, busiest window vs budget: {windows}; {r.seconds:.1f} s"
    )


def main() -> None:
    logging.getLogger("resilient_templates.runtime.notify").setLevel(logging.ERROR)  # figures only
    with_load = os.environ.get("RT_BENCH_NOTIFY_LOAD", "1") != "0"
    with tempfile.TemporaryDirectory(prefix="rt-bench-notify-") as tmp:
        backends = [("sqlite", lambda name: f"sqlite:///{tmp}/{name}.sqlite3")]
        pg = None
        try:
            pg = postgres_server()
            pg.start()
        except Exception as exc:  # noqa: BLE001 - report and go on with SQLite
            print(f"(PostgreSQL not available: {type(exc).__name__}: {exc})")
            pg = None
        if pg is not None:
            def pg_url(name: str) -> str:
                pg.reset()
                return pg.url

            backends.append(("postgresql", pg_url))
        try:
            for backend, url in backends:
                for line in _chaos_rows(url("chaos"), backend):
                    print(line, flush=True)
                print(_baseline_row(url("baseline"), backend), flush=True)
                if with_load:
                    print(_load_row(url("load"), backend), flush=True)
        finally:
            if pg is not None:
                pg.stop()


if __name__ == "__main__":
    main()
