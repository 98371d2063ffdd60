"""Provider test servers on 127.0.0.1: Slack, PagerDuty, Teams Workflows, a signed webhook, SMTP.

Each HTTP server is a real ``ThreadingHTTPServer`` on a free port, run in a daemon thread,
that answers like the provider does (status codes and response bodies) and records every
request. Fault injection:

* ``server.script(Fault.drop(), Fault.error(500), ...)`` - the next requests get these, in order;
* ``server.chaos(probability, seed=..., faults=(...))`` - each request draws a fault with a seeded RNG;
* ``server.max_per_second = n`` - a real rate limit: beyond ``n`` accepted requests in the last
  second the server answers 429 with ``Retry-After: 1``.

Fault kinds: ``drop`` (request read, connection closed, nothing processed), ``drop_after``
(processed, then the connection is closed before the response: the sender cannot know it
landed, so a retry is a duplicate at the provider), ``status`` (an error status with the
provider's error body), ``rate_limited`` (429 + Retry-After), ``slow`` (processed after a
bounded delay; a client that times out has still delivered).

Every request is recorded with its outcome (``ok``, ``ok_unacknowledged``, ``rejected``,
``dropped``) and its ``X-RT-Idempotency-Key`` header; ``delivered_keys()`` counts processed
requests per key so chaos and load tests can count duplicates exactly. All methods are
thread-safe.

``SmtpServer`` wraps aiosmtpd (optional AUTH and STARTTLS) and records messages by Message-ID.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = [
    "Fault",
    "PagerDutyServer",
    "ProviderServer",
    "Recorded",
    "SlackServer",
    "SmtpServer",
    "TeamsServer",
    "WebhookServer",
    "free_port",
    "make_tls_cert",
]

#: Upper bound for any injected delay, so a misconfigured test cannot hang.
MAX_SLOW_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Fault:
    """One injected behaviour for one request."""

    kind: str  # ok | drop | drop_after | status | rate_limited | slow
    status: int = 0
    retry_after: str | None = None
    delay: float = 0.0

    @classmethod
    def ok(cls) -> Fault:
        return cls("ok")

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def drop_after(cls) -> Fault:
        return cls("drop_after")

    @classmethod
    def error(cls, status: int = 500, retry_after: str | None = None) -> Fault:
        """An error status; ``retry_after`` adds a Retry-After header (a 503 may carry one)."""
        return cls("status", status=status, retry_after=retry_after)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1") -> Fault:
        return cls("rate_limited", status=429, retry_after=retry_after)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", delay=min(float(seconds), MAX_SLOW_SECONDS))


#: The faults ``chaos()`` draws from by default: all are safe to retry without duplicates.
SAFE_FAULTS = (Fault.drop(), Fault.error(500), Fault.error(503), Fault.rate_limited("0"))


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    received_at: float
    status: int | None = None
    outcome: str = "pending"  # ok | ok_unacknowledged | rejected | dropped
    fault: str = "ok"

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("x-rt-idempotency-key")

    @property
    def processed(self) -> bool:
        return self.outcome in ("ok", "ok_unacknowledged")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})

    @classmethod
    def text(cls, status: int, text: str, **headers: str) -> Reply:
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8", **headers})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 10  # a stuck client cannot hold a server thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        return

    def do_POST(self) -> None:  # noqa: N802
        self.server.provider._handle(self)

    def do_GET(self) -> None:  # noqa: N802
        self.server.provider._reply(self, Reply.text(405, "method not allowed"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    provider: ProviderServer


class ProviderServer:
    """Base class: a recording HTTP server with fault injection; subclasses answer like a provider."""

    name = "provider"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._script: deque[Fault] = deque()
        self._chaos: tuple[float, random.Random, tuple[Fault, ...]] | None = None
        self._accepted_at: deque[float] = deque()
        self.max_per_second: float | None = None
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.provider = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True,
            name=f"{self.name}-server",
        )
        self._thread.start()

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The endpoint a channel posts to."""
        return self.base_url + self.default_path

    default_path = "/"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ProviderServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ knobs
    def script(self, *faults: Fault) -> None:
        """The next ``len(faults)`` requests get these behaviours, in order."""
        with self._lock:
            self._script.extend(faults)

    def chaos(
        self, probability: float, *, seed: int = 0, faults: Iterable[Fault] = SAFE_FAULTS
    ) -> None:
        """Each request gets a fault with ``probability``, drawn by a seeded RNG."""
        with self._lock:
            self._chaos = (probability, random.Random(seed), tuple(faults))

    def calm(self) -> None:
        """Stop injecting faults (scripted and random) and rate limiting."""
        with self._lock:
            self._script.clear()
            self._chaos = None
            self.max_per_second = None

    def reset(self) -> None:
        self.calm()
        with self._lock:
            self.requests.clear()
            self._accepted_at.clear()
            self._reset_state()

    def _reset_state(self) -> None:
        return

    # ------------------------------------------------------------------ queries
    def received(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    def delivered(self) -> list[Recorded]:
        """Requests the provider processed (whether or not the sender saw the answer)."""
        return [r for r in self.received() if r.processed]

    def delivered_keys(self) -> Counter[str]:
        """Processed requests per idempotency key (> 1 is a duplicate at the provider)."""
        return Counter(r.idempotency_key or "" for r in self.delivered())

    def duplicates(self) -> dict[str, int]:
        return {key: n for key, n in self.delivered_keys().items() if n > 1}

    def wait_for(self, count: int, *, timeout: float = 5.0) -> list[Recorded]:
        """Wait until ``count`` requests were processed (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.delivered()
            if len(done) >= count:
                return done
            time.sleep(0.01)
        return self.delivered()

    # ------------------------------------------------------------------ handling
    def _next_fault(self) -> Fault:
        with self._lock:
            if self._script:
                return self._script.popleft()
            if self._chaos is not None:
                probability, rng, faults = self._chaos
                if faults and rng.random() < probability:
                    return rng.choice(faults)
        return Fault.ok()

    def _over_rate(self, now: float) -> bool:
        with self._lock:
            if self.max_per_second is None:
                return False
            while self._accepted_at and self._accepted_at[0] <= now - 1.0:
                self._accepted_at.popleft()
            if len(self._accepted_at) >= self.max_per_second:
                return True
            self._accepted_at.append(now)
            return False

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = Recorded(
            method="POST",
            path=handler.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            received_at=time.time(),
        )
        with self._lock:
            self.requests.append(record)
        fault = self._next_fault()
        record.fault = fault.kind
        if fault.kind == "drop":
            record.outcome = "dropped"
            self._drop(handler)
            return
        if fault.kind == "status":
            reply = self.error_reply(fault.status)
            if fault.retry_after is not None:
                reply.headers["Retry-After"] = fault.retry_after
            self._finish(handler, record, reply)
            return
        if fault.kind == "rate_limited":
            self._finish(handler, record, self.rate_limited_reply(fault.retry_after))
            return
        if fault.kind == "slow":
            time.sleep(min(fault.delay, MAX_SLOW_SECONDS))
        if self._over_rate(time.monotonic()):
            record.fault = "rate_limited"
            self._finish(handler, record, self.rate_limited_reply("1"))
            return
        reply = self.answer(record)
        if fault.kind == "drop_after":
            record.status = reply.status
            record.outcome = "ok_unacknowledged" if reply.status < 300 else "rejected"
            self._drop(handler)
            return
        self._finish(handler, record, reply)

    def _finish(self, handler: _Handler, record: Recorded, reply: Reply) -> None:
        # The outcome is set before the response leaves, so a client that has its answer
        # always finds the request recorded; a failed write downgrades it afterwards.
        record.status = reply.status
        record.outcome = "rejected" if reply.status >= 300 else "ok"
        if not self._reply(handler, reply) and reply.status < 300:
            record.outcome = "ok_unacknowledged"

    @staticmethod
    def _reply(handler: _Handler, reply: Reply) -> bool:
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(reply.body)
            handler.wfile.flush()
            handler.close_connection = True
            return True
        except OSError:
            handler.close_connection = True
            return False

    @staticmethod
    def _drop(handler: _Handler) -> None:
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------------ provider behaviour
    def answer(self, record: Recorded) -> Reply:
        """The provider's answer to a request that reached it unfaulted."""
        raise NotImplementedError

    def error_reply(self, status: int) -> Reply:
        return Reply.text(status, "internal error")

    def rate_limited_reply(self, retry_after: str | None) -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return Reply.text(429, "rate_limited", **headers)


# ====================================================================== Slack

SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION_TEXT = 3000
SLACK_MAX_HEADER_TEXT = 150


def _slack_block_problem(block: Any) -> str | None:
    if not isinstance(block, dict) or "type" not in block:
        return "block without type"
    kind = block["type"]
    text = block.get("text")
    if kind == "header":
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            return "header text must be plain_text"
        if not 0 < len(text.get("text", "")) <= SLACK_MAX_HEADER_TEXT:
            return "header text length"
    elif kind == "section":
        fields = block.get("fields") or []
        if text is None and not fields:
            return "section needs text or fields"
        if text is not None and not 0 < len(text.get("text", "")) <= SLACK_MAX_SECTION_TEXT:
            return "section text length"
        if len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields):
            return "section fields"
    elif kind == "context":
        elements = block.get("elements") or []
        if not 0 < len(elements) <= 10:
            return "context elements"
    elif kind not in ("divider", "actions", "image", "rich_text"):
        return f"unknown block type {kind}"
    return None


