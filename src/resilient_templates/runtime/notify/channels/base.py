"""The channel contract and what every channel shares: secrets, HTTP, results, limits.

A channel renders a ``Notification`` into an ``OutboundMessage`` (pure: the same input gives
the same bytes, no secret inside) and sends one message once (``send`` never raises, never
retries: delivery owns retries). Secrets are written in the config as ``${ENV}`` or as a
``*_file`` path (a mounted Kubernetes Secret) and resolved here, at send time, so a missing
secret fails that channel's send only.

HTTP goes through ``urllib.request`` (stdlib); redirects are refused (a webhook that
redirects a POST is misconfigured) and every error text is redacted.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ...redact import redact
from ...redact import redact_obj as _redact_obj
from ..notification import Notification, OutboundMessage, SendResult
from ..plan import ChannelPlan
from ..text import clip, clip_tail, dumps, one_line

__all__ = [
    "Channel",
    "HttpResponse",
    "SecretError",
    "USER_AGENT",
    "classify_http",
    "clip",
    "clip_tail",
    "encode_json",
    "json_size",
    "network_failure",
    "parse_retry_after",
    "post",
    "post_json",
    "redact_obj",
    "redact_text",
    "resolve",
    "resolve_setting",
]

USER_AGENT = "resilient-runtime/0.1 (+notify)"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")
#: Longest response body we read (providers answer in a few hundred bytes).
_MAX_RESPONSE_BYTES = 64 * 1024


class Channel(Protocol):
    name: str
    type: str
    rate_per_second: float

    def render(self, notification: Notification) -> OutboundMessage: ...

    def send(self, message: OutboundMessage, *, timeout: float) -> SendResult: ...


# --------------------------------------------------------------------------- redaction


def redact_text(text: str) -> str:
    """Mask secrets in ``text`` with the runtime redactor."""
    return redact(text)


def redact_obj(obj: Any) -> Any:
    """Mask secrets in every string of a JSON-like structure (a redacted copy)."""
    return _redact_obj(obj)


# --------------------------------------------------------------------------- secrets


class SecretError(Exception):
    """A secret reference could not be resolved (unset variable, unreadable file)."""


def resolve(value: str, *, environ: Mapping[str, str] | None = None) -> str:
    """Replace every ``${NAME}`` in ``value`` with the environment variable (``$$`` = ``$``)."""
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name not in env or env[name] == "":
            raise SecretError(f"environment variable {name} is not set")
        return env[name]

    return _ENV_REF.sub(substitute, value)


def resolve_setting(
    settings: Mapping[str, Any], key: str, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """The value of setting ``key``: ``${ENV}``-resolved, or read from ``key_file``."""
    value = settings.get(key)
    if value is not None:
        return resolve(str(value), environ=environ)
    path = settings.get(f"{key}_file")
    if path is None:
        return None
    path = resolve(str(path), environ=environ)
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read().strip()
    except OSError as exc:
        raise SecretError(f"cannot read {key}_file {path}: {exc.strerror}") from None
    if not content:
        raise SecretError(f"{key}_file {path} is empty")
    return content


# --------------------------------------------------------------------------- HTTP


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # a 3xx reaches the caller as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect())


def post(
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float,
    content_type: str = "application/json",
) -> HttpResponse:
    """POST ``body``; any HTTP status comes back as a response, network errors raise."""
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    request.add_header("User-Agent", USER_AGENT)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return HttpResponse(
                response.status, dict(response.headers.items()), response.read(_MAX_RESPONSE_BYTES)
            )
    except urllib.error.HTTPError as error:
        try:
            payload = error.read(_MAX_RESPONSE_BYTES)
        except (OSError, http.client.HTTPException):
            payload = b""
        finally:
            error.close()
        return HttpResponse(error.code, dict(error.headers.items()) if error.headers else {}, payload)


def post_json(
    url: str,
    body: Mapping[str, Any] | bytes,
    *,
    message: OutboundMessage,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    secrets: tuple[str, ...] = (),
) -> HttpResponse | SendResult:
    """POST ``body`` (a JSON document, or its bytes when they must be exactly these, e.g.
    signed) with the message's ``X-RT-Idempotency-Key``. A network failure comes back as its
    redacted ``SendResult`` (``url`` and ``secrets`` masked) instead of raising."""
    data = body if isinstance(body, bytes) else encode_json(body)
    sent_headers = {"X-RT-Idempotency-Key": message.idempotency_key, **(headers or {})}
    try:
        return post(url, data, headers=sent_headers, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - send() reports, never raises
        return network_failure(exc, secrets=(url, *secrets))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)


def classify_http(
    response: HttpResponse,
    *,
    ok_statuses: tuple[int, ...] = (200, 201, 202, 204),
    detail: str | None = None,
    provider_ref: str | None = None,
) -> SendResult:
    """A ``SendResult`` from an HTTP status: 429/5xx/408 retryable, other 4xx not."""
    status = response.status
    if status in ok_statuses:
        return SendResult(ok=True, status=status, provider_ref=provider_ref)
    retryable = status in (408, 425, 429) or status >= 500
    retry_after = parse_retry_after(response.headers.get("Retry-After") or _header(response, "retry-after"))
    reason = detail if detail is not None else response.text
    error = f"HTTP {status}" + (f": {one_line(reason)}" if reason.strip() else "")
    return SendResult(
        ok=False,
        status=status,
        retryable=retryable,
        retry_after=retry_after if retryable else None,
        error=redact_text(error),
        provider_ref=provider_ref,
    )


def _header(response: HttpResponse, name: str) -> str | None:
    for key, value in response.headers.items():
        if key.lower() == name:
            return value
    return None


def network_failure(exc: BaseException, *, secrets: tuple[str, ...] = ()) -> SendResult:
    """A ``SendResult`` for an exception raised while talking to a provider."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        retryable = False  # a certificate problem does not fix itself between attempts
    elif isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, ssl.SSLCertVerificationError):
        retryable = False
    elif isinstance(exc, (OSError, http.client.HTTPException, TimeoutError, socket.timeout)):
        retryable = True  # refused, reset, timed out, dropped mid-response: try again
    else:
        retryable = False
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    text = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    return SendResult(ok=False, retryable=retryable, error=redact_text(one_line(text)))


