"""Start-up cost of the notification runtime: compiled JSON plan vs YAML config, and rendering.

Every failure container starts a fresh Python, so what it imports before the first send is
paid per failure. Each figure is the minimum wall time of several fresh processes, next to
the same interpreter doing nothing (``python -c pass``) as the baseline:

* ``json plan``    - load_plan("plan.json") + routing.match (stdlib only; the runtime's path)
* ``yaml config``  - load_plan("notify.yaml"): PyYAML + pydantic validation + compile
* ``json + render``- the JSON path plus rendering one Slack message (imports Jinja2)

Run: ``.venv/bin/python tests/bench/run.py notify_plan``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7
CONFIG = """
channels:
  - {name: slack-critical, type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}
  - {name: pagerduty-critical, type: pagerduty, integration_key: "${PAGERDUTY_KEY}"}
  - {name: email-team, type: email, smtp_host: smtp.example.com, username: "${SMTP_USER}",
     password_file: /etc/rt/secrets/smtp-password, from: rt@example.com, to: [team@example.com]}
receivers:
  - {name: team, channels: [slack-critical]}
  - {name: oncall, channels: [slack-critical, pagerduty-critical], fallback: email-only}
  - {name: email-only, channels: [email-team]}
route:
  receiver: team
  group_by: [signature]
  routes:
    - {matchers: ['severity="critical"'], receiver: oncall, continue: true}
inhibit_rules:
  - {source_matchers: ['signature="github-rate-limit"'], target_matchers: ['stage="pr_operations"'], equal: [workflow]}
escalation_rules:
  - {severity: critical, delay: 5m, channels: [pagerduty-critical], repeat_interval: 15m, max_repeats: 4}
"""
LABELS = "{'severity': 'critical', 'stage': 'build', 'signature': 'oom-killed', 'workflow': 'w'}"


def _fresh(code: str) -> float:
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def _modules(code: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(len(sys.modules))"],
        check=True, capture_output=True, text=True,
    )
    return int(out.stdout.split()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        yaml_path = Path(tmp) / "notify.yaml"
        yaml_path.write_text(CONFIG)
        json_path = Path(tmp) / "plan.json"
        from resilient_templates.runtime.notify.config import compile_plan

        json_path.write_text(compile_plan(yaml_path).to_json())
        load = "from resilient_templates.runtime.notify.plan import load_plan\n"
        route = f"from resilient_templates.runtime.notify import routing\nrouting.match(plan.route, {LABELS})\n"
        render = (
            "import sys; sys.path.insert(0, 'tests/runtime/notify')\n"
            "from samples import make_notification\n"
            "from resilient_templates.runtime.notify.channels import build_channel\n"
            "build_channel(plan.channels['slack-critical']).render(make_notification())\n"
        )
        cases = {
            "python -c pass (baseline)": "pass",
            "json plan + route": f"{load}plan = load_plan({str(json_path)!r})\n{route}",
            "yaml config + route": f"{load}plan = load_plan({str(yaml_path)!r})\n{route}",
            "json plan + render slack": f"{load}plan = load_plan({str(json_path)!r})\n{route}{render}",
        }
        results = {name: (_fresh(code), _modules(code)) for name, code in cases.items()}
    baseline = results["python -c pass (baseline)"][0]
    json_time = results["json plan + route"][0]
    print(f"{'case':<28} {'wall ms':>8} {'x baseline':>11} {'modules':>8}")
    for name, (seconds, modules) in results.items():
        print(f"{name:<28} {seconds * 1000:8.1f} {seconds / baseline:11.2f} {modules:8d}")
    yaml_time = results["yaml config + route"][0]
    print(f"yaml config costs {yaml_time / json_time:.2f}x the json plan "
          f"(+{(yaml_time - json_time) * 1000:.0f} ms per container start)")


if __name__ == "__main__":
    main()
