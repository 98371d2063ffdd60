"""``resilient-runtime notify | route test | ack | resolve | tick``: arguments, output, exit codes.

Commands run in-process through ``cli.run`` (real store, real provider servers, real clock);
one test runs the installed entry point as a subprocess.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from delivery_helpers import analysis, channel, rows, write_plan
from servers import Fault

from resilient_templates.policy.taxonomy import Severity
from resilient_templates.runtime.notify.cli import run
from resilient_templates.runtime.store import open_store

CRITICAL_ROUTE = {
    "routes": [{
        "receiver": "oncall", "group_by": ["workflow"], "group_wait": "0s", "group_interval": "5m",
        "repeat_interval": "4h", "continue": True, "routes": [],
        "matchers": [{"name": "severity", "op": "=", "value": "critical"}],
        "key": '{}/{severity="critical"}/0', "path": "route.routes[0]",
    }],
}  # fmt: skip


@pytest.fixture
def plan_path(tmp_path, slack_server, pagerduty_server):
    return write_plan(
        tmp_path / "plan.json",
        [channel("chat", slack_server, rate=100), channel("pd", pagerduty_server, rate=100)],
        {"team": ["chat"], "oncall": ["pd"]},
        route=CRITICAL_ROUTE,
        backoff_base="10ms",
        backoff_cap="50ms",
    )


def _analysis_file(tmp_path, **kwargs):
    path = tmp_path / "analysis.json"
    path.write_text(analysis(**kwargs).to_json(), encoding="utf-8")
    return path


def _summary(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_route_test_prints_the_receivers(plan_path, capsys):
    """`route test` prints the receivers a label set reaches (Alertmanager: the child, not the root)."""
    assert run(["route", "test", "--config", str(plan_path), "severity=critical", "workflow=x"]) == 0
    assert capsys.readouterr().out.strip() == "oncall"


def test_route_test_verify_receivers_mismatch_exits_1(plan_path, capsys):
    """--verify-receivers that differ from the resolved receivers exits 1 with a warning."""
    code = run(["route", "test", "--config", str(plan_path), "--verify-receivers", "oncall", "severity=warning"])
    assert code == 1
    assert "did not match" in capsys.readouterr().err
    assert run(["route", "test", "--config", str(plan_path), "--verify-receivers", "team", "severity=warning"]) == 0


def test_route_test_tree_shows_the_walk(plan_path, capsys):
    """--tree prints each visited route with whether it matched."""
    assert run(["route", "test", "--config", str(plan_path), "--tree", "severity=critical"]) == 0
    out = capsys.readouterr().out
    assert "* route.routes[0]" in out and "receivers: oncall" in out


def test_notify_from_an_analysis_file(plan_path, store_url, tmp_path, slack_server, capsys):
    """`notify --analysis FILE` routes, sends and prints a JSON summary; exit 0."""
    code = run(["notify", "--config", str(plan_path), "--store", store_url,
                "--analysis", str(_analysis_file(tmp_path))])  # fmt: skip
    assert code == 0
    summary = _summary(capsys)
    assert (summary["enqueued"], summary["sent"]) == (1, 1)
    assert len(slack_server.wait_for(1)) == 1


def test_notify_reads_stdin(plan_path, store_url, monkeypatch, slack_server, capsys):
    """`--analysis -` reads the FailureAnalysis from stdin."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(analysis().to_json()))
    assert run(["notify", "--config", str(plan_path), "--store", store_url, "--analysis", "-"]) == 0
    assert _summary(capsys)["sent"] == 1


