"""Message text from Jinja2 templates, rendered in a sandbox with failure text as data.

Every text field a channel shows comes from a template named after the channel and the field,
looked up most specific first, in the user's ``templates_dir`` before the packaged defaults
(``notify/templates/``)::

    <kind>.<channel>.<field>.j2   e.g. resolved.slack.section.j2
    <channel>.<field>.j2          e.g. slack.section.j2
    <kind>.<field>.j2             e.g. escalation.title.j2
    <field>.j2                    e.g. title.j2

Failure text (logs, messages, evidence) is passed as *data* in the context and never compiled
as template code, so a log line containing ``{{ 7*7 }}`` is shown literally. Output is escaped
for the target format: ``html`` autoescapes, ``mrkdwn`` escapes Slack's ``& < >`` and
``teams`` backslash-escapes Teams' Markdown characters (``\\ * _ [ ] ( ) # > ~`` and
backticks) in every ``{{ … }}`` output (mark trusted markup with ``|safe``), ``text`` is plain. The environment is
``ImmutableSandboxedEnvironment`` with ``StrictUndefined``; Jinja2 is imported on first use.

A user template that fails (syntax error, undefined variable, sandbox violation, or any
exception while rendering: ZeroDivisionError, the sandbox's OverflowError for a huge
``range``, a TypeError…) does not lose the message: the packaged default renders instead and
the problem is reported in ``Rendered.problems`` (and the message's ``meta.template_problems``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .notification import Notification
from .text import clip, clip_tail

__all__ = [
    "FORMATS",
    "PACKAGE_DIR",
    "Rendered",
    "Templates",
    "check_templates_dir",
    "escape_mrkdwn",
    "escape_teams",
    "notification_context",
    "safe_url",
    "split_detailed",
]

PACKAGE_DIR = Path(__file__).parent / "templates"
FORMATS = ("text", "html", "mrkdwn", "teams")
_TEAMS_SPECIAL = re.compile(r"([\\*_\[\]()#>~`])")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives meaning to (``& < >``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_teams(text: str) -> str:
    """Backslash-escape what Teams' Markdown (Adaptive Card TextBlock, fact values) would
    interpret: ``\\ * _ [ ] ( ) # > ~`` and backticks. A log line ``[login](https://evil)``
    is then shown as written, not as a link."""
    return _TEAMS_SPECIAL.sub(r"\\\1", text)


def _first_line(text: Any) -> str:
    for line in str(text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def safe_url(value: Any) -> str:
    """``value`` when it is an http(s) URL without markup characters, else empty."""
    url = str(value or "").strip()
    if not url.startswith(("https://", "http://")) or any(c in url for c in "<>|\"' \n"):
        return ""
    return url


def _percent(value: Any) -> str:
    try:
        return f"{round(float(value) * 100)}%"
    except (TypeError, ValueError):
        return "?"


def _seconds(value: Any) -> str:
    try:
        total = int(round(float(value)))
    except (TypeError, ValueError):
        return ""
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s"]
    return "".join(p for p in parts if p) if total else "0s"


@dataclass(frozen=True)
class Rendered:
    text: str
    template: str  # which template rendered it (``user/…`` or ``pkg/…``)
    problems: tuple[str, ...] = field(default=())


@functools.lru_cache(maxsize=16)
def _environment(templates_dir: str | None, fmt: str) -> Any:
    from jinja2 import FileSystemLoader, PrefixLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from markupsafe import Markup

    loaders: dict[str, Any] = {"pkg": FileSystemLoader(str(PACKAGE_DIR))}
    if templates_dir:
        loaders["user"] = FileSystemLoader(templates_dir)

    escape = {"mrkdwn": escape_mrkdwn, "teams": escape_teams}.get(fmt)

    def finalize(value: Any) -> Any:
        if escape is not None and not isinstance(value, Markup):
            return escape("" if value is None else str(value))
        return value

    env = ImmutableSandboxedEnvironment(
        loader=PrefixLoader(loaders, delimiter="/"),
        undefined=StrictUndefined,
        autoescape=(fmt == "html"),
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters.update(
        first_line=_first_line,
        clip=lambda text, limit: clip(str(text or ""), limit),
        percent=_percent,
        seconds=_seconds,
        safe_url=safe_url,
        mrkdwn=lambda v: Markup(escape_mrkdwn(str(v or ""))),
        teams=lambda v: Markup(escape_teams(str(v or ""))),
    )
    return env


class Templates:
    """Renders named fields for one channel type; cheap to create, environments are cached."""

    def __init__(self, templates_dir: str | None = None) -> None:
        self.templates_dir = str(templates_dir) if templates_dir else None
        self.problems: list[str] = []  # user templates that failed and were replaced by defaults

    def candidates(self, kind: str, channel: str, field_name: str) -> list[str]:
        names = [
            f"{kind}.{channel}.{field_name}.j2",
            f"{channel}.{field_name}.j2",
            f"{kind}.{field_name}.j2",
            f"{field_name}.j2",
        ]
        prefixes = ("user", "pkg") if self.templates_dir else ("pkg",)
        return [f"{prefix}/{name}" for prefix in prefixes for name in names]

    def render(
        self,
        channel: str,
        field_name: str,
        context: Mapping[str, Any],
        *,
        fmt: str = "text",
    ) -> Rendered:
        """Render ``field_name`` for ``channel`` with ``context`` (see ``notification_context``)."""
        from jinja2 import TemplateError, TemplatesNotFound

        env = _environment(self.templates_dir, fmt)
        names = self.candidates(str(context.get("kind", "firing")), channel, field_name)
        problems: list[str] = []
        for attempt in (names, [n for n in names if n.startswith("pkg/")]):
            try:
                template = env.select_template(attempt)
                rendered = Rendered(template.render(context).strip(), _origin(template), tuple(problems))
                self.problems.extend(p for p in problems if p not in self.problems)
                return rendered
            except TemplatesNotFound:
                raise LookupError(
                    f"no template for {channel}.{field_name} (looked for {', '.join(names)})"
                ) from None
            except Exception as exc:  # noqa: BLE001 - any failure of a user template falls back
                if attempt is not names or not self.templates_dir:
                    raise  # the packaged defaults failing is a bug: let delivery report it
                what = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
                problems.append(f"template {field_name} for {channel} failed: {what}; used the default")
        raise AssertionError("unreachable")  # pragma: no cover


def _origin(template: Any) -> str:
    """``pkg/<name>`` for a packaged template, ``user/<name>`` for one from templates_dir."""
    filename = Path(template.filename or "")
    prefix = "pkg" if filename.parent == PACKAGE_DIR else "user"
    return f"{prefix}/{filename.name}"


def check_templates_dir(templates_dir: str) -> list[str]:
    """Compile every ``*.j2`` in ``templates_dir``; one message per broken template."""
    from jinja2 import TemplateSyntaxError

    problems = []
    env = _environment(templates_dir, "text")
    for path in sorted(Path(templates_dir).glob("*.j2")):
        try:
            env.get_template(f"user/{path.name}")
        except TemplateSyntaxError as exc:
            problems.append(f"{path}:{exc.lineno}: {exc.message}")
    return problems


def split_detailed(
    analyses: list[dict[str, Any]], limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(detailed, others): the first failure of each distinct cause (at most ``limit``) is shown
    in full; the rest of a group is listed one line each."""
    detailed: list[dict[str, Any]] = []
    causes: set[str] = set()
    for analysis in analyses:
        if len(detailed) < limit and analysis["cause"] not in causes:
            detailed.append(analysis)
            causes.add(analysis["cause"])
    chosen = {id(a) for a in detailed}
    return detailed, [a for a in analyses if id(a) not in chosen]


