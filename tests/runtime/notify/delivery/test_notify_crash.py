"""A runtime process killed mid-send loses nothing, and what is sent twice is exactly the
documented window (see notify/outbox.py).

Real processes: ``python -m resilient_templates.runtime notify`` is started with
``RT_NOTIFY_TEST_BLOCK=<point>:<file>``, which makes it create the file and block at that
point (before or after the provider's answer, always before the outbox commit); the test then
kills it with SIGKILL and runs ``tick`` as the restarted process. Lease and timeout are short
(1 s, 0.5 s) so the restart can claim the orphaned row quickly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from delivery_helpers import analysis, channel, rows, write_plan

from resilient_templates.runtime.store import open_store


def _plan(tmp_path, server):
    return write_plan(
        tmp_path / "plan.json", [channel("out", server, rate=100)], {"team": ["out"]},
        timeout="500ms", lease="1s",
    )  # fmt: skip


def _notify_until_blocked(plan, store_url, tmp_path, point):
    """Start `notify`, wait until it blocks at ``point``, SIGKILL it."""
    source = tmp_path / "analysis.json"
    source.write_text(analysis().to_json(), encoding="utf-8")
    marker = tmp_path / "blocked"
    env = {**os.environ, "RT_NOTIFY_TEST_BLOCK": f"{point}:{marker}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "resilient_templates.runtime", "notify", "--config", str(plan),
         "--store", store_url, "--analysis", str(source)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), process.communicate(timeout=5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def _tick(plan, store_url):
    done = subprocess.run(
        [sys.executable, "-m", "resilient_templates.runtime", "tick", "--config", str(plan),
         "--store", store_url, "--deliver-for", "5s"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def _outbox(store_url):
    store = open_store(store_url)
    try:
        return rows(store, "SELECT state, attempts FROM notify_outbox")
    finally:
        store.close()


def test_killed_before_the_send_loses_nothing_and_sends_once(store_url, tmp_path, webhook_server):
    """Killed after claiming a message but before posting it: the restart sends it exactly once."""
    plan = _plan(tmp_path, webhook_server)
    _notify_until_blocked(plan, store_url, tmp_path, "before-send")
    assert webhook_server.received() == []
    assert _outbox(store_url) == [("sending", 0)]
    _tick(plan, store_url)
    _tick(plan, store_url)  # a second restart finds nothing left to send
    assert len(webhook_server.received()) == 1
    assert _outbox(store_url) == [("sent", 1)]


@pytest.mark.parametrize("provider", ["pagerduty", "webhook", "slack"])
def test_killed_after_the_provider_accepted_resends_with_the_same_key(
    provider, store_url, tmp_path, request
):
    """Killed after the provider accepted but before the commit: the restart sends it again
    with the same idempotency key (the one window of at-least-once)."""
    server = request.getfixturevalue(f"{provider}_server")
    plan = _plan(tmp_path, server)
    _notify_until_blocked(plan, store_url, tmp_path, "after-send")
    assert len(server.wait_for(1)) == 1
    assert _outbox(store_url) == [("sending", 0)]  # nothing committed: the message is not lost
    _tick(plan, store_url)
    received = server.received()
    assert len(received) == 2
    assert received[0].idempotency_key == received[1].idempotency_key
    assert _outbox(store_url) == [("sent", 1)]
    if provider == "pagerduty":  # PagerDuty merges the replay into the same alert
        assert len(server.alerts) == 1