def test_notify_with_a_malformed_analysis_exits_2_in_one_line(plan_path, store_url, tmp_path, capsys):
    """A file that is not a FailureAnalysis is a one-line error naming the file; exit 2."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"workflow": {}}', encoding="utf-8")
    code = run(["notify", "--config", str(plan_path), "--store", store_url, "--analysis", str(bad)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(bad) in err


def test_notify_without_config_exits_2(store_url, tmp_path, monkeypatch, capsys):
    """Without --config (and no $RT_NOTIFY_CONFIG) notify is a usage error."""
    monkeypatch.delenv("RT_NOTIFY_CONFIG", raising=False)
    code = run(["notify", "--store", store_url, "--analysis", str(_analysis_file(tmp_path))])
    assert code == 2 and "--config is required" in capsys.readouterr().err


def test_notify_exits_69_when_nothing_could_deliver(plan_path, store_url, tmp_path, slack_server, capsys):
    """A message refused for good with no fallback left makes notify exit 69."""
    slack_server.script(Fault.error(400))
    code = run(["notify", "--config", str(plan_path), "--store", store_url,
                "--analysis", str(_analysis_file(tmp_path))])  # fmt: skip
    assert code == 69
    assert _summary(capsys)["undeliverable"] == 1


def test_notify_exits_75_when_the_store_is_unreachable(plan_path, tmp_path, capsys):
    """An unreachable PostgreSQL store is exit 75 (try again later), in one line."""
    code = run(["notify", "--config", str(plan_path), "--store", "postgresql://rt@127.0.0.1:1/rt",
                "--analysis", str(_analysis_file(tmp_path))])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 75 and len(err.splitlines()) == 1 and "state store" in err


def test_notify_status_succeeded_resolves_the_workflow(
    plan_path, store_url, tmp_path, pagerduty_server, capsys
):
    """`notify --status Succeeded --workflow X` resolves X's incidents (PagerDuty `resolve`)."""
    failing = _analysis_file(tmp_path, severity=Severity.CRITICAL)
    assert run(["notify", "--config", str(plan_path), "--store", store_url, "--analysis", str(failing)]) == 0
    capsys.readouterr()
    code = run(["notify", "--config", str(plan_path), "--store", store_url, "--status", "Succeeded",
                "--workflow", "release-7f3k2"])  # fmt: skip
    assert code == 0 and len(_summary(capsys)["resolved"]) == 1
    assert [e["event_action"] for e in pagerduty_server.events] == ["trigger", "resolve"]


def test_ack_by_name(plan_path, store_url, tmp_path, capsys):
    """`ack INCIDENT --by NAME` acknowledges and prints who; an unknown id exits 2."""
    run(["notify", "--config", str(plan_path), "--store", store_url, "--analysis", str(_analysis_file(tmp_path))])
    incident = _summary(capsys)["incidents"][0]
    assert run(["ack", incident, "--by", "alice", "--config", str(plan_path), "--store", store_url]) == 0
    assert _summary(capsys)["acked_by"] == "alice"
    assert run(["ack", "nosuchinci", "--config", str(plan_path), "--store", store_url]) == 2
    assert "no incident" in capsys.readouterr().err


def test_resolve_by_incident(plan_path, store_url, tmp_path, slack_server, capsys):
    """`resolve --incident ID` closes that incident and sends the recovered message."""
    run(["notify", "--config", str(plan_path), "--store", store_url, "--analysis", str(_analysis_file(tmp_path))])
    incident = _summary(capsys)["incidents"][0]
    assert run(["resolve", "--incident", incident, "--config", str(plan_path), "--store", store_url]) == 0
    assert _summary(capsys)["resolved"] == [incident]
    assert len(slack_server.wait_for(2)) == 2


DELIVERY_KEYS = {"sent", "retried", "failed", "fallbacks", "undeliverable", "pending"}


def test_every_command_that_delivers_reports_the_same_delivery_counts(
    plan_path, store_url, tmp_path, capsys
):
    """notify, resolve and tick summaries all carry the same delivery counts (one
    DeliveryReport.to_dict), so a failed resolve message is as visible as a failed alert."""
    run(["notify", "--config", str(plan_path), "--store", store_url, "--analysis", str(_analysis_file(tmp_path))])
    notify = _summary(capsys)
    run(["resolve", "--workflow", "release-7f3k2", "--config", str(plan_path), "--store", store_url])
    resolve = _summary(capsys)
    run(["tick", "--config", str(plan_path), "--store", store_url])
    tick = _summary(capsys)
    assert all(DELIVERY_KEYS <= set(summary) for summary in (notify, resolve, tick))
    assert (notify["sent"], resolve["sent"], resolve["undeliverable"]) == (1, 1, 0)


def test_tick_sends_what_notify_left_behind(plan_path, store_url, tmp_path, slack_server, capsys):
    """A message notify could not send (503, no time left) is sent by a later `tick`."""
    # Retry-After makes the retry due exactly 1 s later: with only the plan's 10 ms backoff it
    # could come due while notify was still running, and notify would send it itself.
    slack_server.script(Fault.error(503, retry_after="1"))
    run(["notify", "--config", str(plan_path), "--store", store_url, "--deliver-for", "0s",
         "--analysis", str(_analysis_file(tmp_path))])  # fmt: skip
    assert _summary(capsys)["pending"] == 1
    assert run(["tick", "--config", str(plan_path), "--store", store_url, "--deliver-for", "5s"]) == 0
    assert _summary(capsys)["sent"] == 1
    store = open_store(store_url)
    try:
        assert rows(store, "SELECT state FROM notify_outbox") == [("sent",)]
    finally:
        store.close()