class SlackServer(ProviderServer):
    """A Slack incoming webhook: 200 ``ok``; 400 ``invalid_payload`` / ``no_text`` /
    ``invalid_blocks``; 404 ``no_service`` for an unknown hook path; 429 ``rate_limited``."""

    name = "slack"
    default_path = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"

    def answer(self, record: Recorded) -> Reply:
        if record.path != self.default_path:
            return Reply.text(404, "no_service")
        payload = record.json
        if not isinstance(payload, dict):
            return Reply.text(400, "invalid_payload")
        blocks = payload.get("blocks")
        if not payload.get("text") and not blocks and not payload.get("attachments"):
            return Reply.text(400, "no_text")
        if blocks is not None:
            if not isinstance(blocks, list) or len(blocks) > SLACK_MAX_BLOCKS:
                return Reply.text(400, "invalid_blocks")
            if any(_slack_block_problem(b) for b in blocks):
                return Reply.text(400, "invalid_blocks")
        return Reply(200, b"ok", {"Content-Type": "text/html"})

    def error_reply(self, status: int) -> Reply:
        return Reply.text(status, "rollup_error" if status >= 500 else "invalid_payload")


# ====================================================================== PagerDuty

PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = ("critical", "error", "warning", "info")
PD_MAX_BYTES = 512 * 1024


