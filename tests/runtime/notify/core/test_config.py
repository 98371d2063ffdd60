"""The notification config: validation messages (one test per rule), compilation, the JSON plan."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from resilient_templates.errors import ConfigError
from resilient_templates.runtime.notify.config import compile_plan, validate_file
from resilient_templates.runtime.notify.plan import Plan, load_plan

SPEC_EXAMPLE = """
channels:
  - name: "slack-critical"
    type: "slack"
    webhook_url: "${SLACK_WEBHOOK_URL}"
    enabled: true
  - name: "pagerduty-critical"
    type: "pagerduty"
    integration_key: "${PAGERDUTY_KEY}"
    enabled: true

escalation_rules:
  - severity: "critical"
    delay: "5m"
    channels: ["slack-critical", "pagerduty-critical"]
    repeat_interval: "15m"
    max_repeats: 4
"""

FULL = """
channels:
  - {name: slack-critical, type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}
  - {name: pagerduty-critical, type: pagerduty, integration_key: "${PAGERDUTY_KEY}"}
  - {name: email-team, type: email, smtp_host: smtp.example.com, smtp_port: 587, starttls: true,
     username: "${SMTP_USER}", password_file: /etc/rt/secrets/smtp-password, from: rt@example.com, to: [team@example.com]}
  - {name: webhook-audit, type: webhook, url: "https://audit.example.com/hook", secret: "${WEBHOOK_HMAC_SECRET}"}
  - {name: teams-oncall, type: teams, webhook_url: "${TEAMS_WORKFLOW_URL}"}
receivers:
  - {name: team, channels: [slack-critical, webhook-audit]}
  - {name: email-only, channels: [email-team]}
  - {name: oncall, channels: [slack-critical, pagerduty-critical], fallback: email-only}
route:
  receiver: team
  group_by: [signature]
  routes:
    - matchers: ['severity="critical"']
      receiver: oncall
      continue: true
inhibit_rules:
  - source_matchers: ['category="external_dependency"', 'signature="github-rate-limit"']
    target_matchers: ['stage="pr_operations"']
    equal: [workflow]
escalation_rules:
  - {severity: critical, delay: 5m, receivers: [oncall], channels: [teams-oncall], repeat_interval: 15m, max_repeats: 4}
"""


def write(tmp_path: Path, text: str, name: str = "notify.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        compile_plan(path, environ={})
    prefix = f"{path}: "
    lines = str(info.value).splitlines()
    assert all(line.startswith(prefix) for line in lines)
    return [line[len(prefix):] for line in lines]


def with_channels(body: str) -> str:
    return "channels:\n  - {name: hook, type: webhook, url: 'https://h.example.com', secret: '${S}'}\n" + textwrap.dedent(body)


# ---------------------------------------------------------------- accepted configs


def test_spec_example_compiles(tmp_path: Path) -> None:
    """The spec's notification example is a valid config (everything routes to 'default')."""
    plan = compile_plan(write(tmp_path, SPEC_EXAMPLE))
    assert plan.route.receiver == "default"
    assert plan.receivers["default"].channels == ("slack-critical", "pagerduty-critical")
    rule = plan.escalation_rules[0]
    assert (rule.severity, rule.delay.to_go(), rule.repeat_interval.to_go(), rule.max_repeats) == ("critical", "5m", "15m", 4)


def test_full_config_compiles_with_resolved_options(tmp_path: Path) -> None:
    """The full example compiles; channel secrets stay as references in the plan."""
    plan = compile_plan(write(tmp_path, FULL))
    assert plan.channels["slack-critical"].settings["webhook_url"] == "${SLACK_WEBHOOK_URL}"
    assert plan.channels["slack-critical"].rate_per_second == 1.0
    assert plan.route.routes[0].group_by == ("signature",)
    assert plan.escalation_rules[0].channel_names(plan) == ("slack-critical", "pagerduty-critical", "teams-oncall")


def test_json_plan_round_trips(tmp_path: Path) -> None:
    """A compiled plan written as JSON loads back equal, without pydantic."""
    plan = compile_plan(write(tmp_path, FULL))
    target = tmp_path / "plan.json"
    target.write_text(plan.to_json())
    assert load_plan(target) == plan


