"""The chaos and load scenarios, shared by the tests and ``tests/bench/bench_notify.py``.

* ``run_chaos``: N notifications through the real pipeline to the four HTTP provider servers
  while each server injects faults into a fraction of requests (dropped before processing,
  500, 429 with a short Retry-After, slow but within the timeout). Senders are threads that
  behave like ``notify`` containers (send what is due now, leave retries behind); tickers are
  threads that behave like ``tick``. Counts delivery, duplicates at the servers (processed
  requests per idempotency key) and enqueue-to-accepted latency.
* ``run_load``: many real ``python -m resilient_templates.runtime notify`` processes, started
  at once, sharing one store; each failure is reported by several processes. Checks at the
  servers that no 1 s window holds more requests than the channel's budget and that each
  incident produced exactly one message.

Both are bounded: fixed counts, a time limit, servers that stop with the scenario.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from delivery_helpers import analysis, channel, child_route, plan_dict
from servers import Fault, PagerDutyServer, SlackServer, TeamsServer, WebhookServer

from resilient_templates.policy.taxonomy import Severity
from resilient_templates.runtime.notify.plan import Plan
from resilient_templates.runtime.notify.service import NotifyService
from resilient_templates.runtime.store import open_store

PROVIDERS = ("slack", "pagerduty", "webhook", "teams")
CHAOS_FAULTS = (Fault.drop(), Fault.error(500), Fault.rate_limited("0.05"), Fault.slow(0.05))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(q / 100 * len(ordered) + 0.5))))
    return ordered[rank - 1]


def max_in_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` inside any half-open window [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _servers() -> dict[str, Any]:
    return {
        "slack": SlackServer(),
        "pagerduty": PagerDutyServer(),
        "webhook": WebhookServer(),
        "teams": TeamsServer(),
    }


def _settle(servers: dict[str, Any], timeout: float = 3.0) -> None:
    """Wait (bounded) until every recorded request has its outcome."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(r.outcome != "pending" for s in servers.values() for r in s.received()):
            return
        time.sleep(0.01)


def _unfinished(store: Any) -> int:
    with store.transaction(write=False) as tx:
        return int(tx.execute(
            "SELECT count(*) FROM notify_outbox WHERE state IN ('pending', 'sending')"
        ).fetchone()[0])  # fmt: skip


# ====================================================================== chaos


@dataclass
class ChaosResult:
    notifications: int
    delivered: int
    failed: int
    requests: int
    faulted_requests: int
    duplicates: int
    delivered_at_servers: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    seconds: float
    backend: str = ""
    fault_mix: dict[str, int] = field(default_factory=dict)

    @property
    def delivered_ratio(self) -> float:
        return self.delivered / self.notifications if self.notifications else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delivered_ratio": self.delivered_ratio}


def chaos_plan(servers: dict[str, Any], *, max_attempts: int = 10) -> Plan:
    """Route each failure by its ``stage`` label to one provider; short, scaled-down backoff."""
    routes = [child_route(f"r-{k}", ("stage", "=", k), index=i) for i, k in enumerate(servers)]
    return Plan.from_dict(plan_dict(
        [channel(k, s, rate=1000) for k, s in servers.items()],
        {f"r-{k}": [k] for k in servers},
        route={"group_by": ["workflow"], "group_wait": "0s", "routes": routes},
        max_attempts=max_attempts, backoff_base="5ms", backoff_cap="100ms", timeout="2s",
        lease="30s",
    ))  # fmt: skip