class PagerDutyServer(ProviderServer):
    """PagerDuty Events API v2 at ``/v2/enqueue``: 202 ``{status, message, dedup_key}``,
    400 ``{status: "invalid event", message, errors}``, 429 throttle; keeps alert state."""

    name = "pagerduty"
    default_path = "/v2/enqueue"

    def __init__(self) -> None:
        self.alerts: dict[str, str] = {}  # dedup_key -> triggered | acknowledged | resolved
        self.events: list[dict[str, Any]] = []
        super().__init__()

    def _reset_state(self) -> None:
        self.alerts.clear()
        self.events.clear()

    def validate(self, event: Any, size: int) -> list[str]:
        if not isinstance(event, dict):
            return ["Event object is not a JSON object"]
        errors: list[str] = []
        if size > PD_MAX_BYTES:
            errors.append("Event object is too large (max 512 KB)")
        key = event.get("routing_key")
        if not key:
            errors.append("'routing_key' is missing or blank")
        elif len(key) != 32:
            errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        action = event.get("event_action")
        if action not in PD_ACTIONS:
            errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
        dedup = event.get("dedup_key")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not dedup:
            errors.append("'dedup_key' is required for acknowledge and resolve events")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is missing or blank")
            else:
                summary = payload.get("summary")
                if not summary:
                    errors.append("'payload.summary' is missing or blank")
                elif len(summary) > 1024:
                    errors.append("'payload.summary' is too long (max 1024 characters)")
                if not payload.get("source"):
                    errors.append("'payload.source' is missing or blank")
                if payload.get("severity") not in PD_SEVERITIES:
                    errors.append(
                        "'payload.severity' is invalid (must be one of: critical, error, warning, info)"
                    )
        return errors

    def answer(self, record: Recorded) -> Reply:
        if record.path != self.default_path:
            return Reply.json(404, {"status": "not found", "message": "Not Found"})
        event = record.json
        errors = self.validate(event, len(record.body))
        if errors:
            return Reply.json(
                400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            )
        action = event["event_action"]
        dedup = event.get("dedup_key") or hashlib.sha1(record.body).hexdigest()
        with self._lock:
            self.events.append(event)
            state = self.alerts.get(dedup)
            if action == "trigger":
                if state in (None, "resolved"):
                    self.alerts[dedup] = "triggered"
            elif state in ("triggered", "acknowledged"):
                self.alerts[dedup] = "acknowledged" if action == "acknowledge" else "resolved"
        return Reply.json(202, {"status": "success", "message": "Event processed", "dedup_key": dedup})

    def error_reply(self, status: int) -> Reply:
        return Reply.json(status, {"status": "error", "message": "Internal Server Error"})

    def rate_limited_reply(self, retry_after: str | None) -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return Reply.json(
            429,
            {"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."},
            **headers,
        )


