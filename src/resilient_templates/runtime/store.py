"""The runtime's state store: one small interface, two backends.

* SQLite (the default): a file, for one machine or one pod with a volume. With no URL and no
  ``$RT_STATE_URL`` it is ``${TMPDIR:-/tmp}/rt-state.sqlite3`` (:func:`default_url`), a private
  store: writable in a container whose working directory is read-only, shared with nobody
  (:func:`is_default` tells callers that this is what they got).
* PostgreSQL (``postgresql://…``): a shared in-cluster store, so that every failure container
  sees the same history, rate-limit budgets, dedup records and outbox. Sessions carry TCP
  keepalives, ``lock_timeout`` (the ``timeout``) and ``statement_timeout`` (30 s by default;
  ``?statement_timeout=5s`` in the URL or the ``statement_timeout`` argument). A connection
  lost between transactions (a server restart, a failover) is replaced when the next
  transaction begins; one lost in the middle of a transaction fails that transaction.

Features (analysis history, notification outbox, rate limits…) own their tables. They write
portable SQL with ``?`` placeholders and run it inside ``store.transaction()``; the backend
converts placeholders and maps driver errors to :class:`StateStoreError` (a broken constraint,
such as a duplicate key, to its subclass :class:`ConstraintViolation`; on PostgreSQL it also
aborts the transaction, so let it propagate). Write transactions are serialised where it
matters: SQLite takes the database write lock up front (``BEGIN IMMEDIATE``); PostgreSQL
offers ``tx.lock(key)``, a transaction-scoped advisory lock on a 64-bit hash of ``key``.

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
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ..errors import StateStoreError

__all__ = [
    "DEFAULT_URL_ENV",
    "ConstraintViolation",
    "Store",
    "Tx",
    "advisory_key",
    "default_url",
    "is_default",
    "open_store",
]

#: Environment variable naming the store URL when none is passed explicitly.
DEFAULT_URL_ENV = "RT_STATE_URL"
#: File name of the default SQLite store, in ``$TMPDIR`` (else ``/tmp``).
DEFAULT_SQLITE_NAME = "rt-state.sqlite3"
#: PostgreSQL ``statement_timeout`` when neither the URL nor the caller sets one, in seconds.
DEFAULT_STATEMENT_TIMEOUT = 30.0
#: libpq TCP keepalives: a peer gone silent (node lost, NAT dropped) is noticed in about a minute.
PG_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class ConstraintViolation(StateStoreError):
    """A write broke a constraint (duplicate key, NOT NULL, CHECK, foreign key).

    Not an outage: retrying the same write fails the same way, hence ``exit_code`` 70
    (EX_SOFTWARE). Write ``INSERT … ON CONFLICT`` where a conflict is expected.
    """

    exit_code = 70


def default_url() -> str:
    """The URL of the default, private store: ``sqlite:///${TMPDIR:-/tmp}/rt-state.sqlite3``."""
    directory = os.environ.get("TMPDIR") or "/tmp"
    return "sqlite://" + _canonical_path(os.path.join(directory, DEFAULT_SQLITE_NAME))


def is_default(url: str | None) -> bool:
    """True when ``url`` names the default, private store.

    That is ``None``/empty while ``$RT_STATE_URL`` is unset (what :func:`open_store` then
    opens), or the default SQLite file itself (a default store's ``store.url``).
    """
    if not url:
        return not os.environ.get(DEFAULT_URL_ENV)
    path = _sqlite_path(url)
    return path not in (None, ":memory:") and "sqlite://" + _canonical_path(path) == default_url()


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


def open_store(
    url: str | None = None, *, timeout: float = 10.0, statement_timeout: float | None = None
) -> Store:
    """Open the store at ``url`` (or ``$RT_STATE_URL``, or :func:`default_url`).

    Accepted forms: ``sqlite:///abs/path.db``, ``sqlite:relative.db``, a bare file path,
    ``:memory:``, and ``postgresql://user@host:port/db`` (also ``postgres://``).
    ``timeout`` bounds connecting and waiting for locks, in seconds. ``statement_timeout``
    (PostgreSQL, seconds, 0 = none) overrides the URL's ``?statement_timeout=`` and the
    default of 30 s.
    """
    default = not url and not os.environ.get(DEFAULT_URL_ENV)
    url = url or os.environ.get(DEFAULT_URL_ENV) or default_url()
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, timeout=timeout, statement_timeout=statement_timeout)
    path = _sqlite_path(url)
    if path is None:
        raise StateStoreError(
            f"state store URL {_redact_url(url)!r} has an unknown scheme "
            "(expected sqlite:///path, a file path, or postgresql://…)"
        )
    return SQLiteStore(path, timeout=timeout, private=default)