def run_chaos(
    store_url: str,
    *,
    notifications: int = 1000,
    fault_rate: float = 0.30,
    senders: int = 4,
    tickers: int = 2,
    seed: int = 20260901,
    time_limit: float = 180.0,
    max_attempts: int = 10,
) -> ChaosResult:
    """Send ``notifications`` through the pipeline while the servers inject faults.

    ``max_attempts=1`` is the baseline: one attempt per message, no retries.
    """
    servers = _servers()
    start = time.monotonic()
    try:
        for offset, server in enumerate(servers.values()):
            server.chaos(fault_rate, seed=seed + offset, faults=CHAOS_FAULTS)
        plan = chaos_plan(servers, max_attempts=max_attempts)
        setup = open_store(store_url)
        NotifyService(setup, plan)
        kinds = list(servers)
        work = [analysis(f"chaos-{i:04d}", stage=kinds[i % len(kinds)]) for i in range(notifications)]
        feeding = threading.Event()
        feeding.set()
        errors: list[BaseException] = []
        deadline = start + time_limit

        def sender(part: list[Any]) -> None:
            store = open_store(store_url)
            try:
                service = NotifyService(store, plan, migrate_store=False)
                for item in part:
                    if time.monotonic() > deadline:
                        return
                    service.notify([item], deliver_for=0)  # like a notify container
            except BaseException as exc:  # noqa: BLE001 - reported by the caller
                errors.append(exc)
            finally:
                store.close()

        def ticker() -> None:
            store = open_store(store_url)
            try:
                service = NotifyService(store, plan, migrate_store=False)
                while time.monotonic() < deadline:
                    service.tick(deliver_for=0.2)  # like `tick --loop`
                    if not feeding.is_set() and _unfinished(store) == 0:
                        return
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                store.close()

        feed = [threading.Thread(target=sender, args=(work[i::senders],)) for i in range(senders)]
        ticks = [threading.Thread(target=ticker) for _ in range(tickers)]
        for t in feed + ticks:
            t.start()
        for t in feed:
            t.join(timeout=time_limit)
        feeding.clear()
        for t in ticks:
            t.join(timeout=time_limit)
        if errors:
            raise errors[0]
        seconds = time.monotonic() - start
        _settle(servers)
        with setup.transaction(write=False) as tx:
            outbox_rows = tx.execute(
                "SELECT state, created_at, sent_at FROM notify_outbox"
            ).fetchall()
        setup.close()
        latencies = [(s - c) * 1000 for state, c, s in outbox_rows if state == "sent"]
        received = [r for s in servers.values() for r in s.received()]
        mix: dict[str, int] = {}
        for r in received:
            mix[r.fault] = mix.get(r.fault, 0) + 1
        return ChaosResult(
            notifications=notifications,
            delivered=sum(1 for r in outbox_rows if r[0] == "sent"),
            failed=sum(1 for r in outbox_rows if r[0] == "failed"),
            requests=len(received),
            faulted_requests=sum(1 for r in received if r.fault != "ok"),
            duplicates=sum(n - 1 for s in servers.values() for n in s.duplicates().values()),
            delivered_at_servers=sum(len(s.delivered_keys()) for s in servers.values()),
            latency_p50_ms=round(percentile(latencies, 50), 1),
            latency_p99_ms=round(percentile(latencies, 99), 1),
            latency_max_ms=round(max(latencies, default=0.0), 1),
            seconds=round(seconds, 2),
            backend=store_url.split(":", 1)[0],
            fault_mix=mix,
        )
    finally:
        for server in servers.values():
            server.close()


# ====================================================================== load


