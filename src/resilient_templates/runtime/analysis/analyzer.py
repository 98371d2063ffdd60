"""Root cause from evidence: which signature, which category, and how sure.

Evidence comes from five sources, each an observation that one signature explains:

=============  =========================================================  ==================
source         what                                                       strength
=============  =========================================================  ==================
log            a log line a pattern matched (one pass, engine.py)         precision
message        the Argo node message a pattern matched                    precision
hint           the wrapper's ``rt:... signature=...`` termination hint    precision x 0.95
pod_reason     OOMKilled, Evicted, DeadlineExceeded... (given, not read   precision
               from the message: that would count it twice)
exit_code      137, 124, 127... listed by a signature                     exit_precision
=============  =========================================================  ==================

``precision`` is each signature's prior: the probability that its category is right when one
of its patterns matches. Log lines also get a ``recency`` of 0.8 (top of the tail) to 1.0
(its end): later lines weigh more when explanations compete. Collector prefixes (GitHub
Actions timestamps, BuildKit ``#10 79.31``, ``[07:51:52]``) are stripped from log lines first,
so that line-anchored patterns see the message.

1. **Lines are explained once.** When several signatures match a line, the most specific
   (highest priority) owns it; ``npm ERR! code ECONNRESET`` is npm-registry-transfer-error,
   not also connection-reset. Each signature's evidence is its latest line that it owns.
   ``role: noise`` signatures (``WARNING: Retrying (Retry(total=4...``, ``npm WARN retry``)
   own their lines but give no evidence: a retried warning is not a cause.
2. **Consequences are dropped.** A signature's evidence is removed when a signature in its
   ``suppressed_by`` has evidence other than an exit code (``ImagePullBackOff`` after
   ``toomanyrequests``; a 403 next to a GitHub rate limit).
2b. **Root cause over symptom.** ``role: symptom`` signatures (failed test runs, crashes,
   back-offs) are dropped when the best of the other explanations is a credible cause outside
   code_quality (strength >= 0.75): the test run that died of a refused database connection is
   infrastructure. The answer keeps a doubt: confidence x (1 - 0.25 x the symptom's strength),
   halved when the cause is how the pod ended (``_explain_symptoms``).
3. **Per signature**, the best evidence of each source is combined by noisy-OR across sources
   (independent observations of one event), capped at 0.99: the *strength*. The same with
   recency applied is the *score*.
4. **The winner** has the highest score; among those within 0.1 of it (a near-tie) the
   highest priority wins, then the earliest declared.
5. **Confidence** = support(winner's category) x (1 - 0.5 x support(strongest rival
   category)). Support is a noisy-OR of the category's signatures, the strongest at full
   weight, the others at half (they are seldom independent): own support from strengths,
   rival support from scores, so an old rival line counts less. When the winner is backed by
   how the pod ended (node message or pod reason), rivals seen only in log lines count half.
   Agreement raises confidence; a credible rival explanation lowers it.
6. **History** (same signature and stage seen in the last 7 days, history.py) closes part of
   the remaining gap: ``c + (1 - c) x (min(0.25, 0.05 n) + 0.05 if a resolution was
   recorded)``, never above 0.99.
7. **Below the threshold** (default 0.5) the category is ``unknown`` and no signature is
   named; the best guess stays in the description. Generic signatures (ImagePullBackOff with
   no cause shown) have a precision below 0.5, so alone they abstain; CrashLoopBackOff alone
   answers infrastructure at about 0.55, as LABELLING.md labels a crash loop with no cause.

The priors were set from how specific each message is and checked on the development
examples (``tests/runtime/analysis/test_calibration.py`` prints a reliability table over
data/dev_examples.yaml and data/public_examples.yaml, the latter adapted from public reports
with their sources); ``make eval`` measures them on the separate corpus.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ...policy.taxonomy import Category, Hint, Severity, default_severity, parse_hint
from ..model import (
    ErrorDetails,
    FailureAnalysis,
    History,
    Impact,
    Recommendation,
    RetryAdvice,
    RootCause,
    WorkflowRef,
)
from .argo import parse_node_message
from .engine import Engine, Scan
from .knowledge import KnowledgeBase, Signature, builtin

if TYPE_CHECKING:
    from .history import AnalysisHistory

__all__ = ["DEFAULT_THRESHOLD", "Analyzer", "Evidence", "FailureInput"]

DEFAULT_THRESHOLD = 0.5
NEAR_TIE = 0.1
CONFLICT_WEIGHT = 0.5
SUPPORT_DAMPING = 0.5
HINT_FACTOR = 0.95
MAX_CONFIDENCE = 0.99
DECLARED_PRECISION = 0.85  # a hint naming only a category (the stage declared it)
CAUSE_FLOOR = 0.75  # the least precision of a cause that explains symptoms away
SYMPTOM_DOUBT = 0.25  # confidence taken off per unit of symptom strength it explains
LOG_TAIL_SHOWN = 4096  # bytes of log kept in ErrorDetails.log_tail
EVIDENCE_LINES = 3
EVIDENCE_CHARS = 400

_SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
            "KILL": 9, "SEGV": 11, "PIPE": 13, "ALRM": 14, "TERM": 15}  # fmt: skip


@dataclass(frozen=True)
class FailureInput:
    """Everything known about one failed stage; every field may be missing."""

    log: bytes = b""
    log_truncated: bool = False
    stage: str = ""
    template_name: str = ""
    workflow: WorkflowRef = field(default_factory=lambda: WorkflowRef(name=""))
    exit_code: int | None = None
    signal: str | None = None
    pod_reason: str | None = None
    node_message: str = ""
    hint: Hint | None = None
    timed_out: bool = False
    attempt: int | None = None  # the attempt that failed (1-based)
    attempts: int | None = None  # attempts made so far
    max_attempts: int | None = None  # attempts the retry policy allows (limit + 1)
    retry_stopped: str | None = None  # Argo's reason for not retrying ("No more retries left")
    duration_seconds: float | None = None
    phase: str | None = None
    node: str | None = None
    stages: tuple[str, ...] = ()  # the workflow's stages in order (for blocked stages)
    degraded: tuple[str, ...] = ()
    malformed: bool = False  # some input could not be parsed (exit 65)


@dataclass(frozen=True, slots=True)
class Evidence:
    signature: Signature
    source: str  # log | message | hint | pod_reason | exit_code
    strength: float  # the source's precision for this signature
    line: str = ""
    recency: float = 1.0  # log lines: 0.8 at the top of the tail .. 1.0 at its end
    captures: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The analysis before it becomes a FailureAnalysis (also what ``--jsonl`` prints)."""

    category: Category
    transient: bool
    confidence: float
    signature: Signature | None  # None when unknown
    guess: Signature | None  # the best candidate, even below the threshold
    guess_confidence: float
    evidence: tuple[Evidence, ...]
    captures: Mapping[str, str]
    note: str = ""