def _waiting_plan(tmp_path, slack_server):
    """A plan whose only route waits 30 s (group_wait) before the first message, as stages/notify.yaml."""
    return write_plan(tmp_path / "waiting.json", [channel("chat", slack_server, rate=100)], {"team": ["chat"]},
                      route={"group_wait": "30s"})  # fmt: skip


def test_notify_on_its_private_default_store_delivers_its_waiting_group(
    tmp_path, monkeypatch, slack_server, capsys
):
    """Without --store and $RT_STATE_URL the store is this process's own file: nobody else can
    join or flush its groups, so notify delivers them before it exits instead of losing them."""
    monkeypatch.delenv("RT_STATE_URL", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the default store file is created here
    code = run(["notify", "--config", str(_waiting_plan(tmp_path, slack_server)),
                "--analysis", str(_analysis_file(tmp_path))])  # fmt: skip
    summary = _summary(capsys)
    assert code == 0 and (summary["waiting"], summary["enqueued"], summary["sent"]) == (0, 1, 1)
    assert len(slack_server.wait_for(1)) == 1


def test_notify_on_a_shared_store_leaves_waiting_groups_to_tick_and_says_so(
    store_url, tmp_path, slack_server, capsys
):
    """With a shared store a group in group_wait stays for `tick` (other failures may join it),
    and the summary reports it as waiting instead of hiding it behind enqueued 0, pending 0."""
    code = run(["notify", "--config", str(_waiting_plan(tmp_path, slack_server)), "--store", store_url,
                "--analysis", str(_analysis_file(tmp_path))])  # fmt: skip
    summary = _summary(capsys)
    assert code == 0 and (summary["waiting"], summary["enqueued"], summary["sent"]) == (1, 0, 0)
    assert slack_server.received() == []


def test_tick_is_a_runtime_command(plan_path, store_url):
    """`python -m resilient_templates.runtime tick` runs the tick and prints its JSON summary."""
    done = subprocess.run(
        [sys.executable, "-m", "resilient_templates.runtime", "tick", "--config", str(plan_path),
         "--store", store_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pending"] == 0


ARGO_FAILURES = json.dumps([{
    "displayName": "pr_operations", "templateName": "pr-operations", "phase": "Failed",
    "podName": "release-7f3k2-pr-operations-1234", "finishedAt": "2026-09-01T12:00:00Z",
    "message": "main: Error (exit code 1): rt:transient category=external_dependency "
               "signature=github-rate-limit",
}])  # fmt: skip


def test_notify_from_argo_status_and_failures(plan_path, store_url, slack_server, capsys):
    """`--status Failed --failures JSON --workflow X` analyses Argo's failures and notifies."""
    code = run(["notify", "--config", str(plan_path), "--store", store_url, "--status", "Failed",
                "--failures", ARGO_FAILURES, "--workflow", "release-7f3k2", "--namespace", "ci"])  # fmt: skip
    assert code == 0
    summary = _summary(capsys)
    assert summary["sent"] == 1 and summary["routed"][0]["receiver"] == "team"
    (message,) = slack_server.wait_for(1)
    assert "release-7f3k2" in message.json["text"]


def test_exit_handler_empty_analysis_falls_back_to_argo_failures(
    plan_path, store_url, tmp_path, slack_server, capsys
):
    """The exit handler passes the analyze step's output ('[]' when it failed) and Argo's
    failures: an empty analysis still notifies, analysed from the failures."""
    empty = tmp_path / "analysis.json"
    empty.write_text("[]", encoding="utf-8")
    code = run(["notify", "--config", str(plan_path), "--store", store_url, "--analysis", str(empty),
                "--status", "Failed", "--failures", ARGO_FAILURES, "--workflow", "release-7f3k2"])  # fmt: skip
    assert code == 0 and _summary(capsys)["sent"] == 1
    assert len(slack_server.wait_for(1)) == 1


def test_exit_handler_success_with_empty_analysis_resolves(
    plan_path, store_url, tmp_path, pagerduty_server, capsys
):
    """With an empty analysis and status Succeeded (the opt-in resolve step), incidents resolve."""
    failing = _analysis_file(tmp_path, severity=Severity.CRITICAL)
    assert run(["notify", "--config", str(plan_path), "--store", store_url, "--analysis", str(failing)]) == 0
    capsys.readouterr()
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    code = run(["notify", "--config", str(plan_path), "--store", store_url, "--analysis", str(empty),
                "--status", "Succeeded", "--failures", "null", "--workflow", "release-7f3k2"])  # fmt: skip
    assert code == 0 and len(_summary(capsys)["resolved"]) == 1
    assert [e["event_action"] for e in pagerduty_server.events] == ["trigger", "resolve"]
