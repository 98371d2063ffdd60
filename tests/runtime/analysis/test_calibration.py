"""Calibration check on the development examples: confident answers are right answers.

Run with ``-s`` to see the reliability table (confidence bin, answers, accuracy). These are
development examples (data/dev_examples.yaml, written from the signatures' message shapes, and
data/public_examples.yaml, adapted from public failure reports with their sources); the
signatures were tuned on them, so the figures are a regression gate, not a measurement:
``make eval`` measures the separate corpus.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from resilient_templates.policy.taxonomy import Category
from resilient_templates.runtime.analysis.analyzer import FailureInput
from resilient_templates.runtime.analysis.api import analyzer

DATA = Path(__file__).parent / "data"
EXAMPLES = [
    *yaml.safe_load((DATA / "dev_examples.yaml").read_text()),
    *yaml.safe_load((DATA / "public_examples.yaml").read_text()),
]
BINS = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 0.95), (0.95, 1.0)]


def _rows() -> list[dict]:
    an = analyzer()
    rows = []
    for example in EXAMPLES:
        inp = FailureInput(
            log=(example.get("text") or "").encode(),
            exit_code=example.get("exit_code"),
            pod_reason=example.get("pod_reason"),
            node_message=example.get("node_message") or "",
        )
        verdict, _h, _n = an.classify(inp)
        guess = verdict.guess.category.value if verdict.guess else "unknown"
        rows.append({
            "id": example["id"], "truth": example["category"], "answer": verdict.category.value,
            "guess": guess, "confidence": verdict.guess_confidence,
            "transient_right": verdict.transient == example["transient"],
        })  # fmt: skip
    return rows


def reliability_table(rows: list[dict]) -> list[tuple[str, int, float | None]]:
    """(bin, examples with a guess in the bin, accuracy of the guess)."""
    table = []
    for low, high in BINS:
        inside = [r for r in rows if r["guess"] != "unknown"
                  and low <= r["confidence"] < (high if high < 1.0 else 1.01)]  # fmt: skip
        right = sum(r["guess"] == r["truth"] for r in inside)
        table.append((f"[{low:.2f}, {high:.2f})", len(inside), right / len(inside) if inside else None))
    return table


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _rows()


def test_print_the_reliability_table(rows):
    """The table is printed (pytest -s) and every confident bin is at least as accurate as its floor."""
    print("\nconfidence bin      n   accuracy of the best guess")
    for label, n, accuracy in reliability_table(rows):
        print(f"  {label:<14} {n:4d}   {'-' if accuracy is None else f'{accuracy:.2f}'}")
    for (low, _high), (_label, n, accuracy) in zip(BINS, reliability_table(rows)):
        if low >= 0.5 and n:
            assert accuracy >= low, f"bin from {low} is {accuracy:.2f} accurate"


def test_confident_answers_are_right_at_least_90_percent_of_the_time(rows):
    """Answers at or above the threshold have a category precision of at least 0.9."""
    answered = [r for r in rows if r["answer"] != "unknown"]
    precision = sum(r["answer"] == r["truth"] for r in answered) / len(answered)
    assert precision >= 0.9


def test_confidently_wrong_answers_are_at_most_2_percent(rows):
    """At most 2 % of all examples get a wrong category above the threshold."""
    wrong = [r["id"] for r in rows if r["answer"] not in ("unknown", r["truth"])]
    assert len(wrong) <= 0.02 * len(rows), wrong


def test_examples_without_a_readable_cause_are_not_answered(rows):
    """Texts labelled unknown (nothing specific to read) get `unknown`, not a guess."""
    for row in rows:
        if row["truth"] == Category.UNKNOWN.value:
            assert row["answer"] == "unknown", row["id"]


def test_transient_is_right_for_confident_answers(rows):
    """Transient is right for at least 90 % of the answered examples."""
    answered = [r for r in rows if r["answer"] != "unknown"]
    assert sum(r["transient_right"] for r in answered) >= 0.9 * len(answered)


def test_most_examples_with_a_cause_are_answered(rows):
    """Coverage: at least 85 % of the examples that have a readable cause are answered."""
    with_cause = [r for r in rows if r["truth"] != "unknown"]
    answered = [r for r in with_cause if r["answer"] != "unknown"]
    assert len(answered) >= 0.85 * len(with_cause)


def test_public_examples_name_their_source_and_a_known_label():
    """Every example adapted from a public report names it, and is labelled in the taxonomy."""
    public = yaml.safe_load((DATA / "public_examples.yaml").read_text())
    ids = [e["id"] for e in EXAMPLES]
    assert len(ids) == len(set(ids)), "example ids must be unique"
    for example in public:
        assert example["source"].startswith("https://"), example["id"]
        assert example["category"] in {c.value for c in Category if c is not Category.UNKNOWN}
        assert isinstance(example["transient"], bool) and example["note"], example["id"]