class Analyzer:
    """Holds the compiled knowledge base; ``analyze`` is cheap to call many times."""

    def __init__(self, kb: KnowledgeBase | None = None, *,
                 threshold: float = DEFAULT_THRESHOLD) -> None:  # fmt: skip
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold!r}")
        self.kb = kb or builtin()
        self.engine = Engine(self.kb)
        self.threshold = threshold

    # ------------------------------------------------------------------ classification

    def classify(self, inp: FailureInput, *, history: AnalysisHistory | None = None,
                 now: float | None = None) -> tuple[Verdict, History, list[str]]:  # fmt: skip
        """The verdict, the similar-failure history and degradation notes."""
        notes: list[str] = []
        evidence = self._evidence(inp)
        evidence = _drop_suppressed(evidence)
        evidence, doubt = _explain_symptoms(evidence)
        strengths = _strengths(evidence)
        hint = _hint(inp)
        if not strengths:
            transient = bool(hint and hint.transient)
            return (
                Verdict(Category.UNKNOWN, transient, 0.0, None, None, 0.0, (), {}),
                History(),
                notes,
            )
        winner = _winner(strengths)
        terminal = any(e.signature.name == winner.name and e.source in ("message", "pod_reason")
                       for e in evidence)  # fmt: skip
        confidence = _confidence(winner, strengths, terminal) * (1.0 - doubt)
        past = History()
        if history is not None:
            try:
                past = history.similar(winner.name, inp.stage, now=now)
            except Exception as exc:  # a history problem must never lose the analysis
                notes.append(f"history unavailable: {_one_line(exc)}")
            else:
                confidence = adjust_for_history(confidence, past)
        chosen = [e for e in evidence if e.signature.name == winner.name]
        captures = self._captures(winner, chosen, inp)
        known = confidence >= self.threshold
        transient = winner.transient
        if hint and hint.signature is None and hint.category is None:
            transient = hint.transient  # the stage itself declared it (exit 75)
        verdict = Verdict(
            category=winner.category if known else Category.UNKNOWN,
            transient=transient,
            confidence=round(confidence, 4),
            signature=winner if known else None,
            guess=winner,
            guess_confidence=round(confidence, 4),
            evidence=tuple(chosen),
            captures=captures,
        )
        return verdict, past, notes

    def _evidence(self, inp: FailureInput) -> list[Evidence]:
        evidence: list[Evidence] = []
        if inp.log:
            evidence += _line_evidence(self.engine.scan(strip_line_prefixes(inp.log)), "log")
        node = parse_node_message(inp.node_message)
        if node.text:
            data = node.text.encode("utf-8", errors="replace")
            evidence += _line_evidence(self.engine.scan(data), "message")
        hint = inp.hint or node.hint
        if hint is not None:
            sig = self.kb.get(hint.signature)
            if sig is not None:
                evidence.append(Evidence(sig, "hint", sig.precision * HINT_FACTOR,
                                         line=_hint_text(hint)))  # fmt: skip
            elif hint.category not in (None, Category.UNKNOWN):
                evidence.append(Evidence(_declared(hint), "hint", DECLARED_PRECISION,
                                         line=_hint_text(hint)))  # fmt: skip
        code = _exit_code(inp, node)
        reasons = {r for r in (inp.pod_reason, "TimedOut" if inp.timed_out else None) if r}
        for sig in self.kb.signatures:
            if code is not None and code in sig.exit_codes:
                evidence.append(Evidence(sig, "exit_code", sig.exit_precision,
                                         line=f"exit code {code}"))  # fmt: skip
            for reason in reasons & set(sig.pod_reasons):
                strength = sig.precision if reason != "TimedOut" else max(sig.precision, 0.9)
                evidence.append(Evidence(sig, "pod_reason", strength, line=f"reason {reason}"))
        return evidence

    def _captures(self, sig: Signature, chosen: Sequence[Evidence],
                  inp: FailureInput) -> dict[str, str]:  # fmt: skip
        captures: dict[str, str] = {}
        for e in sorted(chosen, key=lambda e: e.source != "log"):  # message captures win
            captures.update(e.captures)
        if sig.extract:
            data = inp.log + b"\n" + inp.node_message.encode("utf-8", errors="replace")
            for key, value in self.engine.extract(sig, data).items():
                captures.setdefault(key, value)
        return captures

    # ------------------------------------------------------------------ FailureAnalysis

    def analyze(self, inp: FailureInput, *, history: AnalysisHistory | None = None,
                now: float | None = None) -> FailureAnalysis:  # fmt: skip
        now = time.time() if now is None else now
        verdict, past, notes = self.classify(inp, history=history, now=now)
        return self.build(inp, verdict, past, [*inp.degraded, *notes], now=now)

    def build(self, inp: FailureInput, verdict: Verdict, past: History,
              degraded: Sequence[str], *, now: float) -> FailureAnalysis:  # fmt: skip
        from ..redact import redact_obj

        node = parse_node_message(inp.node_message)
        attempts = inp.attempts or inp.attempt
        sig = verdict.signature
        delay = retry_delay(verdict.guess, verdict.captures, inp.hint or node.hint, now)
        budget = _budget(inp, attempts)
        severity = sig.effective_severity if sig else default_severity(verdict.category)
        analysis = FailureAnalysis(
            failure_id=failure_id(inp),
            workflow=inp.workflow,
            stage=inp.stage,
            created_at=rfc3339(now),
            error=ErrorDetails(
                message=node.text,
                exit_code=_exit_code(inp, node),
                signal=inp.signal,
                reason=inp.pod_reason or ("TimedOut" if inp.timed_out else node.reason),
                phase=inp.phase,
                node=inp.node,
                attempts=attempts,
                duration_seconds=inp.duration_seconds,
                log_tail=_shown_tail(inp.log),
            ),
            root_cause=RootCause(
                category=verdict.category,
                transient=verdict.transient,
                confidence=verdict.confidence,
                signature=sig.name if sig else None,
                description=_description(verdict, self.threshold),
                evidence=_evidence_lines(verdict),
            ),
            severity=severity,
            impact=Impact(
                blocked_stages=_blocked(inp),
                retry_budget_left=budget,
                workflow_failed=inp.workflow.status not in ("Succeeded", "Running"),
            ),
            recommendations=_recommendations(verdict, delay, now, self.threshold),
            retry_advice=_retry_advice(verdict, inp, budget, delay),
            history=past,
            degraded=tuple(dict.fromkeys(degraded)),
        )
        return FailureAnalysis.from_dict(redact_obj(analysis.to_dict()))


