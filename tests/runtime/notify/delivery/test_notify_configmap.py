"""The notification ConfigMap: plan.json and the user's templates, mounted side by side.

``generate`` compiles stages/notify.yaml with ``compile_notify``; here a config in a temporary
directory stands in for it, and a second directory for the pod's ConfigMap mount.
"""

from __future__ import annotations

import json

from delivery_helpers import analysis

from resilient_templates.generate import compile_notify
from resilient_templates.runtime.notify.config import compile_plan
from resilient_templates.runtime.notify.plan import load_plan
from resilient_templates.runtime.notify.service import NotifyService

CONFIG = """\
channels:
  - {name: chat, type: slack, webhook_url: "${SLACK_URL}"}
receivers:
  - {name: team, channels: [chat]}
route: {receiver: team, group_wait: 0s}
templates_dir: templates/
"""


def _config(tmp_path):
    source = tmp_path / "stages"
    (source / "templates").mkdir(parents=True)
    (source / "templates" / "title.j2").write_text("custom {{ title }}", encoding="utf-8")
    (source / "notify.yaml").write_text(CONFIG, encoding="utf-8")
    return source / "notify.yaml"


def test_the_plan_stores_templates_dir_relative_to_itself(tmp_path):
    """A compiled plan names templates_dir relative to the plan file, never a machine path."""
    plan = compile_plan(_config(tmp_path), environ={})
    assert json.loads(plan.to_json())["templates_dir"] == "templates"


def test_the_configmap_ships_the_templates_next_to_the_plan(
    tmp_path, monkeypatch, store, slack_server
):
    """compile_notify puts plan.json and each user template (key = file name) in the ConfigMap
    data; mounted as one directory, the plan finds the templates and messages use them."""
    data = compile_notify(_config(tmp_path))
    assert sorted(data) == ["plan.json", "title.j2"]
    assert str(tmp_path) not in data["plan.json"]
    mount = tmp_path / "etc-rt-notify"  # what the pod sees: one file per ConfigMap key
    mount.mkdir()
    for name, text in data.items():
        (mount / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("SLACK_URL", slack_server.url)
    report = NotifyService(store, load_plan(mount / "plan.json")).notify([analysis()], deliver_for=10)
    assert len(report.delivery.sent) == 1
    assert slack_server.wait_for(1)[0].json["text"].startswith("custom ")
