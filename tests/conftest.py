"""Shared fixtures: a real PostgreSQL server, and a ``store`` parametrised over both backends.

PostgreSQL runs for real: the session fixture initialises a throwaway cluster with the
binaries on this machine (initdb, pg_ctl, postgres; .ci/run makes sure they exist), listens on
127.0.0.1 and a free port, and removes everything afterwards. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` user.

Without the binaries (or, as root, without a ``postgres`` OS user) the PostgreSQL half of
the suite is skipped with a loud reason, unless ``RT_REQUIRE_POSTGRES=1`` (set by .ci/run),
where their absence is an error. A failed start never leaves a postmaster behind, a port taken
between choosing and binding it is retried on a new one, and ``reset()`` ends sessions that a
test leaked before dropping their tables (it never waits on their locks).

Hypothesis runs under the ``rt`` profile: no per-example deadline, since a loaded 2-core CI
machine makes wall-clock deadlines flaky (``HYPOTHESIS_PROFILE`` picks another).
"""

from __future__ import annotations

import contextlib
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
from hypothesis import HealthCheck, settings

from resilient_templates.runtime.store import Store, open_store

PG_BIN_DIRS = ["/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin"]
#: pg_ctl start attempts, each on a fresh port (another process may take a free port first).
START_ATTEMPTS = 4
#: reset(): how long DROP SCHEMA may wait for a lock before the reset fails loudly.
RESET_LOCK_TIMEOUT = "10s"

settings.register_profile(
    "rt", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "rt"))


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


class PostgresUnavailable(Exception):
    """PostgreSQL cannot run here (no binaries, or no unprivileged user to run it as)."""


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1; ``url`` points at database ``rt``."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise PostgresUnavailable(
                "PostgreSQL binaries (initdb, pg_ctl) not found: "
                "install postgresql or set RT_PG_BIN"
            )
        self.user = "postgres" if os.geteuid() == 0 else None
        owner = None
        if self.user:
            try:
                owner = pwd.getpwnam(self.user)
            except KeyError:
                raise PostgresUnavailable(
                    "running as root, and PostgreSQL refuses root: the server runs as the OS user "
                    "'postgres', which does not exist (create it: useradd --system postgres, "
                    "or run the tests as an unprivileged user)"
                ) from None
        self.root = Path(tempfile.mkdtemp(prefix="rt-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "log"
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._use_port(free_port())

    @classmethod
    def or_skip(cls) -> PostgresServer:
        """A new server, or a loud skip saying why not (a failure if RT_REQUIRE_POSTGRES=1)."""
        try:
            return cls()
        except PostgresUnavailable as exc:
            message = f"{exc}: the PostgreSQL half of the state-store tests is NOT running"
            if os.environ.get("RT_REQUIRE_POSTGRES") == "1":
                pytest.fail(message)
            pytest.skip(message)

    def _use_port(self, port: int) -> None:
        self.port = port
        self.url = f"postgresql://rt@127.0.0.1:{port}/rt"

    def _run(self, *args: str) -> None:
        subprocess.run(
            list(args), check=True, user=self.user, capture_output=True, timeout=60, cwd=self.root
        )

    def start(self) -> None:
        """initdb, then start postgres (on a new port if the chosen one was taken meanwhile)."""
        self._run(self.initdb, "-D", str(self.data), "-U", "rt", "--auth=trust", "-E", "UTF8")
        for attempt in range(1, START_ATTEMPTS + 1):
            log_start = self.log.stat().st_size if self.log.exists() else 0
            try:
                self._pg_ctl_start()
                break
            except subprocess.CalledProcessError:
                log = self.log.read_text(errors="replace")[log_start:] if self.log.exists() else ""
                if "Address already in use" not in log or attempt == START_ATTEMPTS:
                    raise RuntimeError(
                        f"postgres did not start on port {self.port} (attempt {attempt}); "
                        f"server log:\n{log[-2000:]}"
                    ) from None
                self._use_port(free_port())
        self._create_database()

    def _pg_ctl_start(self) -> None:
        self._run(
            self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30",
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=400 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "start",
        )  # fmt: skip

    def restart(self) -> None:
        """Restart postgres in place (same port): every open connection is cut."""
        self._run(
            self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "-t", "30",
            "restart",
        )  # fmt: skip

    def _create_database(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
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
        """Drop every table so each test starts from an empty store.

        Sessions a previous test leaked (an unclosed store, a stuck worker) are ended first,
        so their locks cannot make DROP SCHEMA wait; ``lock_timeout`` bounds any other wait.
        """
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            conn.execute(f"SET lock_timeout = '{RESET_LOCK_TIMEOUT}'")
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")

    def stop(self) -> None:
        """Stop postgres if it runs, and remove the cluster (safe after a failed start)."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running(server: PostgresServer) -> Iterator[PostgresServer]:
    """``server`` started, and stopped (its files removed) however the start or the body ends."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running(PostgresServer.or_skip()) as server:
        yield server


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