# --------------------------------------------------------------------------- evidence

#: Prefixes that log collectors put before every line: GitHub Actions timestamps
#: (``2024-01-02T03:04:05.1234567Z``), BuildKit step and time (``#10 79.31``), TeamCity and
#: Jenkins times (``[07:51:52]``, ``[2021-07-15T15:51:45Z]``). Signatures anchor at the start of
#: a line (``^FAILED``, ``^npm ERR!``), so the prefixes are removed before matching.
_LINE_PREFIX = re.compile(
    rb"(?m)^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z? "
    rb"|#[0-9]+ [0-9]+(?:\.[0-9]+)? "
    rb"|\[[0-9]{2}:[0-9]{2}:[0-9]{2}\][ \t]+"
    rb"|\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z?\][ \t]+)"
)


_PREFIX_PROBE = 64 << 10  # a collector prefixes every line: its first 64 KiB tell


def strip_line_prefixes(data: bytes) -> bytes:
    """The log with collector prefixes (timestamps, BuildKit steps) removed from each line."""
    if _LINE_PREFIX.search(data, 0, _PREFIX_PROBE) is None:
        return data
    return _LINE_PREFIX.sub(b"", data)


def _line_evidence(scan: Scan, source: str) -> list[Evidence]:
    """One evidence per signature: its latest line that no more specific signature owns.

    Noise signatures (retried-and-recovered warnings) give no evidence: they only own their
    lines, so that ``npm WARN retry ... ECONNRESET`` is not read as a network failure.
    """
    evidence = []
    size = max(len(scan.data), 1)
    for name in scan.names():
        sig = scan.signature(name)
        if sig.role == "noise":
            continue
        line, captures = scan.evidence_line(name)
        if line is None:
            continue
        recency = 0.8 + 0.2 * line.start / size if source == "log" else 1.0
        evidence.append(Evidence(sig, source, sig.precision, line=scan.text(line),
                                 recency=recency, captures=captures))  # fmt: skip
    return evidence