def test_json_plan_holds_no_secret_values(tmp_path: Path) -> None:
    """Even with the secrets set in the environment, the compiled plan holds only references."""
    path = write(tmp_path, FULL)
    plan = compile_plan(path, environ={"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B1/sekrit"})
    assert "sekrit" not in plan.to_json()


def test_loading_a_json_plan_imports_neither_pydantic_nor_yaml(tmp_path: Path) -> None:
    """The runtime's fast path (JSON plan) imports no pydantic, yaml or jinja2."""
    target = tmp_path / "plan.json"
    target.write_text(compile_plan(write(tmp_path, FULL)).to_json())
    code = (
        "import sys\n"
        "from resilient_templates.runtime.notify.plan import load_plan\n"
        "from resilient_templates.runtime.notify import routing\n"
        f"plan = load_plan({str(target)!r})\n"
        "print(sorted(m for m in ('pydantic', 'yaml', 'jinja2', 'hera') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_load_plan_reports_a_non_plan_json(tmp_path: Path) -> None:
    """A JSON file that is not a compiled plan is a one-line ConfigError naming the file."""
    target = tmp_path / "plan.json"
    target.write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(ConfigError, match=r"plan\.json: not a compiled notification plan"):
        load_plan(target)


def test_validate_file_returns_no_problems_for_a_valid_config(tmp_path: Path) -> None:
    """validate_file lists nothing for a valid config."""
    assert validate_file(write(tmp_path, FULL)) == []


# ---------------------------------------------------------------- one test per rule


def test_unknown_key_lists_the_allowed_keys(tmp_path: Path) -> None:
    """An unknown channel key names its path and the keys that are allowed."""
    (line,) = problems(tmp_path, "channels:\n  - {name: p, type: pagerduty, integration_key: '${K}', colour: red}\n")
    assert line.startswith("channels[0].colour: unknown key (expected one of: name, enabled, rate_per_second, type, integration_key")


def test_missing_required_key(tmp_path: Path) -> None:
    """A missing required key is reported at its path."""
    (line,) = problems(tmp_path, "channels:\n  - {name: e, type: email, from: a@b.c, to: [x@y.z]}\n")
    assert line == "channels[0].smtp_host: required key is missing"


def test_unknown_channel_type(tmp_path: Path) -> None:
    """An unknown channel type names the supported ones."""
    (line,) = problems(tmp_path, "channels:\n  - {name: x, type: smoke-signal}\n")
    assert line == "channels[0].type: unknown channel type (got 'smoke-signal'; expected one of: slack, teams, pagerduty, email, webhook)"


def test_inline_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A literal webhook URL is refused with the fix, and the secret is not printed."""
    (line,) = problems(tmp_path, "channels:\n  - {name: s, type: slack, webhook_url: 'https://hooks.slack.com/services/T0/B0/sekrit'}\n")
    assert line == (
        'channels[0].webhook_url: secret written inline (expected a reference such as "${S_WEBHOOK_URL}" '
        "or webhook_url_file: /path/to/mounted/secret)"
    )


def test_inline_pagerduty_key_is_refused(tmp_path: Path) -> None:
    """A literal PagerDuty integration key is refused the same way."""
    (line,) = problems(tmp_path, "channels:\n  - {name: pd, type: pagerduty, integration_key: 0123456789abcdef0123456789abcdef}\n")
    assert line.startswith("channels[0].integration_key: secret written inline")
    assert "0123456789" not in line


def test_secret_and_secret_file_exclude_each_other(tmp_path: Path) -> None:
    """At most one of a secret and its *_file may be set (Alertmanager's rule)."""
    (line,) = problems(tmp_path, "channels:\n  - {name: s, type: slack, webhook_url: '${U}', webhook_url_file: /run/u}\n")
    assert line == "channels[0].webhook_url: at most one of webhook_url & webhook_url_file must be configured"


def test_secret_reference_is_required(tmp_path: Path) -> None:
    """A Slack channel without webhook_url or webhook_url_file is refused."""
    (line,) = problems(tmp_path, "channels:\n  - {name: s, type: slack}\n")
    assert line == "channels[0].webhook_url: one of webhook_url or webhook_url_file is required"


def test_retired_office365_connector_url_is_refused(tmp_path: Path) -> None:
    """A Teams Office 365 connector URL (in the environment variable) is refused as retired."""
    path = write(tmp_path, "channels:\n  - {name: t, type: teams, webhook_url: '${TEAMS_URL}'}\n")
    with pytest.raises(ConfigError) as info:
        compile_plan(path, environ={"TEAMS_URL": "https://acme.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d"})
    assert "channels[0].webhook_url: Office 365 connector webhook URL (from ${TEAMS_URL})" in str(info.value)
    assert "retired" in str(info.value)


def test_undefined_receiver_in_route(tmp_path: Path) -> None:
    """A route naming an undefined receiver is refused (Alertmanager's message)."""
    lines = problems(tmp_path, with_channels("""
        receivers: [{name: team, channels: [hook]}]
        route:
          receiver: team
          routes:
            - routes:
                - {matchers: ['severity="critical"'], receiver: pager}
        """))
    assert lines == ["route.routes[0].routes[0].receiver: undefined receiver 'pager' used in route"]


def test_undefined_channel_in_receiver(tmp_path: Path) -> None:
    """A receiver naming an undefined channel is refused."""
    lines = problems(tmp_path, with_channels("receivers: [{name: team, channels: [hook, slack]}]\nroute: {receiver: team}\n"))
    assert lines == ["receivers[0].channels[1]: undefined channel 'slack' used in receiver"]


def test_duplicate_names(tmp_path: Path) -> None:
    """Channel and receiver names must be unique."""
    lines = problems(tmp_path, with_channels("""
        receivers: [{name: team, channels: [hook]}, {name: team, channels: [hook]}]
        route: {receiver: team}
        """).replace("channels:\n", "channels:\n  - {name: hook, type: webhook, url: 'https://x.example.com', secret: '${S}'}\n", 1))
    assert lines == [
        "channels[1].name: channel name 'hook' is not unique",
        "receivers[1].name: receiver name 'team' is not unique",
    ]


def test_root_route_must_not_have_matchers(tmp_path: Path) -> None:
    """The root route matches everything: matchers there are refused."""
    lines = problems(tmp_path, with_channels("receivers: [{name: team, channels: [hook]}]\nroute: {receiver: team, matchers: ['severity=\"critical\"']}\n"))
    assert lines == ["route.matchers: root route must not have any matchers"]


def test_root_route_needs_a_receiver(tmp_path: Path) -> None:
    """The root route must name the default receiver."""
    lines = problems(tmp_path, with_channels("receivers: [{name: team, channels: [hook]}]\nroute: {group_by: [signature]}\n"))
    assert lines == ["route.receiver: root route must specify a default receiver"]


def test_repeat_interval_cannot_be_zero(tmp_path: Path) -> None:
    """repeat_interval 0 is refused (Alertmanager's rule)."""
    lines = problems(tmp_path, with_channels("receivers: [{name: team, channels: [hook]}]\nroute: {receiver: team, repeat_interval: 0s}\n"))
    assert lines == ["route.repeat_interval: repeat_interval cannot be zero (got '0s'; expected a positive duration)"]


def test_durations_are_go_durations(tmp_path: Path) -> None:
    """A duration Go does not parse ('1d') is refused with the fix."""
    lines = problems(tmp_path, with_channels("receivers: [{name: team, channels: [hook]}]\nroute: {receiver: team, group_wait: 1d}\n"))
    assert lines == [
        "route.group_wait: duration '1d' uses unit 'd', which Argo's Go parser does not accept (use 24h per day, "
        "e.g. '24h') (got '1d'; expected a Go duration such as '30s', '5m' or '4h')"
    ]


def test_invalid_matcher_and_regex(tmp_path: Path) -> None:
    """A malformed matcher and an uncompilable regex are both reported at their index."""
    lines = problems(tmp_path, with_channels("""
        receivers: [{name: team, channels: [hook]}]
        route:
          receiver: team
          routes:
            - {matchers: ['severity', 'stage=~"(build"'], receiver: team}
        """))
    assert lines[0] == (
        "route.routes[0].matchers[0]: invalid matcher (got 'severity'; expected a matcher such as "
        'severity="critical" (operators =, !=, =~, !~))'
    )
    assert lines[1].startswith("route.routes[0].matchers[1]: invalid matcher (got 'stage=~\"(build\"'; expected a valid regular expression")


def test_group_by_dots_cannot_mix_with_labels(tmp_path: Path) -> None:
    """group_by ['...'] must stand alone."""
    lines = problems(tmp_path, with_channels("receivers: [{name: team, channels: [hook]}]\nroute: {receiver: team, group_by: ['...', signature]}\n"))
    assert lines == ["route.group_by[0]: cannot group by '...' and other labels at the same time"]


def test_fallback_cycle(tmp_path: Path) -> None:
    """Receivers whose fallbacks loop are refused."""
    lines = problems(tmp_path, with_channels("""
        receivers:
          - {name: a, channels: [hook], fallback: b}
          - {name: b, channels: [hook], fallback: a}
        route: {receiver: a}
        """))
    assert lines[0] == "receivers[0].fallback: fallback receivers form a cycle (expected a chain that ends in a receiver without fallback)"


def test_escalation_rule_references(tmp_path: Path) -> None:
    """Escalation rules must name defined channels or receivers and have a repeat interval when repeating."""
    lines = problems(tmp_path, with_channels("""
        escalation_rules:
          - {severity: critical, delay: 5m, channels: [pager], max_repeats: 3}
        """))
    assert lines == [
        "escalation_rules[0].channels[0]: undefined channel 'pager' used in escalation rule",
        "escalation_rules[0].repeat_interval: repeat_interval is required when max_repeats > 0 "
        "(expected a Go duration such as '30s', '5m' or '4h')",
    ]


def test_escalation_severity_must_be_a_taxonomy_severity(tmp_path: Path) -> None:
    """An escalation severity outside critical/error/warning/info is refused."""
    lines = problems(tmp_path, with_channels("escalation_rules: [{severity: urgent, delay: 5m, channels: [hook]}]\n"))
    assert lines == ["escalation_rules[0].severity: invalid value (got 'urgent'; expected 'critical', 'error', 'warning' or 'info')"]


def test_email_password_needs_username(tmp_path: Path) -> None:
    """An SMTP password without a username is refused."""
    lines = problems(tmp_path, "channels:\n  - {name: e, type: email, smtp_host: h, password_file: /p, from: a@b.c, to: [x@y.z]}\n")
    assert lines == ["channels[0].username: a password needs a username"]


def test_email_addresses_are_checked(tmp_path: Path) -> None:
    """from and to must be email addresses, and to must not be empty."""
    lines = problems(tmp_path, "channels:\n  - {name: e, type: email, smtp_host: h, from: nobody, to: []}\n")
    assert lines == [
        "channels[0].from: not an email address (got 'nobody'; expected an address such as team@example.com)",
        "channels[0].to: too few items (got []; expected at least 1 item)",
    ]


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    """A key given twice in one mapping is an error, not a silent overwrite."""
    lines = problems(tmp_path, "channels: []\nroute: {receiver: a}\nroute: {receiver: b}\n")
    assert lines == ["duplicate key 'route' (line 3) (expected each key once per mapping)"]


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    """A YAML syntax error names line and column."""
    lines = problems(tmp_path, "channels:\n  - {name: a\n")
    assert lines[0].startswith("invalid YAML at line 3, column 1")


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Structural and reference problems from every section come back together, one line each."""
    lines = problems(tmp_path, """
        channels:
          - {name: s, type: slack, webhook_url: 'https://hooks.slack.com/services/x'}
          - {name: p, type: pagerduty, integration_key: '${K}', colour: red}
        receivers: [{name: r, channels: [s, nope]}]
        route:
          receiver: r
          repeat_interval: 0s
          routes: [{matchers: ['bad'], receiver: missing}]
        escalation_rules: [{severity: critical, delay: 1d, channels: [s]}]
        """)
    keys = [line.split(":")[0] for line in lines]
    assert keys == [
        "channels[1].colour",
        "escalation_rules[0].delay",
        "channels[0].webhook_url",
        "receivers[0].channels[1]",
        "route.repeat_interval",
        "route.routes[0].matchers[0]",
        "route.routes[0].receiver",
    ]


def test_broken_user_template_is_a_config_error(tmp_path: Path) -> None:
    """A templates_dir with a template that does not compile is refused with file and line."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "slack.summary.j2").write_text("ok\n{% if %}\n")
    lines = problems(tmp_path, with_channels("templates_dir: templates\n"))
    assert len(lines) == 1
    assert lines[0].startswith(f"templates_dir: template does not compile: {tmp_path / 'templates' / 'slack.summary.j2'}:2:")


PLAIN_AUTH = "channels:\n  - {name: e, type: email, smtp_host: h, starttls: false, username: u, password: '${P}', from: a@b.c, to: [x@y.z]%s}\n"


def test_email_auth_over_plaintext_is_refused(tmp_path: Path) -> None:
    """AUTH without STARTTLS or implicit TLS would send the password in clear: a config error."""
    (line,) = problems(tmp_path, PLAIN_AUTH % "")
    assert line.startswith("channels[0].starttls: SMTP AUTH without TLS sends the password in clear")
    assert "allow_insecure_auth: true" in line


def test_email_auth_over_plaintext_can_be_allowed_explicitly(tmp_path: Path) -> None:
    """allow_insecure_auth: true accepts AUTH without TLS (a trusted local relay)."""
    plan = compile_plan(write(tmp_path, PLAIN_AUTH % ", allow_insecure_auth: true"), environ={})
    assert plan.channels["e"].settings["allow_insecure_auth"] is True


PAGED_TWICE = """\
channels:
  - {name: pd, type: pagerduty, integration_key: "${PD_KEY}"}
  - {name: chat, type: slack, webhook_url: "${SLACK_URL}"}
receivers:
  - {name: team, channels: [chat]}
  - {name: oncall, channels: [pd]}
route:
  receiver: team
  routes:
    - {matchers: ['severity="critical"'], receiver: oncall}
escalation_rules:
  - {severity: critical, delay: 5m, channels: [%s]}
"""


def test_escalating_to_the_pagerduty_channel_that_was_paged_is_a_warning(tmp_path: Path, caplog) -> None:
    """An escalation to the PagerDuty channel that already got the trigger would be merged into
    the open alert (same dedup_key) and page nobody: compiling warns in one line, and succeeds."""
    with caplog.at_level("WARNING", logger="resilient_templates.runtime.notify"):
        plan = compile_plan(write(tmp_path, PAGED_TWICE % "pd"), environ={})
    (warning,) = [r.getMessage() for r in caplog.records]
    assert plan.escalation_rules[0].channels == ("pd",)
    assert "\n" not in warning and warning.startswith(f"{tmp_path / 'notify.yaml'}: escalation_rules[0]: warning:")
    assert "'pd'" in warning and "route.routes[0]" in warning


def test_escalating_to_another_channel_is_not_a_warning(tmp_path: Path, caplog) -> None:
    """An escalation to a channel the trigger did not go to compiles silently."""
    with caplog.at_level("WARNING", logger="resilient_templates.runtime.notify"):
        compile_plan(write(tmp_path, PAGED_TWICE % "chat"), environ={})
    assert caplog.records == []


def test_the_shipped_config_does_not_escalate_into_a_merged_page(caplog) -> None:
    """stages/notify.yaml compiles without warnings: its escalations reach people PagerDuty
    would not page again."""
    shipped = Path(__file__).resolve().parents[4] / "stages" / "notify.yaml"
    with caplog.at_level("WARNING", logger="resilient_templates.runtime.notify"):
        compile_plan(shipped, environ={})
    assert [r.getMessage() for r in caplog.records] == []


def test_retention_is_a_positive_duration(tmp_path: Path) -> None:
    """`retention` (how long tick keeps finished messages, audit rows and resolved incidents)
    defaults to 30 days; zero is refused."""
    assert compile_plan(write(tmp_path, with_channels("")), environ={}).defaults.retention.seconds == 30 * 86400
    assert compile_plan(write(tmp_path, with_channels("retention: 48h\n")), environ={}).defaults.retention.seconds == 48 * 3600
    (line,) = problems(tmp_path, with_channels("retention: 0s\n"))
    assert line.startswith("retention: retention cannot be zero")
