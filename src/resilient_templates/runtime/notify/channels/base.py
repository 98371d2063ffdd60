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

__all__ = [
    "Channel",
    "HttpResponse",
    "SecretError",
    "USER_AGENT",
    "classify_http",
    "clip",
    "json_size",
    "network_failure",
    "parse_retry_after",
    "post",
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


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    error = f"HTTP {status}" + (f": {_one_line(reason)}" if reason.strip() else "")
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
    return SendResult(ok=False, retryable=retryable, error=redact_text(_one_line(text)))


def secret_failure(channel: str, exc: SecretError) -> SendResult:
    return SendResult(ok=False, retryable=False, error=redact_text(f"channel {channel}: {exc}"))


# --------------------------------------------------------------------------- limits


def clip(text: str, limit: int, *, marker: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, ending with ``marker`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def clip_tail(text: str, limit: int, *, marker: str = "…") -> str:
    """The last ``limit`` characters of ``text`` (a log's end matters most), whole lines."""
    if len(text) <= limit:
        return text
    tail = text[-(limit - len(marker) - 1):]
    newline = tail.find("\n")
    if 0 <= newline < len(tail) // 2:
        tail = tail[newline + 1:]
    return marker + "\n" + tail


def json_size(obj: Any) -> int:
    """Bytes of ``obj`` as compact UTF-8 JSON (what goes on the wire)."""
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def encode_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


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
