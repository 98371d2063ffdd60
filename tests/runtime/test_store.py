"""The state store behaves the same on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import os
import time
import zlib

import pytest

from resilient_templates.errors import StateStoreError
from resilient_templates.runtime.store import (
    ConstraintViolation,
    advisory_key,
    default_url,
    is_default,
    open_store,
)

#: Two lock names with the same crc32 (found by search): one lock under a 32-bit key.
CRC32_TWINS = ("notify:29685295", "notify:32060020")


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



def test_constraint_violation_is_a_state_store_error_and_rolls_back(store):
    """A duplicate key raises ConstraintViolation (a one-line StateStoreError) and rolls back."""
    store.migrate("demo", ["CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"])
    with store.transaction() as tx:
        tx.execute("INSERT INTO kv VALUES (?, ?)", ("a", "1"))
    with pytest.raises(ConstraintViolation) as info, store.transaction() as tx:
        tx.execute("INSERT INTO kv VALUES (?, ?)", ("b", "1"))
        tx.executemany("INSERT INTO kv VALUES (?, ?)", [("c", "1"), ("a", "2")])
    assert isinstance(info.value, StateStoreError)
    assert info.value.exit_code == 70
    assert "constraint" in str(info.value) and "\n" not in str(info.value)
    with store.transaction(write=False) as tx:
        assert tx.execute("SELECT k, v FROM kv ORDER BY k").fetchall() == [("a", "1")]


def test_concurrent_writer_processes_serialise(store_url, tmp_path):
    """Two processes x 200 read-modify-write increments under tx.lock() lose no update."""
    import subprocess
    import sys

    store = open_store(store_url)
    store.migrate("demo", ["CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"])
    with store.transaction() as tx:
        tx.execute("INSERT INTO counter VALUES (1, 0)")
    go = tmp_path / "go"
    worker = f"""
import pathlib, sys, time
from resilient_templates.runtime.store import open_store
store = open_store({store_url!r}, timeout=30)
pathlib.Path(sys.argv[1]).touch()
deadline = time.monotonic() + 30
while not pathlib.Path({str(go)!r}).exists() and time.monotonic() < deadline:
    time.sleep(0.005)
for _ in range(200):
    with store.transaction() as tx:
        tx.lock("counter")
        (n,) = tx.execute("SELECT n FROM counter WHERE id = 1").fetchone()
        tx.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))
store.close()
"""
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", worker, str(r)]) for r in ready]
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()  # both are connected: start together
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0]
    with store.transaction(write=False) as tx:
        assert tx.execute("SELECT n FROM counter WHERE id = 1").fetchone() == (400,)
    store.close()


# ------------------------------------------------------------------ the default store


def test_default_store_is_a_private_file_in_tmpdir_not_the_working_directory(tmp_path, monkeypatch):
    """No URL and no $RT_STATE_URL opens ${TMPDIR}/rt-state.sqlite3 and leaves the cwd alone."""
    tmpdir, cwd = tmp_path / "tmp", tmp_path / "cwd"
    tmpdir.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.delenv("RT_STATE_URL", raising=False)
    monkeypatch.chdir(cwd)
    store = open_store()
    try:
        store.migrate("demo", ["CREATE TABLE t (x INTEGER)"])
    finally:
        store.close()
    path = tmpdir / "rt-state.sqlite3"
    assert path.exists() and list(cwd.iterdir()) == []
    assert path.stat().st_mode & 0o077 == 0
    assert store.url == default_url() == f"sqlite://{path}"


def test_default_store_falls_back_to_slash_tmp(monkeypatch):
    """Without $TMPDIR the default store is /tmp/rt-state.sqlite3."""
    monkeypatch.delenv("TMPDIR", raising=False)
    assert default_url() == "sqlite:///tmp/rt-state.sqlite3"


def test_is_default_tells_the_default_store_from_a_configured_one(tmp_path, monkeypatch):
    """is_default(): None without $RT_STATE_URL, or the default file itself; nothing else."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("RT_STATE_URL", raising=False)
    assert is_default(None) and is_default("")
    assert is_default(default_url())
    assert is_default(f"sqlite:///{tmp_path}/rt-state.sqlite3")  # the four-slash spelling too
    assert is_default(str(tmp_path / "rt-state.sqlite3"))
    assert not is_default(f"sqlite:///{tmp_path}/other.sqlite3")
    assert not is_default(":memory:")
    assert not is_default("postgresql://rt@127.0.0.1:5432/rt")
    monkeypatch.setenv("RT_STATE_URL", "postgresql://rt@127.0.0.1:5432/rt")
    assert not is_default(None)


# ------------------------------------------------------------------ PostgreSQL specifics


def test_advisory_lock_keys_are_64_bit_and_stable():
    """advisory_key() is a signed 64-bit BLAKE2b hash: stable, and distinct for crc32 twins."""
    a, b = CRC32_TWINS
    assert zlib.crc32(a.encode()) == zlib.crc32(b.encode())
    assert advisory_key(a) != advisory_key(b)
    assert -(2**63) <= advisory_key(a) < 2**63
    assert advisory_key("rt_schema") == int.from_bytes(
        hashlib.blake2b(b"rt_schema", digest_size=8).digest(), "big", signed=True
    )