def _drop_suppressed(evidence: list[Evidence]) -> list[Evidence]:
    # An exit code alone is too weak to explain other evidence away (137 is not proof of OOM).
    present = {e.signature.name for e in evidence if e.source != "exit_code"}
    return [e for e in evidence if not present.intersection(e.signature.suppressed_by)]


def _explain_symptoms(evidence: list[Evidence]) -> tuple[list[Evidence], float]:
    """Root cause over symptom: a visible lower-level cause explains the symptoms.

    A failed test run, a crash or a back-off (``role: symptom``) is what a network failure, an
    exhausted resource, an outage or a wrong setting looks like from above. The best
    explanation among the other evidence is found first; when it is a credible cause outside
    code_quality (strength >= CAUSE_FLOOR, seen in the text, not read from an exit code), the
    symptoms are its consequences: their evidence is dropped and the cause answers. When the
    best other explanation is itself code (a compile error) or too weak, the symptoms stay and
    count as they are. An explained symptom still leaves a doubt (the test may really have
    failed on its own): ``SYMPTOM_DOUBT`` x the strongest symptom's strength, halved when the
    cause is how the pod ended (node message, pod reason). Returns (evidence, doubt).
    """
    symptoms = [e for e in evidence if e.signature.role == "symptom"]
    others = [e for e in evidence if e.signature.role != "symptom"]
    if not symptoms or not others:
        return evidence, 0.0
    cause = _winner(_strengths(others))
    shown = [e for e in others if e.signature.name == cause.name and e.source != "exit_code"]
    if cause.category is Category.CODE_QUALITY or max(
        (e.strength for e in shown), default=0.0
    ) < CAUSE_FLOOR:
        return evidence, 0.0
    doubt = SYMPTOM_DOUBT * max((e.strength for e in symptoms if e.source != "exit_code"),
                                default=0.0)  # fmt: skip
    if any(e.source in ("message", "pod_reason") for e in shown):
        doubt /= 2
    return others, doubt


