"""The state store behaves the same on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from resilient_templates.errors import StateStoreError
from resilient_templates.runtime.store import open_store


def test_migrate_runs_each_statement_once(store):
    """Statements past the recorded version run once; re-running migrate is a no-op."""
    ddl = ["CREATE TABLE t ({serial_pk}, name TEXT NOT NULL)"]
    store.migrate("demo", ddl)
    store.migrate("demo", ddl)
    store.migrate("demo", [*ddl, "ALTER TABLE t ADD COLUMN n INTEGER"])
    with store.transaction() as tx:
        tx.execute("INSERT INTO t (name, n) VALUES (?, ?)", ("a", 1))
        tx.execute("SELECT id, name, n FROM t")
        assert tx.fetchall() == [(1, "a", 1)]


def test_rollback_on_exception_keeps_nothing(store):
    """An exception inside a transaction rolls everything in it back."""
    store.migrate("demo", ["CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.execute("INSERT INTO kv VALUES (?, ?)", ("a", "1"))
        raise RuntimeError("boom")
    with store.transaction(write=False) as tx:
        assert tx.execute("SELECT count(*) FROM kv").fetchone() == (0,)


def test_upsert_and_percent_literals_are_portable(store):
    """ON CONFLICT upserts and '%' in SQL text work on both backends."""
    store.migrate("demo", ["CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"])
    for value in ("1", "2"):
        with store.transaction() as tx:
            tx.lock("kv")
            tx.execute(
                "INSERT INTO kv VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                ("a", value),
            )
    with store.transaction(write=False) as tx:
        assert tx.execute("SELECT v FROM kv WHERE k LIKE 'a%'").fetchall() == [("2",)]


def test_unknown_scheme_is_a_clear_error():
    """A URL with an unknown scheme names the expected forms, with the password masked."""
    with pytest.raises(StateStoreError, match=r"redis://u:\*\*\*@h/0.* unknown scheme"):
        open_store("redis://u:secret@h/0")


def test_unreachable_postgres_is_a_state_store_error():
    """A PostgreSQL URL nobody listens on fails fast with StateStoreError, not a traceback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StateStoreError, match="cannot connect"):
        open_store(f"postgresql://rt:pw@127.0.0.1:{port}/rt", timeout=2)


def test_sqlite_lock_held_elsewhere_times_out_as_state_store_error(tmp_path):
    """A SQLite write lock held past the timeout surfaces as StateStoreError('locked')."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    holder = open_store(url)
    holder.migrate("demo", ["CREATE TABLE kv (k TEXT)"])
    waiter = open_store(url, timeout=0.3)
    with holder.transaction():
        with pytest.raises(StateStoreError, match="locked"), waiter.transaction() as tx:
            tx.execute("INSERT INTO kv VALUES ('x')")
