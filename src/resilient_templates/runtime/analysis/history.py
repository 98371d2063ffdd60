"""Analysis history in the state store: every analysis, similar failures, resolutions.

One table, ``analysis_history``, one row per failure (``failure_id`` is unique: analysing the
same failure again updates its row and keeps its resolution). The document column holds the
redacted FailureAnalysis JSON. The same SQL runs on SQLite and PostgreSQL (runtime/store.py).

*Similar* means the same signature at the same stage: ``similar()`` counts them over the last
``window_days`` (7) and returns the latest recorded resolution (``resolve()``), which the
analyzer turns into "seen N times in 7 days; last resolved by …" and a bounded confidence
adjustment (analyzer.adjust_for_history).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ...errors import StateStoreError
from ..model import FailureAnalysis, History

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["COMPONENT", "MIGRATIONS", "AnalysisHistory", "WINDOW_DAYS"]

COMPONENT = "analysis"
WINDOW_DAYS = 7
MIGRATIONS = [
    """CREATE TABLE IF NOT EXISTS analysis_history (
        {serial_pk},
        failure_id TEXT NOT NULL UNIQUE,
        workflow TEXT NOT NULL,
        namespace TEXT NOT NULL,
        workflow_uid TEXT NOT NULL,
        stage TEXT NOT NULL,
        signature TEXT,
        category TEXT NOT NULL,
        transient INTEGER NOT NULL,
        confidence DOUBLE PRECISION NOT NULL,
        created_at TEXT NOT NULL,
        created_ts BIGINT NOT NULL,
        document TEXT NOT NULL,
        resolution TEXT,
        resolved_at TEXT,
        resolved_ts BIGINT
    )""",
    "CREATE INDEX IF NOT EXISTS analysis_history_similar "
    "ON analysis_history (signature, stage, created_ts)",
]


class AnalysisHistory:
    """The analysis tables of one store (migrated on first use)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate(COMPONENT, MIGRATIONS)

    def record(self, analysis: FailureAnalysis) -> None:
        """Insert or update the analysis (its resolution, if any, is kept)."""
        rc = analysis.root_cause
        created_ts = _epoch(analysis.created_at)
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO analysis_history (failure_id, workflow, namespace, workflow_uid, "
                "stage, signature, category, transient, confidence, created_at, created_ts, "
                "document) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (failure_id) DO UPDATE SET signature = excluded.signature, "
                "category = excluded.category, transient = excluded.transient, "
                "confidence = excluded.confidence, document = excluded.document",
                (
                    analysis.failure_id,
                    analysis.workflow.name,
                    analysis.workflow.namespace,
                    analysis.workflow.uid,
                    analysis.stage,
                    rc.signature,
                    rc.category.value,
                    1 if rc.transient else 0,
                    float(rc.confidence),
                    analysis.created_at,
                    created_ts,
                    analysis.to_json(sort_keys=True),
                ),
            )

    def similar(self, signature: str, stage: str, *, now: float | None = None,
                window_days: int = WINDOW_DAYS, exclude: str = "") -> History:  # fmt: skip
        """Failures with this signature at this stage in the window, and the last resolution."""
        now = time.time() if now is None else now
        since = int(now) - window_days * 86400
        with self.store.transaction(write=False) as tx:
            count, last_ts = tx.execute(
                "SELECT count(*), max(created_ts) FROM analysis_history "
                "WHERE signature = ? AND stage = ? AND created_ts >= ? AND created_ts <= ? "
                "AND failure_id <> ?",
                (signature, stage, since, int(now), exclude),
            ).fetchone() or (0, None)
            row = tx.execute(
                "SELECT resolution FROM analysis_history "
                "WHERE signature = ? AND stage = ? AND resolution IS NOT NULL "
                "AND failure_id <> ? ORDER BY resolved_ts DESC, id DESC LIMIT 1",
                (signature, stage, exclude),
            ).fetchone()
        return History(
            seen_count=int(count or 0),
            window_days=window_days,
            last_seen=_rfc3339(last_ts) if last_ts is not None else None,
            last_resolution=row[0] if row else None,
        )

    def resolve(self, failure_id: str, resolution: str, *, now: float | None = None) -> None:
        """Record how a failure was resolved; StateStoreError when the id is unknown."""
        from ..redact import redact

        now = time.time() if now is None else now
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE analysis_history SET resolution = ?, resolved_at = ?, resolved_ts = ? "
                "WHERE failure_id = ?",
                (redact(resolution), _rfc3339(now), int(now), failure_id),
            )
            if tx.rowcount == 0:
                raise UnknownFailure(f"no analysis with failure id {failure_id!r} in the store")

    def get(self, failure_id: str) -> FailureAnalysis | None:
        with self.store.transaction(write=False) as tx:
            row = tx.execute(
                "SELECT document FROM analysis_history WHERE failure_id = ?", (failure_id,)
            ).fetchone()
        return FailureAnalysis.from_json(row[0]) if row else None


class UnknownFailure(StateStoreError):
    """``--resolve`` named a failure the store does not have (a usage error, exit 2)."""

    exit_code = 2


def _epoch(rfc3339: str) -> int:
    try:
        return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return int(time.time())


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