@dataclass(frozen=True, slots=True)
class Strength:
    """A signature's combined evidence: ``strength`` for confidence, ``score`` for ranking."""

    signature: Signature
    strength: float  # noisy-OR over sources of each source's best precision
    score: float  # the same with log evidence weighted by recency
    log_only: bool  # every piece of evidence came from log lines


def _strengths(evidence: Sequence[Evidence]) -> dict[str, Strength]:
    best: dict[tuple[str, str], tuple[float, float]] = {}
    sigs: dict[str, Signature] = {}
    for e in evidence:
        key = (e.signature.name, e.source)
        strength, score = best.get(key, (0.0, 0.0))
        best[key] = (max(strength, e.strength), max(score, e.strength * e.recency))
        sigs[e.signature.name] = e.signature
    miss: dict[str, tuple[float, float]] = {}
    for (name, _source), (strength, score) in best.items():
        m_strength, m_score = miss.get(name, (1.0, 1.0))
        miss[name] = (m_strength * (1.0 - strength), m_score * (1.0 - score))
    sources: dict[str, set[str]] = {}
    for name, source in best:
        sources.setdefault(name, set()).add(source)
    return {
        name: Strength(sigs[name], min(MAX_CONFIDENCE, 1.0 - a), min(MAX_CONFIDENCE, 1.0 - b),
                       log_only=sources[name] == {"log"})  # fmt: skip
        for name, (a, b) in miss.items()
    }


def _winner(strengths: Mapping[str, Strength]) -> Signature:
    top = max(s.score for s in strengths.values())
    near = [s for s in strengths.values() if s.score >= top - NEAR_TIE]
    return max(near, key=lambda s: (s.signature.priority, s.score, -s.signature.order)).signature


def category_support(values: Sequence[tuple[Category, float]]) -> dict[Category, float]:
    """Noisy-OR per category: the strongest signature at full weight, the others damped."""
    by_category: dict[Category, list[float]] = {}
    for category, value in values:
        by_category.setdefault(category, []).append(value)
    support = {}
    for category, found in by_category.items():
        found.sort(reverse=True)
        miss = 1.0 - found[0]
        for value in found[1:]:
            miss *= 1.0 - SUPPORT_DAMPING * value
        support[category] = 1.0 - miss
    return support


