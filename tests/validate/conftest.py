"""Fixtures for the validator: Argo's schema, the upstream examples and the reference validator.

They come from the shared Argo reference data (``ARGO_SCHEMA``, which CI points at
``../shared/argo/schema.json``, or that path itself). On a machine without it, the tests that need
it are skipped with a reason, and the end of the run repeats loudly that schema validation was
not tested.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from resilient_templates.validate import ArgoSchema, load_schema

REPO = Path(__file__).resolve().parents[2]
SHARED_ARGO = REPO.parent / "shared" / "argo"
_skipped: list[str] = []


def _shared_argo_dir() -> Path | None:
    configured = os.environ.get("ARGO_SCHEMA")
    if configured:
        return Path(configured).resolve().parent
    return SHARED_ARGO if (SHARED_ARGO / "schema.json").is_file() else None


def _need(relative: str) -> Path:
    base = _shared_argo_dir()
    path = base / relative if base else None
    if path is None or not path.exists():
        reason = (
            f"Argo reference data {relative!r} not found (set ARGO_SCHEMA to .../shared/argo/schema.json): "
            "SCHEMA VALIDATION IS NOT TESTED"
        )
        _skipped.append(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def schema_file() -> Path:
    """Argo's published schema.json (the shared reference copy)."""
    return _need("schema.json")


@pytest.fixture(scope="session")
def strict_schema(schema_file: Path) -> ArgoSchema:
    """The strict schema, built once for the whole session."""
    return load_schema(schema_file)


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The 222 upstream example files of argo-workflows."""
    return _need("examples")


@pytest.fixture(scope="session")
def reference() -> ModuleType:
    """The shared reference validator (validate.py), imported from its own path."""
    path = _need("validate.py")
    spec = importlib.util.spec_from_file_location("argo_reference_validate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_schema_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, closed_port: int) -> dict[str, str]:
    """An environment with no ARGO_SCHEMA, an empty cache and an unreachable download URL."""
    monkeypatch.delenv("ARGO_SCHEMA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("ARGO_SCHEMA_BASE_URL", f"http://127.0.0.1:{closed_port}/argo")
    return dict(os.environ)


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SchemaServer:
    """A real HTTP server on 127.0.0.1 serving whatever bytes a test sets, logging each request."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                server.requests.append(self.path)
                self.send_response(server.status)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/argoproj/argo-workflows"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def schema_server() -> Iterator[SchemaServer]:
    server = SchemaServer()
    try:
        yield server
    finally:
        server.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.write_sep("!", "Argo schema validation was SKIPPED in tests/validate", red=True, bold=True)
        for reason in sorted(set(_skipped)):
            terminalreporter.write_line(f"!! {reason}", red=True)