#: Bounds applied to failure text before it reaches a template or the redactor: no channel
#: shows more than this, and redacting megabytes of log that are then cut would be wasted.
MAX_LOG_CHARS = 64_000
MAX_TEXT_CHARS = 20_000
MAX_EVIDENCE_LINES = 50
MAX_EVIDENCE_CHARS = 2_000


def analysis_context(analysis: Any) -> dict[str, Any]:
    """One analysis as template data: its dict with unbounded texts cut, plus derived keys."""
    data = analysis.to_dict()
    error, rc = data["error"], data["root_cause"]
    error["log_tail"] = clip_tail(error.get("log_tail") or "", MAX_LOG_CHARS)
    error["message"] = clip(error.get("message") or "", MAX_TEXT_CHARS)
    rc["description"] = clip(rc.get("description") or "", MAX_TEXT_CHARS)
    rc["evidence"] = [clip(line, MAX_EVIDENCE_CHARS) for line in (rc.get("evidence") or [])[:MAX_EVIDENCE_LINES]]
    data["summary"] = analysis.summary
    data["labels"] = analysis.labels()
    data["recommendation"] = analysis.recommendations[0].action if analysis.recommendations else ""
    data["evidence_first"] = _first_line(analysis.root_cause.evidence[0]) if analysis.root_cause.evidence else ""
    data["cause"] = analysis.root_cause.signature or analysis.root_cause.category.value
    return data


def notification_context(
    notification: Notification, *, channel: str, **extra: Any
) -> dict[str, Any]:
    """The template context: notification fields and analyses as plain dicts (data, not code)."""
    analyses = [analysis_context(a) for a in notification.analyses]
    context: dict[str, Any] = {
        "kind": notification.kind,
        "incident_key": notification.incident_key,
        "receiver": notification.receiver,
        "group_labels": dict(notification.group_labels),
        "severity": notification.severity.value,
        "title": notification.title,
        "created_at": notification.created_at,
        "escalation_level": notification.escalation_level,
        "repeat": notification.repeat,
        "count": notification.count,
        "truncated": notification.truncated,
        "analyses": analyses,
        "first": analyses[0] if analyses else None,
        "channel": channel,
    }
    context.update(extra)
    return context
