"""Measure the failure analyzer against the labelled corpus (``make eval``).

The analyzer runs in a subprocess through its batch interface and sees only ``id`` and ``text``
of each corpus line, never the labels:

    .venv/bin/resilient-runtime analyze --jsonl IN.jsonl --no-store

It prints one JSON line per input with at least ``id``, ``category``, ``transient``,
``confidence`` and ``signature``. This script compares those answers with the labels and prints
per-category precision/recall, accuracy, coverage, transient accuracy, the rate of confidently
wrong answers, a confusion matrix and a reliability table, then the goals with PASS/MISS.

The figures are a report, not a gate: the exit code is 0 whatever they are, and non-zero only
when the harness itself cannot run (unreadable corpus, bad arguments).

    python tests/eval/evaluate.py                 # the real analyzer
    python tests/eval/evaluate.py --json          # machine-readable results
    python tests/eval/evaluate.py --command 'python my_stand_in.py'
    python tests/eval/evaluate.py --corpus tests/eval/holdout.jsonl --title held-out
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CORPUS = HERE / "corpus.jsonl"

CATEGORIES = (
    "infrastructure",
    "configuration",
    "external_dependency",
    "code_quality",
    "resource_exhaustion",
)
UNKNOWN = "unknown"

#: The goals of issue 3, item 7.
GOAL_CATEGORY_ACCURACY = 0.90
GOAL_TRANSIENT_ACCURACY = 0.90
GOAL_CONFIDENTLY_WRONG = 0.02
CONFIDENT = 0.8

#: Reliability-table buckets: [low, high) except the last, which includes 1.0.
BUCKETS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 0.9), (0.9, 1.0))

TIMEOUT_SECONDS = 600


class HarnessError(Exception):
    """The harness itself cannot run (as opposed to the analyzer failing)."""


@dataclass(frozen=True)
class Labelled:
    id: str
    text: str
    category: str
    transient: bool


@dataclass(frozen=True)
class Answer:
    category: str
    transient: bool | None
    confidence: float
    signature: str | None


@dataclass
class Report:
    total: int
    answered: int
    missing: list[str] = field(default_factory=list)
    error: str | None = None
    per_category: dict[str, dict[str, float | int]] = field(default_factory=dict)
    category_accuracy: float = 0.0
    coverage: float = 0.0
    transient_accuracy: float = 0.0
    transient_accuracy_known: float | None = None
    confidently_wrong_rate: float = 0.0
    confidently_wrong: list[str] = field(default_factory=list)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    reliability: list[dict[str, float | int | str | None]] = field(default_factory=list)
    goals: dict[str, dict[str, float | bool]] = field(default_factory=dict)
    wrong: list[dict[str, object]] = field(default_factory=list)


def default_command() -> list[str]:
    """The real analyzer: the installed console script, else the module."""
    script = REPO / ".venv" / "bin" / "resilient-runtime"
    if script.exists():
        return [str(script), "analyze"]
    return [sys.executable, "-m", "resilient_templates.runtime", "analyze"]


def load_corpus(path: Path) -> list[Labelled]:
    """Read the labelled corpus; a malformed line is a harness error naming the line."""
    items: list[Labelled] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read the corpus: {exc.strerror}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(
                Labelled(row["id"], row["text"], row["category"], bool(row["transient"]))
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise HarnessError(f"{path}:{number}: not a labelled corpus line ({exc})") from exc
    if not items:
        raise HarnessError(f"{path}: the corpus is empty")
    return items


def run_analyzer(command: list[str], items: list[Labelled]) -> tuple[dict[str, Answer], str | None]:
    """Send ids and texts (never labels) to the analyzer; return its answers by id.

    A failing analyzer is reported, not raised: the answers parsed so far are kept and the
    error says what happened.
    """
    with tempfile.TemporaryDirectory(prefix="rt-eval-") as tmp:
        infile = Path(tmp) / "in.jsonl"
        with infile.open("w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps({"id": item.id, "text": item.text}) + "\n")
        argv = [*command, "--jsonl", str(infile), "--no-store"]
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                cwd=REPO,
            )
        except FileNotFoundError:
            return {}, f"analyzer command not found: {shlex.join(argv)}"
        except subprocess.TimeoutExpired:
            return {}, f"analyzer did not finish within {TIMEOUT_SECONDS}s: {shlex.join(argv)}"
    answers, bad = parse_answers(proc.stdout)
    error = None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        error = f"analyzer exited with {proc.returncode}: {tail}"
    elif bad:
        error = f"{bad} output line(s) were not analysis JSON"
    return answers, error


def parse_answers(stdout: str) -> tuple[dict[str, Answer], int]:
    """Parse the analyzer's JSON lines; count the lines that are not answers."""
    answers: dict[str, Answer] = {}
    bad = 0
    for line in stdout.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            category = str(row.get("category") or UNKNOWN)
            transient = row.get("transient")
            answers[str(row["id"])] = Answer(
                category=category if category in CATEGORIES else UNKNOWN,
                transient=transient if isinstance(transient, bool) else None,
                confidence=float(row.get("confidence") or 0.0),
                signature=row.get("signature"),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            bad += 1
    return answers, bad


def ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def score(items: list[Labelled], answers: dict[str, Answer], error: str | None) -> Report:
    """Compare answers with labels. A missing answer counts as ``unknown``."""
    missing = [item.id for item in items if item.id not in answers]
    unknown = Answer(UNKNOWN, None, 0.0, None)
    pairs = [(item, answers.get(item.id, unknown)) for item in items]
    total = len(pairs)
    report = Report(total=total, answered=total - len(missing), missing=missing, error=error)

    labels = (*CATEGORIES, UNKNOWN)
    report.confusion = {
        gold: {guess: 0 for guess in labels} for gold in CATEGORIES
    }
    for item, answer in pairs:
        report.confusion[item.category][answer.category] += 1

    for category in CATEGORIES:
        true_pos = report.confusion[category][category]
        predicted = sum(report.confusion[gold][category] for gold in CATEGORIES)
        support = sum(report.confusion[category].values())
        precision = ratio(true_pos, predicted)
        recall = ratio(true_pos, support)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report.per_category[category] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
            "predicted": predicted,
        }

    correct = [item.category == answer.category for item, answer in pairs]
    known = [answer.category != UNKNOWN for _, answer in pairs]
    report.category_accuracy = ratio(sum(correct), total)
    report.coverage = ratio(sum(known), total)

    transient_ok = [answer.transient is item.transient for item, answer in pairs]
    report.transient_accuracy = ratio(sum(transient_ok), total)
    known_pairs = [ok for ok, is_known in zip(transient_ok, known) if is_known]
    report.transient_accuracy_known = ratio(sum(known_pairs), len(known_pairs)) if known_pairs else None

    report.confidently_wrong = [
        item.id
        for item, answer in pairs
        if answer.category != UNKNOWN
        and answer.category != item.category
        and answer.confidence >= CONFIDENT
    ]
    report.confidently_wrong_rate = ratio(len(report.confidently_wrong), total)

    for index, (low, high) in enumerate(BUCKETS):
        last = index == len(BUCKETS) - 1
        in_bucket = [
            (item, answer)
            for item, answer in pairs
            if answer.category != UNKNOWN
            and low <= answer.confidence
            and (answer.confidence <= high if last else answer.confidence < high)
        ]
        hits = sum(item.category == answer.category for item, answer in in_bucket)
        mean_conf = (
            sum(answer.confidence for _, answer in in_bucket) / len(in_bucket) if in_bucket else None
        )
        report.reliability.append(
            {
                "bucket": f"[{low:.1f}, {high:.1f}{']' if last else ')'}",
                "count": len(in_bucket),
                "mean_confidence": mean_conf,
                "accuracy": ratio(hits, len(in_bucket)) if in_bucket else None,
            }
        )

    report.goals = {
        "category_accuracy": {
            "value": report.category_accuracy,
            "goal": GOAL_CATEGORY_ACCURACY,
            "pass": report.category_accuracy >= GOAL_CATEGORY_ACCURACY,
        },
        "transient_accuracy": {
            "value": report.transient_accuracy,
            "goal": GOAL_TRANSIENT_ACCURACY,
            "pass": report.transient_accuracy >= GOAL_TRANSIENT_ACCURACY,
        },
        "confidently_wrong_rate": {
            "value": report.confidently_wrong_rate,
            "goal": GOAL_CONFIDENTLY_WRONG,
            "pass": report.confidently_wrong_rate <= GOAL_CONFIDENTLY_WRONG,
        },
    }

    report.wrong = [
        {
            "id": item.id,
            "label": item.category,
            "answer": answer.category,
            "confidence": answer.confidence,
            "signature": answer.signature,
            "transient_label": item.transient,
            "transient_answer": answer.transient,
        }
        for item, answer in pairs
        if item.category != answer.category or answer.transient is not item.transient
    ]
    return report


def pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def render(report: Report, show_wrong: bool, title: str | None = None) -> str:
    """The human-readable report; ``title`` names the corpus in the first line."""
    out: list[str] = []
    name = f" ({title})" if title else ""
    out.append(
        f"Failure-analysis evaluation{name}: "
        f"{report.total} labelled texts, {report.answered} answered"
    )
    if report.error:
        out.append(f"ANALYZER PROBLEM: {report.error}")
    if report.missing:
        out.append(f"no answer for {len(report.missing)} text(s) (counted as unknown)")
    out.append("")
    out.append(f"{'category':<22}{'precision':>10}{'recall':>9}{'f1':>9}{'support':>9}")
    for category, row in report.per_category.items():
        out.append(
            f"{category:<22}{pct(row['precision']):>10}{pct(row['recall']):>9}"
            f"{pct(row['f1']):>9}{row['support']:>9}"
        )
    out.append("")
    out.append(f"category accuracy (unknown = wrong)   {pct(report.category_accuracy)}")
    out.append(f"coverage (answered non-unknown)       {pct(report.coverage)}")
    out.append(f"transient accuracy (all lines)        {pct(report.transient_accuracy)}")
    out.append(f"transient accuracy (non-unknown)      {pct(report.transient_accuracy_known)}")
    out.append(
        f"confidently wrong (conf >= {CONFIDENT}, wrong) {pct(report.confidently_wrong_rate)}"
        f"  ({len(report.confidently_wrong)} text(s))"
    )
    out.append("")
    out.append("confusion matrix (rows: label, columns: answer)")
    short = {
        "infrastructure": "infra",
        "configuration": "config",
        "external_dependency": "extdep",
        "code_quality": "code",
        "resource_exhaustion": "resrc",
        "unknown": "unknown",
    }
    columns = (*CATEGORIES, UNKNOWN)
    out.append(f"{'':<22}" + "".join(f"{short[c]:>9}" for c in columns))
    for gold in CATEGORIES:
        out.append(f"{gold:<22}" + "".join(f"{report.confusion[gold][c]:>9}" for c in columns))
    out.append("")
    out.append("reliability (non-unknown answers by confidence)")
    out.append(f"{'bucket':<14}{'count':>7}{'mean conf':>11}{'accuracy':>10}")
    for row in report.reliability:
        mean = row["mean_confidence"]
        out.append(
            f"{row['bucket']:<14}{row['count']:>7}"
            f"{('   -  ' if mean is None else f'{mean:6.2f}'):>11}{pct(row['accuracy']):>10}"
        )
    out.append("")
    out.append("goals")
    names = {
        "category_accuracy": ("category accuracy", ">="),
        "transient_accuracy": ("transient accuracy", ">="),
        "confidently_wrong_rate": ("confidently wrong", "<="),
    }
    for key, goal in report.goals.items():
        name, op = names[key]
        verdict = "PASS" if goal["pass"] else "MISS"
        out.append(f"  {name:<20}{pct(goal['value'])}  goal {op} {pct(goal['goal']).strip():<6} {verdict}")
    if show_wrong and report.wrong:
        out.append("")
        out.append("wrong answers (id: label -> answer @confidence [signature]; transient label/answer)")
        for row in report.wrong:
            out.append(
                f"  {row['id']}: {row['label']} -> {row['answer']} @{row['confidence']:.2f}"
                f" [{row['signature']}]; transient {row['transient_label']}/{row['transient_answer']}"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="labelled JSONL corpus")
    parser.add_argument(
        "--command",
        help="analyzer command to run instead of the real one; it receives "
        "'--jsonl IN.jsonl --no-store' appended",
    )
    parser.add_argument("--title", help="name of the corpus, shown in the report's first line")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument("--show-wrong", action="store_true", help="list every wrong answer")
    args = parser.parse_args(argv)

    try:
        items = load_corpus(args.corpus)
    except HarnessError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    command = shlex.split(args.command) if args.command else default_command()
    answers, error = run_analyzer(command, items)
    report = score(items, answers, error)
    if args.json:
        print(json.dumps(report.__dict__, indent=2, sort_keys=True))
    else:
        print(render(report, args.show_wrong, args.title))
    if error:
        print(f"evaluate: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
