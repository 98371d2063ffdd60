"""Templates: failure text is data, escaped per format; users override the packaged defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from samples import make_notification, templated_log_analysis

from resilient_templates.runtime.notify.channels import build_channel
from resilient_templates.runtime.notify.plan import ChannelPlan
from resilient_templates.runtime.notify.templates import (
    Templates,
    escape_mrkdwn,
    escape_teams,
    notification_context,
)

SETTINGS = {
    "slack": {"webhook_url": "${SLACK_URL}"},
    "teams": {"webhook_url": "${TEAMS_URL}"},
    "pagerduty": {"integration_key": "${PD_KEY}"},
    "webhook": {"url": "https://h.example.com/hook", "secret": "${S}"},
    "email": {"smtp_host": "127.0.0.1", "from": "rt@example.com", "to": ["team@example.com"]},
}


def channel(kind: str, templates_dir: Path | None = None):  # type: ignore[no-untyped-def]
    return build_channel(ChannelPlan(f"{kind}-x", kind, settings=SETTINGS[kind]), templates_dir=str(templates_dir) if templates_dir else None)


def rendered_text(channel_kind: str, templates_dir: Path | None = None, **kwargs: object) -> str:
    message = channel(channel_kind, templates_dir).render(make_notification(**kwargs))  # type: ignore[arg-type]
    return json.dumps(message.body, ensure_ascii=False)


def test_template_syntax_in_failure_text_renders_literally() -> None:
    """A log with {{ 7*7 }} and {% for %} is shown as written in every channel, never evaluated
    (in Teams as its Markdown-escaped form, which displays as written)."""
    notification = make_notification((templated_log_analysis(),))
    for kind in SETTINGS:
        body = json.dumps(channel(kind).render(notification).body, ensure_ascii=False)
        literal = escape_teams("{{ 7*7 }}") if kind == "teams" else "{{ 7*7 }}"
        assert json.dumps(literal)[1:-1] in body, kind
        assert "49" not in body, kind
    email = channel("email").render(notification).body
    assert "{% for x in range(3) %}loop{% endfor %}" in email["text"]


def test_html_part_escapes_failure_text() -> None:
    """Markup in failure text is escaped in the email's HTML part."""
    html = channel("email").render(make_notification((templated_log_analysis(),))).body["html"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html


def test_slack_text_escapes_mrkdwn_control_characters() -> None:
    """Failure text cannot ping @channel or forge links in Slack: & < > are escaped."""
    body = channel("slack").render(make_notification((templated_log_analysis(),))).body
    text = json.dumps(body)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<https://evil.example|this link>" not in text
    assert "<@U123>" not in text


def test_escape_mrkdwn_escapes_ampersand_first() -> None:
    """Escaping does not double-escape: & becomes &amp; before < and > become entities."""
    assert escape_mrkdwn("a & <b>") == "a &amp; &lt;b&gt;"


def test_non_http_links_are_dropped() -> None:
    """A javascript: workflow URL never becomes a link in HTML, Slack or Teams."""
    from samples import make_analysis

    notification = make_notification((make_analysis(url="javascript:alert(1)"),))
    for kind in ("email", "slack", "teams", "pagerduty"):
        assert "javascript:" not in json.dumps(channel(kind).render(notification).body), kind


def test_user_template_overrides_the_default(tmp_path: Path) -> None:
    """A <channel>.<field>.j2 in templates_dir replaces the packaged template."""
    (tmp_path / "slack.summary.j2").write_text("Custom: {{ first.workflow.name }} broke\n")
    assert "Custom: release-7f3k2 broke" in rendered_text("slack", tmp_path)


def test_kind_specific_template_wins_for_that_kind_only(tmp_path: Path) -> None:
    """<kind>.<channel>.<field>.j2 applies to that notification kind, others keep the default."""
    (tmp_path / "reminder.slack.summary.j2").write_text("Still broken, reminder {{ repeat }}\n")
    assert "Still broken, reminder 2" in rendered_text("slack", tmp_path, kind="reminder", repeat=2)
    assert "Still broken" not in rendered_text("slack", tmp_path)


def test_user_templates_are_sandboxed(tmp_path: Path) -> None:
    """A user template reaching for Python internals fails and the packaged default is used."""
    (tmp_path / "slack.summary.j2").write_text("{{ first.__class__.__mro__[1].__subclasses__() }}\n")
    templates = Templates(str(tmp_path))
    context = notification_context(make_notification(), channel="slack")
    result = templates.render("slack", "summary", context, fmt="mrkdwn")
    assert result.template == "pkg/slack.summary.j2"
    assert result.problems and "failed" in result.problems[0]


def test_undefined_variable_in_user_template_falls_back(tmp_path: Path) -> None:
    """StrictUndefined: a typo in a user template is reported and the default renders instead."""
    (tmp_path / "title.j2").write_text("{{ titel }}\n")
    result = Templates(str(tmp_path)).render("slack", "title", notification_context(make_notification(), channel="s"))
    assert result.text.startswith("[FIRING] release-7f3k2")
    assert "titel" in result.problems[0]


def test_rendering_channels_does_not_import_jinja_until_render() -> None:
    """Importing the channels and notification modules leaves Jinja2 (and pydantic, yaml) unimported."""
    code = (
        "import sys\n"
        "import resilient_templates.runtime.notify.channels.slack, resilient_templates.runtime.notify.channels.email\n"
        "import resilient_templates.runtime.notify.templates, resilient_templates.runtime.notify.routing\n"
        "print(sorted(m for m in ('jinja2', 'pydantic', 'yaml', 'hera') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_payload_is_redacted() -> None:
    """A token and a Slack webhook URL in failure text never reach any channel's payload."""
    from samples import make_analysis

    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    hook = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx"
    analysis = make_analysis(
        log_tail=f"git push https://x-access-token:{token}@github.com/acme/repo\ncurl {hook}\n",
        message=f"Authorization: Bearer {token}",
        evidence=(f"token={token}",),
    )
    for kind in SETTINGS:
        body = json.dumps(channel(kind).render(make_notification((analysis,))).body)
        assert token not in body and "abcdefghijklmnopqrstuvwx" not in body, kind
        assert "[REDACTED:" in body, kind


def test_failed_user_template_is_reported_in_the_message_meta(tmp_path: Path) -> None:
    """A broken user template does not lose the message, and the audit sees why it looks default."""
    (tmp_path / "slack.summary.j2").write_text("{{ nope.attr }}\n")
    message = channel("slack", tmp_path).render(make_notification())
    assert "release-7f3k2/pr_operations failed" in json.dumps(message.body)
    assert "nope" in message.meta["template_problems"][0]
