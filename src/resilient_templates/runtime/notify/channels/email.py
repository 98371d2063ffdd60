"""Email over SMTP (``smtplib``): STARTTLS and AUTH when configured, text + HTML alternatives.

The rendered body is ``{"subject", "text", "html", "from", "to", "date", "thread"}``. At send
time the message gets ``Message-ID: <idempotency_key@from-domain>``, so a retried send is
recognisably the same message, and ``In-Reply-To``/``References`` pointing at the incident's
first message, so mail clients thread an incident. The HTML part is autoescaped by its
template: failure text cannot inject markup.

Settings: ``smtp_host``, ``smtp_port`` (587), ``starttls`` (true), ``ssl`` (implicit TLS,
false), ``username``, ``password``/``password_file``, ``from``, ``to``, ``hello``,
``tls_ca_file``, ``tls_insecure_skip_verify``, ``allow_insecure_auth`` (false). AUTH is only
done over TLS (STARTTLS or implicit): without TLS the password would travel in clear, so the
config check refuses it and ``send`` fails for good, unless ``allow_insecure_auth: true``
(a trusted local relay).

``timeout`` bounds the whole exchange (connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA), not
each step, so a send never outlives its outbox lease or rate-limit permit.

SMTP replies 4xx (and dropped connections, timeouts) are retryable; 5xx and a refused login
are final; a server that does not offer STARTTLS when it is required is final (no downgrade).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime
from typing import Any

from ..notification import Notification, OutboundMessage, SendResult, idempotency_key
from ..templates import Templates, notification_context
from .base import (
    ChannelBase,
    SecretError,
    clip,
    clip_tail,
    network_failure,
    redact_obj,
    redact_text,
    resolve,
    resolve_setting,
    secret_failure,
)

__all__ = ["EmailChannel", "MAX_DETAILED", "message_id"]

#: Failures shown in full (with their log tail); the rest of a group is listed.
MAX_DETAILED = 5
LOG_LIMIT = 20_000
SUBJECT_LIMIT = 250


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip("> ") or "resilient-templates"


def message_id(key: str, sender: str) -> str:
    return f"<{key}@{_domain(sender)}>"


class _Deadline:
    """A total deadline for one SMTP exchange. smtplib's ``timeout`` bounds each socket
    operation, so a relay answering each of a dozen commands just in time could stretch one
    send to many timeouts, beyond the outbox lease and the rate-limit permit. Before every
    command and every reply the socket gets only what is left of the deadline."""

    sock: socket.socket | None

    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        self.deadline = deadline  # set first: connecting already reads the greeting
        super().__init__(*args, **kwargs)

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the SMTP exchange took longer than its timeout")
        if self.sock is not None:
            self.sock.settimeout(remaining)

    def send(self, s: Any) -> None:
        self._arm()
        super().send(s)  # type: ignore[misc]

    def getreply(self) -> tuple[int, bytes]:
        self._arm()
        return super().getreply()  # type: ignore[misc]


class _SMTP(_Deadline, smtplib.SMTP):
    pass


class _SMTPSSL(_Deadline, smtplib.SMTP_SSL):
    pass


def _client(host: str, port: int, *, hello: str | None, timeout: float, context: ssl.SSLContext | None) -> smtplib.SMTP:
    """A connected client whose whole exchange must end within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    if context is not None:
        return _SMTPSSL(host, port, local_hostname=hello, timeout=timeout, context=context, deadline=deadline)
    return _SMTP(host, port, local_hostname=hello, timeout=timeout, deadline=deadline)


def _rfc2822(created_at: str) -> str:
    try:
        when = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        return format_datetime(when)
    except ValueError:
        return created_at


