"""Fixtures: real provider servers on 127.0.0.1 (see servers.py), one per test.

``slack_server``, ``pagerduty_server``, ``teams_server``, ``webhook_server`` are HTTP servers
answering like the providers; ``smtp_server`` is aiosmtpd with AUTH (user ``rt``, password
``s3cret``) over STARTTLS with a self-signed certificate (``tls_cert``, made once with
``openssl req``); ``plain_smtp_server`` has neither, for tests about the plain path.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import (
    PagerDutyServer,
    SlackServer,
    SmtpServer,
    TeamsServer,
    WebhookServer,
    make_tls_cert,
)

SMTP_USERS = {"rt": "s3cret"}


@pytest.fixture
def slack_server() -> Iterator[SlackServer]:
    with SlackServer() as server:
        yield server


@pytest.fixture
def pagerduty_server() -> Iterator[PagerDutyServer]:
    with PagerDutyServer() as server:
        yield server


@pytest.fixture
def teams_server() -> Iterator[TeamsServer]:
    with TeamsServer() as server:
        yield server


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate for STARTTLS")
    return make_tls_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_server(tls_cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    with SmtpServer(users=SMTP_USERS, tls_cert=tls_cert, require_starttls=True) as server:
        yield server


@pytest.fixture
def plain_smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server