def _confidence(winner: Signature, strengths: Mapping[str, Strength],
                terminal: bool = False) -> float:  # fmt: skip
    """Own support, lowered by the strongest rival category.

    ``terminal``: the winner is backed by how the pod ended (node message or pod reason);
    rival explanations read only from log lines then count half: the log tells what happened
    before, Kubernetes tells how it ended.
    """
    own = category_support([(s.signature.category, s.strength) for s in strengths.values()
                            if s.signature.category is winner.category])  # fmt: skip
    discount = 0.5 if terminal else 1.0
    rivals = category_support([
        (s.signature.category, s.score * (discount if s.log_only else 1.0))
        for s in strengths.values() if s.signature.category is not winner.category
    ])  # fmt: skip
    rival = max(rivals.values(), default=0.0)
    return max(0.0, min(MAX_CONFIDENCE, own[winner.category] * (1.0 - CONFLICT_WEIGHT * rival)))


def adjust_for_history(confidence: float, past: History) -> float:
    """Recurring, resolved failures are better known: close part of the gap to 1 (bounded)."""
    if past.seen_count <= 0:
        return confidence
    gain = min(0.25, 0.05 * past.seen_count) + (0.05 if past.last_resolution else 0.0)
    return min(MAX_CONFIDENCE, confidence + (1.0 - confidence) * gain)


def _declared(hint: Hint) -> Signature:
    category = hint.category or Category.UNKNOWN
    return Signature(
        name=hint.signature or f"declared-{category.value.replace('_', '-')}",
        category=category,
        transient=hint.transient,
        patterns=(),
        description=f"the stage declared a {category.value} failure",
        priority=50,
        precision=DECLARED_PRECISION,
        order=10**6,
    )


def _hint(inp: FailureInput) -> Hint | None:
    """The wrapper's hint: given explicitly, else read from the node message."""
    return inp.hint or parse_node_message(inp.node_message).hint


def _hint_text(hint: Hint) -> str:
    from ...policy.taxonomy import format_hint

    return format_hint(hint)


def _exit_code(inp: FailureInput, node: Any) -> int | None:
    if inp.exit_code is not None:
        return inp.exit_code
    if node.exit_code is not None:
        return node.exit_code
    if inp.signal:
        number = _SIGNALS.get(inp.signal.upper().removeprefix("SIG"))
        if number:
            return 128 + number
    return None


# --------------------------------------------------------------------------- the document


def failure_id(inp: FailureInput) -> str:
    """Stable for the same workflow uid (or name), namespace, stage and attempt."""
    who = inp.workflow.uid or inp.workflow.name
    attempt = inp.attempt or inp.attempts or 1
    if who:
        key = "\x1f".join([who, inp.workflow.namespace, inp.stage, str(attempt)])
    else:  # no identity: the same input gives the same id
        digest = hashlib.sha256(inp.log[-65536:] + inp.node_message.encode()).hexdigest()
        key = "\x1f".join(["anonymous", inp.stage, str(attempt), digest])
    return "fa-" + hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()[:20]


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_delay(sig: Signature | None, captures: Mapping[str, str], hint: Hint | None,
                now: float) -> int | None:  # fmt: skip
    """Seconds to wait: from a capture (reset time, Retry-After), else the default, else the hint."""
    spec = sig.retry_delay if sig else None
    if spec is None:
        return hint.delay if hint and hint.delay is not None else None
    seconds = None
    for kind in ("epoch", "rfc3339", "duration", "seconds"):
        name = getattr(spec, kind)
        value = captures.get(name) if name else None
        if value:
            seconds = _seconds(kind, value, now)
            if seconds is not None:
                break
    if seconds is None:
        seconds = spec.default
    if seconds is None:
        return None
    seconds = max(0, seconds)
    return min(seconds, spec.maximum) if spec.maximum is not None else seconds


def _seconds(kind: str, value: str, now: float) -> int | None:
    try:
        if kind == "epoch":
            return int(value) - int(now)
        if kind == "seconds":
            return int(value)
        if kind == "rfc3339":
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return int(when.timestamp() - now)
        from ...policy.duration import Duration

        return Duration.parse(value).ceil_seconds()
    except (ValueError, OverflowError, ArithmeticError):
        return None
    except Exception:  # DurationError and friends: a capture we cannot read is no delay
        return None


