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


# ------------------------------------------------------------------ the PostgreSQL fixture itself
# tests/conftest.py starts a real server; these tests hold it to its promises (no leaked
# postmaster, no hang, no port race, a clear skip), using throwaway clusters of their own.


def _root_conftest():
    """tests/conftest.py as a module (loaded by path: several conftest.py files share the name)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "rt_tests_root_conftest"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def _postmaster_running(data_dir) -> bool:
    """True while a postmaster.pid names a live process (what a leaked server leaves behind)."""
    import os

    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.postgres
def test_fixture_stops_the_server_when_start_fails_after_the_postmaster_is_up(
    postgres_server, monkeypatch
):
    """A start that fails once postgres runs (here: creating the database) leaves no postmaster."""
    conftest = _root_conftest()
    server = conftest.PostgresServer()
    data = server.data

    def broken_create_database() -> None:
        raise RuntimeError("CREATE DATABASE failed")

    monkeypatch.setattr(server, "_create_database", broken_create_database)
    leaked = False
    try:
        with pytest.raises(RuntimeError, match="CREATE DATABASE failed"):
            with conftest.running(server):
                pass
        leaked = _postmaster_running(data)
    finally:
        if _postmaster_running(data):
            server.stop()
    assert not leaked
    assert not server.root.exists()


@pytest.mark.postgres
def test_reset_does_not_hang_on_a_lock_held_by_a_leaked_connection(postgres_server):
    """reset() ends other sessions of the test database instead of waiting on their locks."""
    import threading

    import psycopg

    leaked = psycopg.connect(postgres_server.url, autocommit=True)
    try:
        leaked.execute("CREATE TABLE leak (x INTEGER)")
        leaked.execute("BEGIN")
        leaked.execute("SELECT * FROM leak")  # holds AccessShareLock until the transaction ends
        errors: list[BaseException] = []

        def reset() -> None:
            try:
                postgres_server.reset()
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        worker = threading.Thread(target=reset, daemon=True)
        worker.start()
        worker.join(timeout=20)
        finished = not worker.is_alive()
    finally:
        leaked.close()
        worker.join(timeout=20)
    assert finished, "reset() waited on the leaked connection's lock"
    assert errors == []


@pytest.mark.postgres
def test_server_start_retries_on_another_port_when_its_port_is_taken(postgres_server, monkeypatch):
    """If another process grabs the chosen port before postgres binds it, start() picks a new one."""
    import socket

    conftest = _root_conftest()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = conftest.free_port
        monkeypatch.setattr(conftest, "free_port", lambda: next(ports, None) or real_free_port())
        server = conftest.PostgresServer()
        assert server.port == taken
        with conftest.running(server):
            assert server.port != taken
            assert f":{server.port}/" in server.url
            import psycopg

            with psycopg.connect(server.url, autocommit=True) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)


def test_missing_postgres_os_user_is_a_clear_skip(monkeypatch):
    """As root without a 'postgres' OS user the fixture skips with a reason, not a KeyError."""
    import os
    import pwd

    conftest = _root_conftest()

    def no_such_user(name: str):
        raise KeyError(f"getpwnam(): name not found: {name!r}")

    monkeypatch.setattr(conftest, "_pg_bin", lambda name: f"/usr/lib/postgresql/bin/{name}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pwd, "getpwnam", no_such_user)
    monkeypatch.delenv("RT_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="OS user 'postgres'"):
        conftest.PostgresServer.or_skip()
    monkeypatch.setenv("RT_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="OS user 'postgres'"):
        conftest.PostgresServer.or_skip()


def test_hypothesis_has_no_deadline_in_this_suite():
    """The suite's hypothesis profile drops the per-example deadline (loaded CI machines)."""
    from hypothesis import settings

    assert settings().deadline is None
