"""Cost of ``resilient-templates validate`` per Argo document: semantic checks vs the schema.

Documents: Argo's upstream examples (``$ARGO_SCHEMA``'s sibling ``examples/``) and generated/.
Each figure is the best of several passes over all documents, divided by the document count.
The baseline, measured side by side, is the strict JSON-schema check of the same documents:
the semantic checks are reported as a ratio of it.

Run: ``ARGO_SCHEMA=../shared/argo/schema.json .venv/bin/python tests/bench/run.py validate``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PASSES = 5


def _documents() -> list[tuple[str, dict]]:
    from resilient_templates.validate import _load_stream
    from resilient_templates.validate.schema import KINDS

    roots = [REPO / "generated"]
    schema = os.environ.get("ARGO_SCHEMA")
    if schema and (Path(schema).parent / "examples").is_dir():
        roots.insert(0, Path(schema).parent / "examples")
    docs = []
    for root in roots:
        for path in sorted(root.rglob("*.y*ml")):
            for doc in _load_stream(path)[0]:
                if isinstance(doc, dict) and doc.get("kind") in KINDS:
                    docs.append((root.name, doc))
    return docs


def _best(func, docs: list[dict]) -> float:
    best = float("inf")
    for _ in range(PASSES):
        started = time.perf_counter()
        for doc in docs:
            func(doc)
        best = min(best, time.perf_counter() - started)
    return best / len(docs)


def main() -> None:
    from resilient_templates.validate import SchemaUnavailable, default_schema
    from resilient_templates.validate.semantics import check_document

    docs = _documents()
    try:
        schema = default_schema()
    except SchemaUnavailable as exc:
        schema = None
        print(f"schema unavailable ({exc}): semantic figures only")
    print(f"{'documents':<12} {'count':>5} {'schema us/doc':>14} {'semantic us/doc':>16} {'x schema':>9}")
    for group in sorted({g for g, _ in docs}):
        subset = [d for g, d in docs if g == group]
        semantic = _best(check_document, subset)
        base = _best(schema.check, subset) if schema else float("nan")
        print(f"{group:<12} {len(subset):5d} {base * 1e6:14.0f} {semantic * 1e6:16.0f} {semantic / base:9.2f}")
