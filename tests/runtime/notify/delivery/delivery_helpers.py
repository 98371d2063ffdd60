"""Helpers for the delivery tests: compiled plans pointing at the provider test servers, an
injected clock, analyses, and store queries.

Time: tests that are about timers (group_wait, escalation delays, backoff) inject a
``FakeClock`` whose ``sleep`` advances it, so they never sleep. Tests about rate limits and
chaos use the real clock, because the providers' arrival times are real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from samples import make_analysis

from resilient_templates.runtime.notify.plan import Plan
from resilient_templates.runtime.store import Store

PD_KEY = "0123456789abcdef0123456789abcdef"  # 32 characters, like an integration key
WEBHOOK_SECRET = "whsec-test-0123456789"  # the WebhookServer's default secret
T0 = 1_780_000_000.0  # 2026-05-28, an arbitrary fixed start for injected clocks


class FakeClock:
    """Injected time: ``clock()`` reads it, ``clock.sleep(s)`` advances it instantly."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def channel(name: str, server: Any, *, rate: float | None = None, **settings: Any) -> dict[str, Any]:
    """A compiled channel plan entry for ``server`` (its type from the server's name)."""
    kind = server.name
    base: dict[str, Any]
    if kind == "slack":
        base = {"webhook_url": server.url}
    elif kind == "pagerduty":
        base = {"integration_key": PD_KEY, "url": server.url}
    elif kind == "webhook":
        base = {"url": server.url, "secret": WEBHOOK_SECRET}
    elif kind == "teams":
        base = {"webhook_url": server.url}
    else:  # pragma: no cover - a test mistake
        raise ValueError(kind)
    entry: dict[str, Any] = {"name": name, "type": kind, "settings": {**base, **settings}}
    if rate is not None:
        entry["rate_per_second"] = rate
    return entry


def plan_dict(
    channels: list[dict[str, Any]],
    receivers: dict[str, list[str] | tuple[list[str], str]],
    *,
    route: dict[str, Any] | None = None,
    escalation_rules: list[dict[str, Any]] | None = None,
    inhibit_rules: list[dict[str, Any]] | None = None,
    **defaults: Any,
) -> dict[str, Any]:
    """A compiled plan (``Plan.from_dict`` shape); receivers map name -> channels or (channels, fallback)."""
    receiver_list = []
    for name, spec in receivers.items():
        chans, fallback = (spec if isinstance(spec, tuple) else (spec, None))
        receiver_list.append({"name": name, "channels": chans, "fallback": fallback})
    root = {
        "receiver": receiver_list[0]["name"],
        "group_by": ["workflow"],
        "group_wait": "0s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "matchers": [],
        "continue": False,
        "routes": [],
    }
    root.update(route or {})
    return {
        "schema_version": 1,
        "channels": channels,
        "receivers": receiver_list,
        "route": root,
        "inhibit_rules": inhibit_rules or [],
        "escalation_rules": escalation_rules or [],
        "defaults": {"max_attempts": 4, "backoff_base": "1s", "backoff_cap": "30s",
                     "timeout": "5s", "lease": "60s", **defaults},  # fmt: skip
    }


def make_plan(*args: Any, **kwargs: Any) -> Plan:
    return Plan.from_dict(plan_dict(*args, **kwargs))


def write_plan(path: Path, *args: Any, **kwargs: Any) -> Path:
    path.write_text(json.dumps(plan_dict(*args, **kwargs)), encoding="utf-8")
    return path


def analysis(workflow: str = "release-7f3k2", **kwargs: Any) -> Any:
    """A representative analysis (samples.make_analysis) for ``workflow``."""
    kwargs.setdefault("url", f"https://argo.example.com/workflows/ci/{workflow}")
    return make_analysis(workflow, **kwargs)


def rows(store: Store, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with store.transaction(write=False) as tx:
        return tx.execute(sql, params).fetchall()


def child_route(receiver: str, *matchers: tuple[str, str, str], index: int = 0, **options: Any) -> dict[str, Any]:
    """A compiled child route: ``child_route("oncall", ("severity", "=", "critical"), continue_=True)``."""
    entry: dict[str, Any] = {
        "receiver": receiver,
        "group_by": ["workflow"],
        "group_wait": "0s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "matchers": [{"name": n, "op": op, "value": v} for n, op, v in matchers],
        "continue": bool(options.pop("continue_", False)),
        "routes": [],
        "key": "{}/" + "{" + ",".join(f'{n}{op}"{v}"' for n, op, v in matchers) + "}/" + str(index),
        "path": f"route.routes[{index}]",
    }
    entry.update(options)
    return entry
