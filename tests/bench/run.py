"""`make bench`: run every tests/bench/bench_*.py and print their reports.

Figures are ratios against a baseline measured side by side in the same run, reported, never
asserted: speed goals are not timed tests.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = set(argv)
    benches = sorted(HERE.glob("bench_*.py"))
    failed = 0
    for path in benches:
        name = path.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        print(f"\n=== {name} ({path.relative_to(HERE.parents[1])}) ===", flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        started = time.perf_counter()
        try:
            spec.loader.exec_module(module)
            module.main()
        except Exception as exc:  # one broken bench must not hide the others' figures
            failed += 1
            print(f"bench {name} FAILED: {type(exc).__name__}: {exc}")
        print(f"--- {name}: {time.perf_counter() - started:.1f}s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
