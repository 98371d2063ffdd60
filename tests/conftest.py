"""Shared fixtures: a real PostgreSQL server, and a ``store`` parametrised over both backends.

PostgreSQL runs for real: the session fixture initialises a throwaway cluster with the
binaries on this machine (initdb, pg_ctl, postgres; .ci/run makes sure they exist), listens on
127.0.0.1 and a free port, and removes everything afterwards. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` user.

Without the binaries the PostgreSQL half of the suite is skipped with a loud reason, unless
``RT_REQUIRE_POSTGRES=1`` (set by .ci/run), where their absence is an error.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilient_templates.runtime.store import Store, open_store

PG_BIN_DIRS = ["/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin"]


def _pg_bin(name: str) -> str | None:
    for directory in [os.environ.get("RT_PG_BIN", ""), *PG_BIN_DIRS]:
        if directory and os.access(os.path.join(directory, name), os.X_OK):
            return os.path.join(directory, name)
    found = shutil.which(name)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1; ``url`` points at database ``rt``."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise FileNotFoundError("initdb/pg_ctl not found")
        self.user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="rt-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.url = f"postgresql://rt@127.0.0.1:{self.port}/rt"

    def _run(self, *args: str) -> None:
        subprocess.run(
            list(args), check=True, user=self.user, capture_output=True, timeout=60, cwd=self.root
        )

    def start(self) -> None:
        self._run(self.initdb, "-D", str(self.data), "-U", "rt", "--auth=trust", "-E", "UTF8")
        self._run(
            self.pg_ctl, "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "30",
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=400 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "start",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        import psycopg

        while True:
            try:
                with psycopg.connect(
                    f"postgresql://rt@127.0.0.1:{self.port}/postgres", autocommit=True
                ) as conn:
                    conn.execute("CREATE DATABASE rt")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def reset(self) -> None:
        """Drop every table so each test starts from an empty store."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")

    def stop(self) -> None:
        try:
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except FileNotFoundError:
        message = (
            "PostgreSQL binaries (initdb, pg_ctl) not found: the PostgreSQL half of the "
            "state-store tests is NOT running. Install postgresql or set RT_PG_BIN."
        )
        if os.environ.get("RT_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    postgres_server.reset()
    return postgres_server.url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, empty store, once per backend (SQLite file, real PostgreSQL)."""
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
