"""Email over SMTP against a real aiosmtpd server on 127.0.0.1 (STARTTLS, AUTH, multipart)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from samples import huge_analysis, make_notification, templated_log_analysis
from servers import SmtpServer

from resilient_templates.runtime.notify.channels import build_channel
from resilient_templates.runtime.notify.channels.email import message_id
from resilient_templates.runtime.notify.plan import ChannelPlan


def email_channel(server: SmtpServer, **settings: object):  # type: ignore[no-untyped-def]
    base = {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "from": "rt@example.com",
        "to": ["team@example.com", "lead@example.com"],
    }
    return build_channel(ChannelPlan("email-team", "email", settings={**base, **settings}))


@pytest.fixture
def tls_channel(monkeypatch, smtp_server, tls_cert):  # type: ignore[no-untyped-def]
    """The email channel with STARTTLS (trusting the test CA) and AUTH from the environment."""
    monkeypatch.setenv("SMTP_USER", "rt")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    return email_channel(
        smtp_server, starttls=True, username="${SMTP_USER}", password="${SMTP_PASSWORD}", tls_ca_file=str(tls_cert[0])
    )


def test_delivers_over_starttls_with_auth(tls_channel, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """The message goes through STARTTLS, authenticates, and reaches every recipient."""
    result = tls_channel.send(tls_channel.render(make_notification()), timeout=10)
    assert result.ok and result.status == 250, result
    (record,) = smtp_server.received()
    assert (record.tls, record.auth_user) == (True, "rt")
    assert record.rcpt_tos == ["team@example.com", "lead@example.com"]
    assert record.mail_from == "rt@example.com"


def test_message_is_multipart_text_and_html(tls_channel, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """The email is multipart/alternative with a text and an HTML part carrying the root cause."""
    tls_channel.send(tls_channel.render(make_notification()), timeout=10)
    message = smtp_server.received()[0].message
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Cause: external_dependency / github-rate-limit (93% confident, transient)" in text
    assert "<code>github-rate-limit</code>" in html
    assert message["Subject"] == "[FIRING] release-7f3k2/pr_operations failed: github-rate-limit"


def test_message_id_is_stable_per_idempotency_key(tls_channel, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """Sending the same outbound message twice gives the same Message-ID (receivers can dedup)."""
    message = tls_channel.render(make_notification())
    tls_channel.send(message, timeout=10)
    tls_channel.send(message, timeout=10)
    ids = [r.message_id for r in smtp_server.received()]
    assert ids == [message_id(message.idempotency_key, "rt@example.com")] * 2
    assert smtp_server.duplicates() == {ids[0]: 2}


def test_follow_ups_thread_under_the_first_message(tls_channel, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """A reminder refers to the incident's first message, so mail clients thread them."""
    first = tls_channel.render(make_notification())
    reminder = tls_channel.render(make_notification(kind="reminder", repeat=1))
    tls_channel.send(first, timeout=10)
    tls_channel.send(reminder, timeout=10)
    initial, follow_up = (r.message for r in smtp_server.received())
    assert "In-Reply-To" not in initial
    assert follow_up["In-Reply-To"] == initial["Message-ID"] == follow_up["References"]