class EmailChannel(ChannelBase):
    def render(self, notification: Notification) -> OutboundMessage:
        context = redact_obj(notification_context(notification, channel=self.name))
        analyses = context["analyses"]
        for a in analyses:
            a["error"]["log_tail"] = clip_tail(a["error"].get("log_tail") or "", LOG_LIMIT)
        shown = analyses[:MAX_DETAILED]
        context.update(
            shown=shown,
            others=analyses[MAX_DETAILED:],
            hidden=context["count"] - len(shown),
            include_logs=True,
        )
        templates = Templates(self.templates_dir)
        subject = " ".join(templates.render(self.type, "subject", context).text.split())
        first = idempotency_key(notification.incident_key, "firing", 0, 0, self.name)
        body = {
            "subject": clip(subject, SUBJECT_LIMIT),
            "text": templates.render(self.type, "text", context).text + "\n",
            "html": templates.render(self.type, "html", context, fmt="html").text + "\n",
            "from": str(self.settings.get("from", "")),
            "to": [str(t) for t in self.settings.get("to") or ()],
            "date": _rfc2822(notification.created_at),
            "thread": first,
        }
        return self.message(notification, redact_obj(body), templates)

    def _compose(self, message: OutboundMessage, sender: str, recipients: list[str]) -> EmailMessage:
        body = message.body
        mail = EmailMessage()
        mail["Subject"] = body["subject"]
        mail["From"] = sender
        mail["To"] = ", ".join(recipients)
        mail["Date"] = body.get("date") or format_datetime(datetime.now().astimezone())
        mail["Message-ID"] = message_id(message.idempotency_key, sender)
        thread = body.get("thread")
        if thread and thread != message.idempotency_key:
            mail["In-Reply-To"] = message_id(thread, sender)
            mail["References"] = message_id(thread, sender)
        mail["X-RT-Idempotency-Key"] = message.idempotency_key
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(body["text"])
        mail.add_alternative(body["html"], subtype="html")
        return mail

    def _tls_context(self) -> ssl.SSLContext:
        ca_file = self.settings.get("tls_ca_file")
        context = ssl.create_default_context(cafile=resolve(str(ca_file)) if ca_file else None)
        if self.settings.get("tls_insecure_skip_verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def send(self, message: OutboundMessage, *, timeout: float) -> SendResult:
        settings = self.settings
        try:
            host = resolve(str(settings.get("smtp_host", "")))
            port = int(resolve(str(settings.get("smtp_port", 587))))
            username = resolve_setting(settings, "username")
            password = resolve_setting(settings, "password")
            sender = resolve(str(message.body.get("from") or settings.get("from", "")))
            recipients = [resolve(str(t)) for t in message.body.get("to") or settings.get("to") or ()]
        except SecretError as exc:
            return secret_failure(self.name, exc)
        except ValueError:
            return SendResult(ok=False, error=f"channel {self.name}: smtp_port is not a number")
        tls = bool(settings.get("ssl")) or bool(settings.get("starttls", True))
        if username and not tls and not settings.get("allow_insecure_auth"):
            return SendResult(
                ok=False,
                error=f"channel {self.name}: refusing SMTP AUTH without TLS (the password would "
                "travel in clear); set starttls: true or ssl: true, or allow_insecure_auth: true "
                "for a trusted local relay",
            )
        try:
            mail = self._compose(message, sender, recipients)
            context = self._tls_context()
            hello = settings.get("hello") or None
            client = _client(host, port, hello=hello, timeout=timeout,
                             context=context if settings.get("ssl") else None)  # fmt: skip
            try:
                client.ehlo()
                if settings.get("starttls", True) and not settings.get("ssl"):
                    if not client.has_extn("starttls"):
                        return SendResult(
                            ok=False,
                            error=f"channel {self.name}: the SMTP server does not offer STARTTLS "
                            "(set starttls: false only for a trusted local relay)",
                        )
                    client.starttls(context=context)
                    client.ehlo()
                if username:
                    client.login(username, password or "")
                refused = client.send_message(mail, from_addr=sender, to_addrs=recipients)
            finally:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return SendResult(
                ok=False,
                status=codes[0] if codes else None,
                retryable=bool(codes) and all(400 <= c < 500 for c in codes),
                error=redact_text(f"SMTP refused every recipient: {_codes(exc.recipients)}"),
            )
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            return SendResult(
                ok=False,
                status=code,
                retryable=400 <= code < 500,
                error=redact_text(clip(f"SMTP {code}: {' '.join(text.split())}", 300)),
            )
        except smtplib.SMTPNotSupportedError as exc:
            return SendResult(ok=False, error=redact_text(f"SMTP: {exc}"))
        except Exception as exc:  # noqa: BLE001 - send() reports, never raises
            secrets = tuple(s for s in (password,) if s)
            return network_failure(exc, secrets=secrets)
        if refused:
            return SendResult(
                ok=True, status=250, error=redact_text(f"some recipients refused: {_codes(refused)}")
            )
        return SendResult(ok=True, status=250, provider_ref=str(mail["Message-ID"]))


def _codes(recipients: dict[str, Any]) -> str:
    return ", ".join(f"{rcpt} {code}" for rcpt, (code, _) in sorted(recipients.items()))