# ====================================================================== Teams Workflows

TEAMS_MAX_BYTES = 28 * 1024
ADAPTIVE = "application/vnd.microsoft.card.adaptive"


def _logic_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class TeamsServer(ProviderServer):
    """A Teams Workflows (Power Automate) webhook trigger: 202 with an empty body; 400 for a
    body that is not a message with an Adaptive Card attachment; 413 above ~28 KB; 429."""

    name = "teams"
    default_path = "/workflows/0a1b2c3d/triggers/manual/paths/invoke"

    def card_problem(self, payload: Any) -> str | None:
        if not isinstance(payload, dict) or payload.get("type") != "message":
            return "The request body must be a message ('type': 'message')."
        attachments = payload.get("attachments")
        if not isinstance(attachments, list) or not attachments:
            return "The message must contain attachments."
        for attachment in attachments:
            if attachment.get("contentType") != ADAPTIVE:
                return f"Attachment contentType must be '{ADAPTIVE}'."
            card = attachment.get("content")
            if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
                return "Property 'type' must be 'AdaptiveCard'"
            version = str(card.get("version", ""))
            if version not in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5"):
                return f"Adaptive Card version '{version}' is not supported."
            for element in _walk_elements(card.get("body") or []):
                kind = element.get("type")
                if kind == "TextBlock" and not isinstance(element.get("text"), str):
                    return "TextBlock requires text."
                if kind == "FactSet" and any(
                    not isinstance(f.get("title"), str) or not isinstance(f.get("value"), str)
                    for f in element.get("facts") or []
                ):
                    return "Fact requires a string title and value."
        return None

    def answer(self, record: Recorded) -> Reply:
        if not record.path.startswith("/workflows/"):
            return Reply.json(404, _logic_error("WorkflowNotFound", "The workflow was not found."))
        if len(record.body) > TEAMS_MAX_BYTES:
            return Reply.json(413, _logic_error("RequestEntityTooLarge", "Request entity too large."))
        payload = record.json
        if payload is None:
            return Reply.json(
                400,
                _logic_error("InvalidRequestContent", "The input body for trigger 'manual' of type 'Request' must be of type JSON."),
            )
        problem = self.card_problem(payload)
        if problem:
            return Reply.json(400, _logic_error("InvalidTemplate", problem))
        return Reply(202)

    def error_reply(self, status: int) -> Reply:
        return Reply.json(status, _logic_error("ServiceUnavailable", "The service is unavailable."))

    def rate_limited_reply(self, retry_after: str | None) -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return Reply.json(429, _logic_error("WorkflowRequestsThrottled", "Rate limit is exceeded."), **headers)


def _walk_elements(elements: list[Any]) -> Iterable[dict[str, Any]]:
    for element in elements:
        if not isinstance(element, dict):
            continue
        yield element
        for key in ("items", "columns"):
            yield from _walk_elements(element.get(key) or [])


# ====================================================================== signed webhook