def test_wrong_password_is_final(monkeypatch, tls_channel, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """A refused login (535) is not retried, and the password is not in the error."""
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-pass-123")
    result = tls_channel.send(tls_channel.render(make_notification()), timeout=10)
    assert (result.ok, result.status, result.retryable) == (False, 535, False)
    assert "wrong-pass-123" not in result.error
    assert smtp_server.received() == []


def test_temporary_smtp_failure_is_retryable(tls_channel, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """A 4xx reply to DATA is retryable; a 5xx is final."""
    smtp_server.script("451 4.3.0 Try again later", "554 5.7.1 Rejected")
    message = tls_channel.render(make_notification())
    first = tls_channel.send(message, timeout=10)
    second = tls_channel.send(message, timeout=10)
    assert (first.status, first.retryable) == (451, True)
    assert (second.status, second.retryable) == (554, False)
    assert "Try again later" in first.error


def test_untrusted_certificate_is_final(monkeypatch, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """STARTTLS against a certificate we do not trust fails without retrying (no downgrade)."""
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    channel = email_channel(smtp_server, username="rt", password="${SMTP_PASSWORD}")
    result = channel.send(channel.render(make_notification()), timeout=10)
    assert (result.ok, result.retryable) == (False, False)
    assert "CERTIFICATE_VERIFY_FAILED" in result.error or "certificate verify failed" in result.error
    assert smtp_server.received() == []


def test_missing_starttls_is_refused_not_downgraded(plain_smtp_server) -> None:  # type: ignore[no-untyped-def]
    """With starttls required and a server that does not offer it, nothing is sent in clear text."""
    channel = email_channel(plain_smtp_server, starttls=True)
    result = channel.send(channel.render(make_notification()), timeout=10)
    assert (result.ok, result.retryable) == (False, False)
    assert "does not offer STARTTLS" in result.error
    assert plain_smtp_server.received() == []


def test_plain_relay_without_tls_when_configured(plain_smtp_server) -> None:  # type: ignore[no-untyped-def]
    """starttls: false sends to a trusted local relay in plain SMTP."""
    channel = email_channel(plain_smtp_server, starttls=False)
    assert channel.send(channel.render(make_notification()), timeout=10).ok
    assert plain_smtp_server.received()[0].tls is False


def test_unreachable_server_is_retryable() -> None:
    """A refused TCP connection is retryable."""
    from servers import free_port

    channel = build_channel(
        ChannelPlan("e", "email", settings={"smtp_host": "127.0.0.1", "smtp_port": free_port(), "starttls": False,
                                            "from": "rt@example.com", "to": ["team@example.com"]})
    )
    result = channel.send(channel.render(make_notification()), timeout=3)
    assert (result.ok, result.retryable) == (False, True)


def test_unset_password_variable_fails_only_this_send(plain_smtp_server) -> None:  # type: ignore[no-untyped-def]
    """An unset ${SMTP_PASSWORD} is reported by name, as a final failure of this channel."""
    channel = email_channel(plain_smtp_server, starttls=False, username="rt", password="${RT_UNSET_SMTP_PASSWORD}")
    result = channel.send(channel.render(make_notification()), timeout=3)
    assert result.error == "channel email-team: environment variable RT_UNSET_SMTP_PASSWORD is not set"


def test_password_file_is_read_at_send_time(tmp_path: Path, smtp_server, tls_cert) -> None:  # type: ignore[no-untyped-def]
    """password_file (a mounted Secret) authenticates."""
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n")
    channel = email_channel(smtp_server, username="rt", password_file=str(secret), tls_ca_file=str(tls_cert[0]))
    assert channel.send(channel.render(make_notification()), timeout=10).ok


def test_huge_analysis_email_keeps_the_log_end_only(plain_smtp_server) -> None:  # type: ignore[no-untyped-def]
    """A 2 MB log is cut to its last lines; the email stays small and names the root cause."""
    channel = email_channel(plain_smtp_server, starttls=False)
    message = channel.render(make_notification((huge_analysis(),)))
    assert len(message.body["text"]) < 60_000
    assert "FATAL: container killed: OOMKilled (memory limit 2Gi)" in message.body["text"]
    assert "Cause: resource_exhaustion / oom-killed" in message.body["text"]
    assert channel.send(message, timeout=10).ok


def test_html_part_keeps_failure_markup_inert(plain_smtp_server) -> None:  # type: ignore[no-untyped-def]
    """Script tags from a log arrive escaped in the HTML part."""
    channel = email_channel(plain_smtp_server, starttls=False)
    channel.send(channel.render(make_notification((templated_log_analysis(),))), timeout=10)
    html = plain_smtp_server.received()[0].message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.fixture
def plain_auth_server():  # type: ignore[no-untyped-def]
    """An SMTP server that offers AUTH without TLS (as some internal relays do)."""
    with SmtpServer(users={"rt": "s3cret"}) as server:
        yield server


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the point of the test
def test_auth_over_plaintext_is_refused_at_send_time(plain_auth_server) -> None:  # type: ignore[no-untyped-def]
    """A plan asking for AUTH without TLS (not allowed explicitly) never sends the password:
    the send fails for good before connecting."""
    channel = email_channel(plain_auth_server, starttls=False, username="rt", password="s3cret")
    result = channel.send(channel.render(make_notification()), timeout=10)
    assert (result.ok, result.retryable) == (False, False) and "allow_insecure_auth" in result.error
    assert plain_auth_server.received() == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_over_plaintext_when_allowed(plain_auth_server) -> None:  # type: ignore[no-untyped-def]
    """allow_insecure_auth: true logs in without TLS."""
    channel = email_channel(plain_auth_server, starttls=False, username="rt", password="s3cret",
                            allow_insecure_auth=True)  # fmt: skip
    assert channel.send(channel.render(make_notification()), timeout=10).ok
    assert plain_auth_server.received()[0].auth_user == "rt"


def test_a_slow_relay_cannot_stretch_a_send_beyond_its_timeout() -> None:
    """`timeout` bounds the whole SMTP exchange, not each command: a relay answering every
    command 0.4 s late (four commands here) fails the send, retryably, about when the 1 s
    timeout is spent, so a send never outlives its outbox lease or rate-limit permit."""
    with SmtpServer(reply_delay=0.4) as slow:
        channel = email_channel(slow, starttls=False)
        message = channel.render(make_notification())
        started = time.monotonic()
        result = channel.send(message, timeout=1.0)
        elapsed = time.monotonic() - started
    assert (result.ok, result.retryable) == (False, True)
    assert elapsed < 1.4 and slow.received() == []
