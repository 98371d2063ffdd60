"""The runtime's state store: one small interface, two backends.

* SQLite (the default): a file, for one machine or one pod with a volume.
* PostgreSQL (``postgresql://…``): a shared in-cluster store, so that every failure container
  sees the same history, rate-limit budgets, dedup records and outbox.

Features (analysis history, notification outbox, rate limits…) own their tables. They write
portable SQL with ``?`` placeholders and run it inside ``store.transaction()``; the backend
converts placeholders and maps driver errors to :class:`StateStoreError`. Write transactions
are serialised where it matters: SQLite takes the database write lock up front (``BEGIN
IMMEDIATE``); PostgreSQL offers ``tx.lock(key)``, a transaction-scoped advisory lock.

Schema changes go through ``store.migrate(component, [ddl, …])``: statements past the
component's recorded version run once, in order. ``{serial_pk}`` in DDL becomes the backend's
auto-increment primary key.

Only the stdlib is imported here; psycopg is imported when a PostgreSQL URL is opened.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ..errors import StateStoreError

__all__ = ["DEFAULT_URL_ENV", "Store", "Tx", "open_store"]

#: Environment variable naming the store URL when none is passed explicitly.
DEFAULT_URL_ENV = "RT_STATE_URL"
_DEFAULT_SQLITE = "rt-state.sqlite3"


class Tx(Protocol):
    """One open transaction."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Tx: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def fetchone(self) -> tuple[Any, ...] | None: ...
    def fetchall(self) -> list[tuple[Any, ...]]: ...
    @property
    def rowcount(self) -> int: ...
    def lock(self, key: str) -> None: ...


class Store(Protocol):
    dialect: str
    url: str

    def transaction(self, *, write: bool = True) -> contextlib.AbstractContextManager[Tx]: ...
    def migrate(self, component: str, statements: Sequence[str]) -> None: ...
    def close(self) -> None: ...


def open_store(url: str | None = None, *, timeout: float = 10.0) -> Store:
    """Open the store at ``url`` (or ``$RT_STATE_URL``, or ``./rt-state.sqlite3``).

    Accepted forms: ``sqlite:///abs/path.db``, ``sqlite:relative.db``, a bare file path,
    ``:memory:``, and ``postgresql://user@host:port/db`` (also ``postgres://``).
    ``timeout`` bounds connecting and waiting for locks, in seconds.
    """
    url = url or os.environ.get(DEFAULT_URL_ENV) or _DEFAULT_SQLITE
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, timeout=timeout)
    if url.startswith("sqlite:///"):
        path = url[len("sqlite://") :]
    elif url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
    elif "://" in url:
        raise StateStoreError(
            f"state store URL {_redact_url(url)!r} has an unknown scheme "
            "(expected sqlite:///path, a file path, or postgresql://…)"
        )
    else:
        path = url
    return SQLiteStore(path, timeout=timeout)


def _redact_url(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


_MIGRATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS rt_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


class _BaseStore:
    dialect = ""
    url = ""
    serial_pk = ""

    def transaction(self, *, write: bool = True) -> contextlib.AbstractContextManager[Tx]:
        raise NotImplementedError

    def migrate(self, component: str, statements: Sequence[str]) -> None:
        with self.transaction() as tx:
            tx.lock("rt_schema")
            tx.execute(_MIGRATIONS_DDL)
            row = tx.execute(
                "SELECT version FROM rt_schema WHERE component = ?", (component,)
            ).fetchone()
            current = row[0] if row else 0
            for statement in statements[current:]:
                tx.execute(statement.replace("{serial_pk}", self.serial_pk))
            if len(statements) > current:
                tx.execute(
                    "INSERT INTO rt_schema (component, version) VALUES (?, ?) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (component, len(statements)),
                )


# --------------------------------------------------------------------------- SQLite


class _SQLiteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._cur = conn.cursor()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _SQLiteTx:
        try:
            self._cur.execute(sql, tuple(params))
        except sqlite3.OperationalError as exc:
            raise _sqlite_error(exc) from exc
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._cur.executemany(sql, [tuple(r) for r in rows])
        except sqlite3.OperationalError as exc:
            raise _sqlite_error(exc) from exc

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def lock(self, key: str) -> None:
        """No-op: a SQLite write transaction already holds the database write lock."""


def _sqlite_error(exc: sqlite3.Error) -> StateStoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StateStoreError(f"state store is locked: {text} (another process holds it)")
    return StateStoreError(f"state store error: {text}")


class SQLiteStore(_BaseStore):
    dialect = "sqlite"
    serial_pk = "id INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str, *, timeout: float = 10.0) -> None:
        self.path = path
        self.url = path if path == ":memory:" else f"sqlite:///{os.path.abspath(path)}"
        self.timeout = timeout
        try:
            if path != ":memory:":
                parent = os.path.dirname(os.path.abspath(path))
                os.makedirs(parent, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        except (sqlite3.Error, OSError) as exc:
            raise StateStoreError(f"cannot open state store {path!r}: {exc}") from exc

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[_SQLiteTx]:
        begin = "BEGIN IMMEDIATE" if write else "BEGIN DEFERRED"
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._conn.execute(begin)
                break
            except sqlite3.OperationalError as exc:  # busy_timeout elapsed, or a WAL race
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise _sqlite_error(exc) from exc
                time.sleep(0.01)
        try:
            yield _SQLiteTx(self._conn)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise _sqlite_error(exc) from exc

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()


# --------------------------------------------------------------------------- PostgreSQL

_QMARK = re.compile(r"\?")


def _to_pg(sql: str) -> str:
    # Portable SQL uses '?' placeholders; psycopg wants %s (and literal % doubled).
    return _QMARK.sub("%s", sql.replace("%", "%%"))


class _PostgresTx:
    dialect = "postgres"

    def __init__(self, conn: Any) -> None:
        self._cur = conn.cursor()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _PostgresTx:
        import psycopg

        try:
            self._cur.execute(_to_pg(sql), tuple(params))
        except psycopg.OperationalError as exc:
            raise StateStoreError(f"state store error: {exc}".strip()) from exc
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        import psycopg

        try:
            self._cur.executemany(_to_pg(sql), [tuple(r) for r in rows])
        except psycopg.OperationalError as exc:
            raise StateStoreError(f"state store error: {exc}".strip()) from exc

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def lock(self, key: str) -> None:
        """Transaction-scoped advisory lock on ``key``; released at commit or rollback."""
        self.execute("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(key.encode()) - 2**31,))


class PostgresStore(_BaseStore):
    dialect = "postgres"
    serial_pk = "id BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = _redact_url(url)
        try:
            import psycopg
        except ImportError as exc:
            raise StateStoreError(
                "a postgresql:// state store needs psycopg "
                "(pip install 'resilient-templates[postgres]')"
            ) from exc
        try:
            self._conn = psycopg.connect(
                url,
                connect_timeout=max(1, int(timeout)),
                options=f"-c lock_timeout={int(timeout * 1000)}",
            )
        except psycopg.Error as exc:
            raise StateStoreError(
                f"cannot connect to state store {self.url}: {str(exc).strip()}"
            ) from exc

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[_PostgresTx]:
        import psycopg

        try:
            with self._conn.transaction():
                yield _PostgresTx(self._conn)
        except psycopg.OperationalError as exc:
            raise StateStoreError(f"state store error: {str(exc).strip()}") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