@dataclass
class LoadResult:
    processes: int
    incidents: int
    exit_codes: dict[int, int]
    messages: dict[str, int]  # per channel: processed requests at the server
    unique_keys: dict[str, int]
    duplicates: int
    budget: dict[str, int]  # per channel: the budget per 1 s window
    max_per_window: dict[str, int]  # per channel: the most requests seen in any 1 s window
    messages_per_second: dict[str, float]
    seconds: float
    backend: str = ""
    stderr_sample: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_load(
    store_url: str,
    workdir: Path,
    *,
    processes: int = 120,
    reports_per_failure: int = 3,
    critical_every: int = 8,
    hook_rate: float = 5.0,
    time_limit: float = 240.0,
) -> LoadResult:
    """Start ``processes`` notify processes at once; every failure is reported several times.

    Failures go to a webhook (budget ``hook_rate``/s); critical ones (every
    ``critical_every``-th) also to Slack at its default 1/s.
    """
    slack, hook = SlackServer(), WebhookServer()
    start = time.monotonic()
    try:
        routes = [
            child_route("chat", ("severity", "=", "critical"), index=0, continue_=True),
            child_route("team", index=1),
        ]
        plan_path = workdir / "plan.json"
        plan_path.write_text(json.dumps(plan_dict(
            [channel("chat", slack), channel("hook", hook, rate=hook_rate)],
            {"team": ["hook"], "chat": ["chat"]},
            route={"group_by": ["workflow"], "group_wait": "0s", "routes": routes},
            timeout="5s", lease="30s", backoff_base="50ms", backoff_cap="1s",
        )), encoding="utf-8")  # fmt: skip
        setup = open_store(store_url)
        NotifyService(setup, Plan.from_json(plan_path.read_text()))
        setup.close()
        failures = processes // reports_per_failure
        files = []
        for i in range(failures):
            severity = Severity.CRITICAL if i % critical_every == 0 else Severity.ERROR
            path = workdir / f"analysis-{i:03d}.json"
            path.write_text(analysis(f"load-{i:03d}", severity=severity).to_json(), encoding="utf-8")
            files.append(path)
        env = _bytecode_env(workdir)
        command = [sys.executable, "-m", "resilient_templates.runtime", "notify", "--config",
                   str(plan_path), "--store", store_url, "--deliver-for", "120s", "-q"]  # fmt: skip
        procs = [
            subprocess.Popen([*command, "--analysis", str(files[n % failures])], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
            for n in range(processes)
        ]
        codes: dict[int, int] = {}
        stderr_sample = ""
        deadline = start + time_limit
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            codes[proc.returncode] = codes.get(proc.returncode, 0) + 1
            if proc.returncode != 0 and not stderr_sample:
                stderr_sample = err.decode(errors="replace")[-500:]
        seconds = time.monotonic() - start
        servers = {"chat": slack, "hook": hook}
        _settle(servers)
        budgets = {"chat": 1, "hook": int(hook_rate)}
        rates = {}
        for name, server in servers.items():
            times = [r.received_at for r in server.received()]
            span = (max(times) - min(times)) if len(times) > 1 else 0.0
            rates[name] = round((len(times) - 1) / span, 2) if span else 0.0
        return LoadResult(
            processes=processes,
            incidents=failures + len(range(0, failures, critical_every)),
            exit_codes=codes,
            messages={k: len(s.delivered()) for k, s in servers.items()},
            unique_keys={k: len(s.delivered_keys()) for k, s in servers.items()},
            duplicates=sum(n - 1 for s in servers.values() for n in s.duplicates().values()),
            budget=budgets,
            max_per_window={k: max_in_window([r.received_at for r in s.received()], 1.0)
                            for k, s in servers.items()},  # fmt: skip
            messages_per_second=rates,
            seconds=round(seconds, 2),
            backend=store_url.split(":", 1)[0],
            stderr_sample=stderr_sample,
        )
    finally:
        slack.close()
        hook.close()


_WARM_IMPORTS = (
    "import resilient_templates.runtime.notify.cli, resilient_templates.runtime.notify.service, "
    "resilient_templates.runtime.notify.channels.slack, "
    "resilient_templates.runtime.notify.channels.webhook, jinja2, psycopg"
)


def _bytecode_env(workdir: Path) -> dict[str, str]:
    """An environment whose processes cache bytecode under ``workdir`` (warmed once).

    The test machine sets PYTHONDONTWRITEBYTECODE, so every process would compile every module
    from source (~0.2 s of CPU each); a container image ships compiled bytecode. The cache
    lives in the scenario's temporary directory, never in the source tree.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    subprocess.run([sys.executable, "-c", _WARM_IMPORTS], env=env, check=True, timeout=120)
    return env


def summary_line(result: Any) -> str:
    return json.dumps(result.to_dict(), sort_keys=True)


def postgres_server() -> Any:
    """A throwaway PostgreSQL server (the suite's ``PostgresServer``) for the bench; call
    ``.start()`` and ``.stop()``. Loaded from tests/conftest.py by path."""
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "conftest.py"
    spec = importlib.util.spec_from_file_location("rt_tests_root_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PostgresServer()