def secret_failure(channel: str, exc: SecretError) -> SendResult:
    return SendResult(ok=False, retryable=False, error=redact_text(f"channel {channel}: {exc}"))


# --------------------------------------------------------------------------- limits


def encode_json(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON, keys in their order: what goes on the wire."""
    return dumps(obj, sort_keys=False).encode("utf-8")


def json_size(obj: Any) -> int:
    """Bytes of ``obj`` on the wire."""
    return len(encode_json(obj))


def base_meta(notification: Notification) -> dict[str, Any]:
    return {
        "kind": notification.kind,
        "incident_key": notification.incident_key,
        "receiver": notification.receiver,
        "severity": notification.severity.value,
        "escalation_level": notification.escalation_level,
        "repeat": notification.repeat,
    }


@dataclass
class ChannelBase:
    """Fields every channel has; subclasses add ``render`` and ``send``."""

    plan: ChannelPlan
    templates_dir: str | None = None

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def type(self) -> str:
        return self.plan.type

    @property
    def rate_per_second(self) -> float:
        return self.plan.rate_per_second

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.plan.settings

    def resolved(self, *required: str, **defaults: str) -> dict[str, str] | SendResult:
        """Settings resolved now (``${ENV}``, ``*_file``): every key of ``required`` must have
        a value, the keys of ``defaults`` fall back to theirs. A ``SendResult`` (final) when a
        secret cannot be resolved or a required setting is empty."""
        values: dict[str, str] = {}
        try:
            for key in (*required, *defaults):
                values[key] = resolve_setting(self.settings, key) or defaults.get(key, "")
        except SecretError as exc:
            return secret_failure(self.name, exc)
        missing = [key for key in required if not values[key]]
        if missing:
            return SendResult(ok=False, error=f"channel {self.name}: no {' or '.join(missing)} configured")
        return values

    def message(
        self, notification: Notification, body: Mapping[str, Any], templates: Any = None
    ) -> OutboundMessage:
        """The outbound message; ``meta.template_problems`` lists user templates that failed."""
        meta = base_meta(notification)
        if templates is not None and templates.problems:
            meta["template_problems"] = list(templates.problems)
        return OutboundMessage(
            channel=self.name,
            channel_type=self.type,
            idempotency_key=notification.idempotency_key(self.name),
            body=body,
            meta=meta,
        )