def _sqlite_path(url: str) -> str | None:
    """The file a SQLite URL or bare path names (``:memory:`` as is); None for other schemes."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite://") :]
    if url.startswith("sqlite:"):
        return url[len("sqlite:") :]
    if "://" in url:
        return None
    return url


def _canonical_path(path: str) -> str:
    """Absolute, normalised, one leading slash (``sqlite:////x`` and ``sqlite:///x`` agree)."""
    absolute = os.path.abspath(path)
    return "/" + absolute.lstrip("/") if absolute.startswith("//") else absolute


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
        except (sqlite3.OperationalError, sqlite3.IntegrityError) as exc:
            raise _sqlite_error(exc) from exc
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._cur.executemany(sql, [tuple(r) for r in rows])
        except (sqlite3.OperationalError, sqlite3.IntegrityError) as exc:
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
    if isinstance(exc, sqlite3.IntegrityError):
        return ConstraintViolation(f"state store constraint violated: {text}")
    if "locked" in text or "busy" in text:
        return StateStoreError(f"state store is locked: {text} (another process holds it)")
    return StateStoreError(f"state store error: {text}")


class SQLiteStore(_BaseStore):
    dialect = "sqlite"
    serial_pk = "id INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str, *, timeout: float = 10.0, private: bool = False) -> None:
        self.path = path
        self.url = path if path == ":memory:" else "sqlite://" + _canonical_path(path)
        self.timeout = timeout
        try:
            if path != ":memory:":
                parent = os.path.dirname(os.path.abspath(path))
                os.makedirs(parent, exist_ok=True)
                if private:  # the default store sits in a shared /tmp: owner-only from the start
                    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
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
        except sqlite3.Error as exc:  # e.g. a deferred foreign key: ConstraintViolation
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
        except (psycopg.OperationalError, psycopg.IntegrityError) as exc:
            raise _pg_error(exc) from exc
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        import psycopg

        try:
            self._cur.executemany(_to_pg(sql), [tuple(r) for r in rows])
        except (psycopg.OperationalError, psycopg.IntegrityError) as exc:
            raise _pg_error(exc) from exc

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def lock(self, key: str) -> None:
        """Transaction-scoped advisory lock on ``key``; released at commit or rollback.

        Waits at most the store's ``timeout`` (``lock_timeout``), then StateStoreError('locked').
        """
        self.execute("SELECT pg_advisory_xact_lock(?)", (advisory_key(key),))


def advisory_key(key: str) -> int:
    """The PostgreSQL advisory lock id of ``key``: a signed 64-bit BLAKE2b hash.

    64 bits make two names sharing a lock negligible (a 32-bit CRC collides among ~77k
    names with even odds). Runtimes hashing differently do not exclude each other, so a
    change here must not be rolled out next to older runtimes on the same database.
    """
    import hashlib

    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _pg_error(exc: Exception) -> Exception:
    """The StateStoreError for a psycopg error; others (programming errors) come back as is."""
    import psycopg
    from psycopg import errors

    text = _one_line(exc)
    if isinstance(exc, psycopg.IntegrityError):
        return ConstraintViolation(f"state store constraint violated: {text}")
    if isinstance(exc, errors.LockNotAvailable):
        return StateStoreError(f"state store is locked: {text} (another process holds it)")
    if isinstance(exc, errors.QueryCanceled):
        return StateStoreError(f"state store timed out: {text}")
    if isinstance(exc, psycopg.OperationalError):
        return StateStoreError(f"state store error: {text}")
    return exc


_DURATION = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:us|ms|s|min|h|d)?\Z")