def human_delay(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{round(seconds / 60)}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _recommendations(verdict: Verdict, delay: int | None, now: float,
                     threshold: float) -> tuple[Recommendation, ...]:  # fmt: skip
    sig = verdict.signature
    if sig is None:
        guess = verdict.guess
        detail = (
            f"Best guess: {guess.name} ({guess.category.value}, confidence "
            f"{verdict.guess_confidence:.2f} < {threshold:.2f})."
            if guess else "No signature of the knowledge base matched."
        )
        return (
            Recommendation("Read the log tail and the node message: the cause is not known",
                           detail=detail),  # fmt: skip
            Recommendation("Add a signature for this failure (analyze --signatures FILE)"),
        )
    values = dict(verdict.captures)
    if delay is not None:
        values["delay"] = human_delay(delay)
        values["retry_at"] = rfc3339(now + delay)
    rendered = []
    for template in sig.recommendations:
        if not template.placeholders <= values.keys():
            continue
        rendered.append(Recommendation(
            action=template.action.format_map(values),
            detail=template.detail.format_map(values),
            automated=template.automated and verdict.transient,
        ))  # fmt: skip
    return tuple(rendered)


def _retry_advice(verdict: Verdict, inp: FailureInput, budget: int | None,
                  delay: int | None) -> RetryAdvice:  # fmt: skip
    hint = _hint(inp)
    declared = hint is not None and hint.signature is None and hint.category is None
    if verdict.signature is None and not declared:
        return RetryAdvice(False, None, "cause unknown: retry only if the stage is idempotent")
    if not verdict.transient:
        return RetryAdvice(False, None, "permanent: the same inputs fail the same way")
    if budget == 0:
        return RetryAdvice(False, delay, "transient, but the retry budget is exhausted")
    reason = "transient" + (f": wait {human_delay(delay)}" if delay else "")
    if declared:
        reason = "the stage declared the failure transient"
    return RetryAdvice(True, delay, reason)


def _budget(inp: FailureInput, attempts: int | None) -> int | None:
    if inp.retry_stopped:
        return 0
    if inp.max_attempts is not None and attempts is not None:
        return max(0, inp.max_attempts - attempts)
    return None


def _blocked(inp: FailureInput) -> tuple[str, ...]:
    for name in (inp.stage, inp.template_name):
        if name and name in inp.stages:
            return inp.stages[inp.stages.index(name) + 1 :]
    return ()


def _description(verdict: Verdict, threshold: float) -> str:
    if verdict.signature is not None:
        return verdict.signature.description
    if verdict.guess is None:
        return "No known failure signature matched."
    return (
        f"Unknown cause (best guess {verdict.guess.name}: {verdict.guess.description}; "
        f"confidence {verdict.guess_confidence:.2f} below {threshold:.2f})"
    )


def _evidence_lines(verdict: Verdict) -> tuple[str, ...]:
    order = {"message": 0, "pod_reason": 1, "hint": 2, "log": 3, "exit_code": 4}
    lines = []
    for e in sorted(verdict.evidence, key=lambda e: order.get(e.source, 9)):
        text = e.line if len(e.line) <= EVIDENCE_CHARS else e.line[: EVIDENCE_CHARS - 1] + "…"
        if text and text not in lines:
            lines.append(text)
    return tuple(lines[:EVIDENCE_LINES])


def _shown_tail(log: bytes) -> str:
    if not log:
        return ""
    tail = log[-LOG_TAIL_SHOWN:]
    if len(log) > LOG_TAIL_SHOWN:
        cut = tail.find(b"\n")
        tail = tail[cut + 1 :] if 0 <= cut < 512 else tail
    return tail.decode("utf-8", errors="replace")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def with_degraded(analysis: FailureAnalysis, *notes: str) -> FailureAnalysis:
    return replace(analysis, degraded=tuple(dict.fromkeys([*analysis.degraded, *notes])))
