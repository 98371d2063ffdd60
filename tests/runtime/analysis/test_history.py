"""Analysis history behaves the same on SQLite and on a real PostgreSQL server (``store``)."""

from __future__ import annotations

import pytest

from resilient_templates.runtime.analysis import analyze_text
from resilient_templates.runtime.analysis.history import AnalysisHistory, UnknownFailure
from resilient_templates.runtime.model import WorkflowRef
from resilient_templates.runtime.store import open_store

NOW = 1764355200.0
DAY = 86400
ROOT = "OSError: [Errno 28] No space left on device\n"


def _wf(uid: str) -> WorkflowRef:
    return WorkflowRef(name="ci-main", namespace="ci", uid=uid)


def _record(store, uid: str, *, now: float, stage: str = "build", text: str = ROOT):  # type: ignore[no-untyped-def]
    return analyze_text(text, stage=stage, workflow=_wf(uid), now=now, store=store)


def test_every_analysis_is_recorded(store):
    """An analysis made with a store can be read back, redacted, by its failure id."""
    token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    analysis = _record(store, "u1", now=NOW, text=ROOT + f"token={token}\n")
    stored = AnalysisHistory(store).get(analysis.failure_id)
    assert stored == analysis
    with store.transaction(write=False) as tx:
        (document,) = tx.execute("SELECT document FROM analysis_history").fetchone()
    assert token not in document and "[REDACTED:" in document


def test_similar_failures_are_counted_over_seven_days(store):
    """Same signature and stage within the window count; older, other stage or signature do not."""
    _record(store, "old", now=NOW - 8 * DAY)
    _record(store, "a", now=NOW - 3 * DAY)
    _record(store, "b", now=NOW - 1 * DAY)
    _record(store, "other-stage", now=NOW - DAY, stage="test")
    _record(store, "other-cause", now=NOW - DAY, text="dial tcp 1.2.3.4:443: i/o timeout\n")
    history = AnalysisHistory(store).similar("disk-full", "build", now=NOW)
    assert history.seen_count == 2
    assert history.last_seen == "2025-11-27T18:40:00Z"
    assert history.summary == "seen 2 times in 7 days"


def test_a_new_analysis_carries_the_history_and_a_higher_confidence(store):
    """The third occurrence says so and is more confident than the first (bounded)."""
    first = _record(store, "a", now=NOW - 2 * DAY, text="Permission denied\n")
    _record(store, "b", now=NOW - DAY, text="Permission denied\n")
    third = _record(store, "c", now=NOW, text="Permission denied\n")
    assert third.history.seen_count == 2
    assert first.root_cause.confidence < third.root_cause.confidence <= first.root_cause.confidence + 0.15


def test_a_recorded_resolution_is_reported_for_the_next_similar_failure(store):
    """resolve() stores what fixed a failure; the next similar one reports it."""
    first = _record(store, "a", now=NOW - DAY)
    AnalysisHistory(store).resolve(first.failure_id, "cleaned the build cache volume", now=NOW - DAY + 60)
    second = _record(store, "b", now=NOW)
    assert second.history.last_resolution == "cleaned the build cache volume"
    assert second.history.summary == "seen 1 time in 7 days; last resolved by cleaned the build cache volume"


def test_recording_the_same_failure_again_keeps_its_resolution(store):
    """Re-analysing a failure updates its row without losing the resolution."""
    first = _record(store, "a", now=NOW)
    history = AnalysisHistory(store)
    history.resolve(first.failure_id, "retried by hand", now=NOW + 10)
    _record(store, "a", now=NOW + 20)
    with store.transaction(write=False) as tx:
        rows = tx.execute("SELECT failure_id, resolution FROM analysis_history").fetchall()
    assert rows == [(first.failure_id, "retried by hand")]


def test_resolving_an_unknown_failure_is_an_error(store):
    """An id that was never recorded raises UnknownFailure (exit code 2 in the CLI)."""
    with pytest.raises(UnknownFailure, match="no analysis with failure id 'fa-nope'"):
        AnalysisHistory(store).resolve("fa-nope", "x", now=NOW)


def test_resolutions_are_redacted(store):
    """A resolution text with a secret is stored redacted."""
    first = _record(store, "a", now=NOW)
    AnalysisHistory(store).resolve(first.failure_id, "rotated password=hunter2", now=NOW)
    with store.transaction(write=False) as tx:
        (resolution,) = tx.execute("SELECT resolution FROM analysis_history").fetchone()
    assert "hunter2" not in resolution


def test_a_broken_store_never_loses_the_analysis(tmp_path):
    """A store that fails gives the analysis back, degraded, saying why."""
    broken = open_store(f"sqlite:///{tmp_path / 's.db'}")
    broken.close()
    analysis = _record(broken, "a", now=NOW)
    assert analysis.root_cause.signature == "disk-full"
    assert any(note.startswith("history unavailable") for note in analysis.degraded)