@pytest.mark.postgres
def test_advisory_locks_on_crc32_twins_do_not_block_each_other(postgres_url):
    """Two names whose 32-bit CRCs collide take different PostgreSQL advisory locks."""
    a, b = CRC32_TWINS
    holder, waiter = open_store(postgres_url), open_store(postgres_url, timeout=0.5)
    try:
        with holder.transaction() as tx, waiter.transaction() as other:
            tx.lock(a)
            other.lock(b)  # would time out if both names mapped to one lock
    finally:
        holder.close()
        waiter.close()


@pytest.mark.postgres
def test_advisory_lock_held_elsewhere_times_out_as_state_store_error(postgres_url):
    """An advisory lock held elsewhere past the timeout surfaces as StateStoreError('locked')."""
    holder, waiter = open_store(postgres_url), open_store(postgres_url, timeout=0.3)
    try:
        with holder.transaction() as tx:
            tx.lock("outbox")
            started = time.monotonic()
            with pytest.raises(StateStoreError, match="locked"), waiter.transaction() as other:
                other.lock("outbox")
            assert time.monotonic() - started < 5
        with waiter.transaction() as other:  # released at the holder's commit; waiter still usable
            other.lock("outbox")
    finally:
        holder.close()
        waiter.close()


@pytest.mark.postgres
def test_store_reconnects_after_the_server_restarts(postgres_server, postgres_url):
    """A server restart between two transactions of one open store costs nothing: it reconnects."""
    store = open_store(postgres_url)
    try:
        store.migrate("demo", ["CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"])
        with store.transaction() as tx:
            tx.execute("INSERT INTO kv VALUES ('a', '1')")
        postgres_server.restart()
        with store.transaction() as tx:
            tx.execute("INSERT INTO kv VALUES ('b', '2')")
        with store.transaction(write=False) as tx:
            assert tx.execute("SELECT k FROM kv ORDER BY k").fetchall() == [("a",), ("b",)]
    finally:
        store.close()



@pytest.mark.postgres
def test_connection_lost_inside_a_transaction_fails_it_without_reconnecting_nested(postgres_url):
    """Losing the server mid-transaction fails it, nested blocks included; the next one works."""
    store, killer = open_store(postgres_url), open_store(postgres_url)
    try:
        store.migrate("demo", ["CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"])
        with pytest.raises(StateStoreError), store.transaction() as tx:
            tx.execute("INSERT INTO kv VALUES ('a', '1')")
            (pid,) = tx.execute("SELECT pg_backend_pid()").fetchone()
            with killer.transaction() as other:
                other.execute("SELECT pg_terminate_backend(?, 5000)", (pid,))
            with store.transaction() as nested:
                nested.execute("INSERT INTO kv VALUES ('b', '2')")
        with store.transaction(write=False) as tx:
            assert tx.execute("SELECT count(*) FROM kv").fetchone() == (0,)
    finally:
        store.close()
        killer.close()

@pytest.mark.postgres
def test_statement_timeout_defaults_to_30s_and_is_configurable(postgres_url):
    """statement_timeout: 30 s by default, else ?statement_timeout=, and the argument over both."""

    def shown(store) -> str:
        try:
            with store.transaction(write=False) as tx:
                return tx.execute("SHOW statement_timeout").fetchone()[0]
        finally:
            store.close()

    assert shown(open_store(postgres_url)) == "30s"
    assert shown(open_store(postgres_url + "?statement_timeout=5s")) == "5s"
    both = open_store(postgres_url + "?statement_timeout=5s", statement_timeout=1.5)
    assert shown(both) == "1500ms"


@pytest.mark.postgres
def test_statement_over_its_timeout_is_a_state_store_error(postgres_url):
    """A statement running past statement_timeout is cancelled: StateStoreError('timed out')."""
    store = open_store(postgres_url + "?statement_timeout=200ms")
    try:
        with pytest.raises(StateStoreError, match="timed out"), store.transaction() as tx:
            tx.execute("SELECT pg_sleep(5)")
        with store.transaction(write=False) as tx:  # the session survives the cancel
            assert tx.execute("SELECT 1").fetchone() == (1,)
    finally:
        store.close()


def test_bad_statement_timeout_in_the_url_is_a_one_line_error():
    """A statement_timeout that is no duration names itself, with the password masked."""
    expected = r"u:\*\*\*@h/db: statement_timeout='soon' is not a duration"
    with pytest.raises(StateStoreError, match=expected):
        open_store("postgresql://u:secret@h/db?statement_timeout=soon")


@pytest.mark.postgres
def test_postgres_connection_uses_tcp_keepalives(postgres_url):
    """The client socket has SO_KEEPALIVE with a 30 s idle (read off the driver's socket)."""
    import socket

    store = open_store(postgres_url)
    try:
        sock = socket.socket(fileno=os.dup(store._conn.pgconn.socket))
        with sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
    finally:
        store.close()

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
    """If another process takes the chosen port before postgres binds it, start() picks another."""
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