class WebhookServer(ProviderServer):
    """A receiver that checks ``X-RT-Signature: sha256=HMAC(secret, "<ts>.<body>")``: 401 for a
    missing or wrong signature, 401 for a timestamp outside ``tolerance`` (a replay of a captured
    request). Inside the tolerance a replay looks like a legitimate retry; with
    ``reject_replays=True`` an exact repeat of a signature is refused with 409 as well."""

    name = "webhook"
    default_path = "/hooks/resilient"

    def __init__(
        self, secret: str = "whsec-test-0123456789", tolerance: float = 300.0, *, reject_replays: bool = False
    ) -> None:
        self.secret = secret
        self.tolerance = tolerance
        self.reject_replays = reject_replays
        self._seen: set[str] = set()
        super().__init__()

    def _reset_state(self) -> None:
        self._seen.clear()

    def answer(self, record: Recorded) -> Reply:
        timestamp = record.headers.get("x-rt-timestamp", "")
        signature = record.headers.get("x-rt-signature", "")
        if not timestamp.isdigit() or not signature.startswith("sha256="):
            return Reply.json(401, {"error": "missing signature"})
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + record.body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(signature[len("sha256="):], expected):
            return Reply.json(401, {"error": "invalid signature"})
        if abs(time.time() - int(timestamp)) > self.tolerance:
            return Reply.json(401, {"error": "stale timestamp"})
        with self._lock:
            if self.reject_replays and signature in self._seen:
                return Reply.json(409, {"error": "replayed request"})
            self._seen.add(signature)
        if record.json is None:
            return Reply.json(400, {"error": "body is not JSON"})
        return Reply.json(200, {"status": "ok"})

    def error_reply(self, status: int) -> Reply:
        return Reply.json(status, {"error": "internal error"})


# ====================================================================== SMTP


def make_tls_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (``openssl req``): (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@dataclass
class SmtpRecord:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    auth_user: str | None

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", ""))


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 with optional AUTH and STARTTLS.

    ``script("451 4.3.0 try again later", ...)`` makes the next DATA commands answer with
    these replies instead of ``250``. ``reply_delay`` makes MAIL, RCPT and DATA each answer
    that many seconds late (a slow relay: every step within a client timeout, the whole
    exchange well beyond it).
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        tls_cert: tuple[Path, Path] | None = None,
        require_starttls: bool = False,
        reply_delay: float = 0.0,
    ) -> None:
        import asyncio

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.users = users
        self.messages: list[SmtpRecord] = []
        self._lock = threading.Lock()
        self._script: deque[str] = deque()
        delay = min(float(reply_delay), MAX_SLOW_SECONDS)
        server = self

        class Handler:
            async def handle_MAIL(self, smtp: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
                await asyncio.sleep(delay)
                envelope.mail_from = address
                envelope.mail_options.extend(options)
                return "250 OK"

            async def handle_RCPT(self, smtp: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
                await asyncio.sleep(delay)
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(options)
                return "250 OK"

            async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                await asyncio.sleep(delay)
                with server._lock:
                    if server._script:
                        return server._script.popleft()
                    server.messages.append(
                        SmtpRecord(
                            mail_from=envelope.mail_from,
                            rcpt_tos=list(envelope.rcpt_tos),
                            data=envelope.original_content or envelope.content,
                            tls=session.ssl is not None,
                            auth_user=(
                                session.auth_data.login.decode()
                                if isinstance(session.auth_data, LoginPassword)
                                else None
                            ),
                        )
                    )
                return "250 2.0.0 Message accepted for delivery"

        def authenticator(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            if not isinstance(data, LoginPassword) or users is None:
                return AuthResult(success=False, handled=False)
            user, password = data.login.decode(), data.password.decode()
            if users.get(user) != password:
                return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
            return AuthResult(success=True, auth_data=data)

        kwargs: dict[str, Any] = {}
        if users is not None:
            kwargs.update(authenticator=authenticator, auth_required=True)
        if tls_cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls_cert[0]), str(tls_cert[1]))
            kwargs.update(tls_context=context, require_starttls=require_starttls)
        else:
            kwargs.update(auth_require_tls=False)
        last_error: Exception | None = None
        for _ in range(5):  # port=0 is not supported by aiosmtpd: pick a free port, retry on a race
            self.port = free_port()
            self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
            try:
                self._controller.start()
                break
            except Exception as exc:  # noqa: BLE001 - the port was taken in between
                last_error = exc
        else:
            raise RuntimeError(f"could not start the SMTP server: {last_error}")

    def script(self, *replies: str) -> None:
        with self._lock:
            self._script.extend(replies)

    def received(self) -> list[SmtpRecord]:
        with self._lock:
            return list(self.messages)

    def delivered_keys(self) -> Counter[str]:
        """Accepted messages per Message-ID (the channel derives it from the idempotency key)."""
        return Counter(m.message_id for m in self.received())

    def duplicates(self) -> dict[str, int]:
        return {key: n for key, n in self.delivered_keys().items() if n > 1}

    def close(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