def _pg_settings(
    url: str, timeout: float, statement_timeout: float | None
) -> tuple[str, dict[str, Any]]:
    """The libpq URL (our own ``statement_timeout`` query parameter removed) and connect kwargs.

    Parameters the URL sets itself (``keepalives_idle=…``, ``options=…``) win over ours.
    """
    from urllib.parse import unquote

    base, _, query = url.partition("?")
    kept, url_timeout, url_options = [], None, ""
    for item in query.split("&") if query else []:
        name, _, value = item.partition("=")
        if name == "statement_timeout":
            url_timeout = unquote(value)
            continue
        if name == "options":
            url_options = unquote(value)
        kept.append(item)
    if statement_timeout is not None:
        setting = f"{max(0, round(statement_timeout * 1000))}ms"
    elif url_timeout is not None:
        if not _DURATION.match(url_timeout):
            raise StateStoreError(
                f"state store URL {_redact_url(base)}: statement_timeout={url_timeout!r} is not a "
                "duration (expected e.g. 30s, 500ms, 2min, or 0 for none)"
            )
        setting = url_timeout
    else:
        setting = f"{round(DEFAULT_STATEMENT_TIMEOUT * 1000)}ms"
    names = {item.partition("=")[0] for item in kept}
    options = f"-c lock_timeout={round(timeout * 1000)} -c statement_timeout={setting}"
    kwargs: dict[str, Any] = {
        "connect_timeout": max(1, round(timeout)),
        "options": f"{options} {url_options}".strip(),
    }
    kwargs.update({k: v for k, v in PG_KEEPALIVES.items() if k not in names})
    return base + ("?" + "&".join(kept) if kept else ""), kwargs


class PostgresStore(_BaseStore):
    dialect = "postgres"
    serial_pk = "id BIGSERIAL PRIMARY KEY"

    def __init__(
        self, url: str, *, timeout: float = 10.0, statement_timeout: float | None = None
    ) -> None:
        self.url = _redact_url(url)
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise StateStoreError(
                "a postgresql:// state store needs psycopg "
                "(pip install 'resilient-templates[postgres]')"
            ) from exc
        self._conninfo, self._connect_kwargs = _pg_settings(url, timeout, statement_timeout)
        self._conn = self._connect()
        self._depth = 0  # open transaction() blocks; only an outermost one may reconnect

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self._conninfo, **self._connect_kwargs)
        except psycopg.Error as exc:
            raise StateStoreError(
                f"cannot connect to state store {self.url}: {_one_line(exc)}"
            ) from exc

    def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = self._connect()

    def _begin(self) -> Any:
        """An entered psycopg transaction; a connection lost since the last one is replaced.

        Nothing has been sent when BEGIN fails, so reconnecting and beginning again is safe;
        a nested block (a savepoint) never reconnects: its outer transaction is lost anyway.
        """
        import psycopg

        if self._depth:
            try:
                return self._enter()
            except psycopg.OperationalError as exc:
                raise _pg_error(exc) from exc
        if self._conn.closed or self._conn.broken:
            self._reconnect()
        try:
            return self._enter()
        except psycopg.OperationalError:
            self._reconnect()  # the server went away since the last transaction
        try:
            return self._enter()
        except psycopg.OperationalError as exc:
            raise _pg_error(exc) from exc

    def _enter(self) -> Any:
        transaction = self._conn.transaction()
        transaction.__enter__()  # sends BEGIN
        return transaction

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[_PostgresTx]:
        import psycopg

        transaction = self._begin()
        self._depth += 1
        try:
            try:
                yield _PostgresTx(self._conn)
            except BaseException as exc:
                # Rolls back; psycopg logs (and swallows) a rollback failing on a dead connection.
                transaction.__exit__(type(exc), exc, exc.__traceback__)
                if isinstance(exc, (psycopg.OperationalError, psycopg.IntegrityError)):
                    raise _pg_error(exc) from exc
                raise
            try:
                transaction.__exit__(None, None, None)
            except (psycopg.OperationalError, psycopg.IntegrityError) as exc:
                raise _pg_error(exc) from exc
        finally:
            self._depth -= 1

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
