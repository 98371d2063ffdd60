"""The compiled notification plan: what the runtime reads, as frozen stdlib dataclasses.

The YAML config (``notify/config.py``, pydantic) is validated once and compiled into this
plan, Alertmanager style: the config shape has "unset = inherit", the plan carries every
route's resolved options. ``load_plan(path)`` reads a compiled ``.json`` plan with the stdlib
only (the fast path a failure container takes) or validates and compiles a YAML config.

Channel settings keep ``${ENV}`` references and ``*_file`` paths as written: secrets are
resolved when a message is sent (``channels.base.resolve``), never stored in the plan.

``templates_dir`` is stored relative to the file it belongs to (the YAML config, and the
compiled plan.json written next to its templates: ``generate`` ships both in one ConfigMap
with ``templates_dir: "."``), so a plan compiled on one machine works on another;
``Plan.templates_path`` is the directory on this machine.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...policy.duration import Duration

__all__ = [
    "CHANNEL_TYPES",
    "DEFAULT_RATE_PER_SECOND",
    "DEFAULT_RETENTION",
    "PLAN_SCHEMA_VERSION",
    "ChannelPlan",
    "DeliveryDefaults",
    "EscalationPlan",
    "InhibitPlan",
    "Matcher",
    "Plan",
    "ReceiverPlan",
    "RoutePlan",
    "load_plan",
    "parse_matcher",
]

PLAN_SCHEMA_VERSION = 1
CHANNEL_TYPES = ("slack", "email", "pagerduty", "webhook", "teams")
#: Per-channel send budgets (messages per second) when a channel does not set its own:
#: Slack "1 per second", Teams workflows throttle above ~4/s, PagerDuty ~120 events/min/key.
DEFAULT_RATE_PER_SECOND = {"slack": 1.0, "teams": 4.0, "pagerduty": 2.0, "webhook": 10.0, "email": 5.0}
#: Alertmanager's route defaults.
DEFAULT_GROUP_WAIT = Duration.of(seconds=30)
DEFAULT_GROUP_INTERVAL = Duration.of(minutes=5)
DEFAULT_REPEAT_INTERVAL = Duration.of(hours=4)
#: How long ``tick`` keeps finished messages, audit rows and resolved incidents (30 days).
DEFAULT_RETENTION = Duration.of(hours=720)

_MATCHER = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"""
    r"""(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^"\s,{}]*))\s*$"""
)
_OPS = ("=", "!=", "=~", "!~")


@functools.lru_cache(maxsize=1024)
def _anchored(pattern: str) -> re.Pattern[str]:
    """Alertmanager anchors matcher regexes on both ends."""
    return re.compile(f"^(?:{pattern})$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One Alertmanager label matcher: ``name op value`` with op ``=``, ``!=``, ``=~``, ``!~``.

    A missing label matches as the empty string, as in Alertmanager.
    """

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "") or ""
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = _anchored(self.value).match(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


def parse_matcher(text: str) -> Matcher:
    """Parse ``severity="critical"``, ``stage!~"pr_.*"`` or ``team=infra`` (unquoted).

    Raises ``ValueError`` with the expectation when the text is not a matcher or the regex
    does not compile.
    """
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError('a matcher such as severity="critical" (operators =, !=, =~, !~)')
    quoted = match.group("quoted")
    value = (
        json.loads(f'"{quoted}"') if quoted is not None else match.group("bare")
    )
    matcher = Matcher(match.group("name"), match.group("op"), value)
    if matcher.op in ("=~", "!~"):
        try:
            _anchored(value)
        except re.error as exc:
            raise ValueError(f"a valid regular expression ({exc})") from None
    return matcher


def _matchers_from(data: Any) -> tuple[Matcher, ...]:
    return tuple(Matcher(m["name"], m["op"], m["value"]) for m in data or ())


def _matchers_to(matchers: tuple[Matcher, ...]) -> list[dict[str, str]]:
    return [{"name": m.name, "op": m.op, "value": m.value} for m in matchers]


def matches_all(matchers: tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """One channel: its type and settings as written (``${ENV}`` and ``*_file`` unresolved)."""

    name: str
    type: str
    enabled: bool = True
    rate_per_second: float = 1.0
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "enabled": self.enabled,
            "rate_per_second": self.rate_per_second,
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChannelPlan:
        return cls(
            name=data["name"],
            type=data["type"],
            enabled=bool(data.get("enabled", True)),
            rate_per_second=float(
                data.get("rate_per_second") or DEFAULT_RATE_PER_SECOND.get(data["type"], 1.0)
            ),
            settings=dict(data.get("settings") or {}),
        )


@dataclass(frozen=True, slots=True)
class ReceiverPlan:
    """A named set of channels (Alertmanager's receiver) and the receiver to fall back to."""

    name: str
    channels: tuple[str, ...]
    fallback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "channels": list(self.channels), "fallback": self.fallback}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReceiverPlan:
        return cls(data["name"], tuple(data.get("channels") or ()), data.get("fallback"))


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """A route node with its options resolved (inherited from the parent when unset).

    ``group_by`` is ``None`` for Alertmanager's ``['...']`` (group by all labels).
    ``key`` is Alertmanager's route key (``{}/{severity="critical"}/0``), ``path`` the
    config path (``route.routes[0]``).
    """

    receiver: str
    group_by: tuple[str, ...] | None
    group_wait: Duration
    group_interval: Duration
    repeat_interval: Duration
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    routes: tuple[RoutePlan, ...] = ()
    key: str = "{}"
    path: str = "route"

    def to_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "group_by": None if self.group_by is None else list(self.group_by),
            "group_wait": self.group_wait.to_go(),
            "group_interval": self.group_interval.to_go(),
            "repeat_interval": self.repeat_interval.to_go(),
            "matchers": _matchers_to(self.matchers),
            "continue": self.continue_,
            "routes": [r.to_dict() for r in self.routes],
            "key": self.key,
            "path": self.path,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutePlan:
        group_by = data.get("group_by")
        return cls(
            receiver=data["receiver"],
            group_by=None if group_by is None else tuple(group_by),
            group_wait=Duration.parse(data["group_wait"]),
            group_interval=Duration.parse(data["group_interval"]),
            repeat_interval=Duration.parse(data["repeat_interval"]),
            matchers=_matchers_from(data.get("matchers")),
            continue_=bool(data.get("continue", False)),
            routes=tuple(cls.from_dict(r) for r in data.get("routes") or ()),
            key=data.get("key", "{}"),
            path=data.get("path", "route"),
        )


@dataclass(frozen=True, slots=True)
class InhibitPlan:
    """Mute alerts matching ``target`` while one matching ``source`` fires with equal labels."""

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_matchers": _matchers_to(self.source_matchers),
            "target_matchers": _matchers_to(self.target_matchers),
            "equal": list(self.equal),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InhibitPlan:
        return cls(
            _matchers_from(data.get("source_matchers")),
            _matchers_from(data.get("target_matchers")),
            tuple(data.get("equal") or ()),
        )


@dataclass(frozen=True, slots=True)
class EscalationPlan:
    """Escalate an unacknowledged incident after ``delay``, then every ``repeat_interval``.

    The rule applies to incidents whose severity is ``severity`` (when set) and whose labels
    match ``matchers``. Targets are ``receivers`` plus the bare ``channels`` (the spec's
    shape); ``channel_names(plan)`` flattens both.
    """

    delay: Duration
    severity: str | None = None
    matchers: tuple[Matcher, ...] = ()
    receivers: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    repeat_interval: Duration = field(default_factory=Duration.zero)
    max_repeats: int = 0

    def applies_to(self, labels: Mapping[str, str]) -> bool:
        if self.severity is not None and labels.get("severity") != self.severity:
            return False
        return matches_all(self.matchers, labels)

    def channel_names(self, plan: Plan) -> tuple[str, ...]:
        names: list[str] = []
        for receiver in self.receivers:
            names.extend(plan.receivers[receiver].channels)
        names.extend(self.channels)
        return tuple(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        return {
            "delay": self.delay.to_go(),
            "severity": self.severity,
            "matchers": _matchers_to(self.matchers),
            "receivers": list(self.receivers),
            "channels": list(self.channels),
            "repeat_interval": self.repeat_interval.to_go(),
            "max_repeats": self.max_repeats,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EscalationPlan:
        return cls(
            delay=Duration.parse(data["delay"]),
            severity=data.get("severity"),
            matchers=_matchers_from(data.get("matchers")),
            receivers=tuple(data.get("receivers") or ()),
            channels=tuple(data.get("channels") or ()),
            repeat_interval=Duration.parse(data.get("repeat_interval") or "0s"),
            max_repeats=int(data.get("max_repeats") or 0),
        )


@dataclass(frozen=True, slots=True)
class DeliveryDefaults:
    """How delivery retries (tenacity vocabulary) and leases outbox rows, and how long the
    state store keeps what is finished (``retention``)."""

    max_attempts: int = 6
    backoff_base: Duration = field(default_factory=lambda: Duration.of(seconds=1))
    backoff_cap: Duration = field(default_factory=lambda: Duration.of(minutes=5))
    timeout: Duration = field(default_factory=lambda: Duration.of(seconds=10))
    lease: Duration = field(default_factory=lambda: Duration.of(seconds=60))
    max_alerts: int = 20  # failures carried in one grouped notification ("and N more")
    retention: Duration = field(default_factory=lambda: DEFAULT_RETENTION)  # then tick prunes

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "backoff_base": self.backoff_base.to_go(),
            "backoff_cap": self.backoff_cap.to_go(),
            "timeout": self.timeout.to_go(),
            "lease": self.lease.to_go(),
            "max_alerts": self.max_alerts,
            "retention": self.retention.to_go(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeliveryDefaults:
        base = cls()
        return cls(
            max_attempts=int(data.get("max_attempts", base.max_attempts)),
            backoff_base=Duration.parse(data.get("backoff_base", base.backoff_base)),
            backoff_cap=Duration.parse(data.get("backoff_cap", base.backoff_cap)),
            timeout=Duration.parse(data.get("timeout", base.timeout)),
            lease=Duration.parse(data.get("lease", base.lease)),
            max_alerts=int(data.get("max_alerts", base.max_alerts)),
            retention=Duration.parse(data.get("retention", base.retention)),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    channels: Mapping[str, ChannelPlan]
    receivers: Mapping[str, ReceiverPlan]
    route: RoutePlan
    inhibit_rules: tuple[InhibitPlan, ...] = ()
    escalation_rules: tuple[EscalationPlan, ...] = ()
    defaults: DeliveryDefaults = field(default_factory=DeliveryDefaults)
    templates_dir: str | None = None  # as stored: relative to the plan (or config) file
    source: str = ""  # the config file the plan was compiled from
    base_dir: str = field(default="", compare=False)  # where the plan was read from (not stored)

    @property
    def templates_path(self) -> str | None:
        """The user templates' directory on this machine: ``templates_dir`` resolved against
        the directory of the file the plan came from (a compiled plan.json, or the YAML)."""
        if not self.templates_dir:
            return None
        return str(Path(self.base_dir or ".") / self.templates_dir)

    def channels_of(self, receiver: str) -> tuple[ChannelPlan, ...]:
        """The enabled channels of ``receiver``, in config order."""
        return tuple(
            self.channels[name]
            for name in self.receivers[receiver].channels
            if self.channels[name].enabled
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "source": self.source,
            "templates_dir": self.templates_dir,
            "channels": [c.to_dict() for c in self.channels.values()],
            "receivers": [r.to_dict() for r in self.receivers.values()],
            "route": self.route.to_dict(),
            "inhibit_rules": [r.to_dict() for r in self.inhibit_rules],
            "escalation_rules": [r.to_dict() for r in self.escalation_rules],
            "defaults": self.defaults.to_dict(),
        }

    def to_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        version = data.get("schema_version")
        if version != PLAN_SCHEMA_VERSION:
            raise ConfigError(
                "unsupported plan schema_version",
                key="schema_version",
                value=version,
                expected=f"{PLAN_SCHEMA_VERSION} (recompile the plan with this version)",
            )
        channels = [ChannelPlan.from_dict(c) for c in data.get("channels") or ()]
        receivers = [ReceiverPlan.from_dict(r) for r in data.get("receivers") or ()]
        return cls(
            channels={c.name: c for c in channels},
            receivers={r.name: r for r in receivers},
            route=RoutePlan.from_dict(data["route"]),
            inhibit_rules=tuple(InhibitPlan.from_dict(r) for r in data.get("inhibit_rules") or ()),
            escalation_rules=tuple(
                EscalationPlan.from_dict(r) for r in data.get("escalation_rules") or ()
            ),
            defaults=DeliveryDefaults.from_dict(data.get("defaults") or {}),
            templates_dir=data.get("templates_dir"),
            source=data.get("source", ""),
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))


def load_plan(path: str | Path) -> Plan:
    """Load a compiled ``.json`` plan (stdlib only) or validate and compile a YAML config."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read notification config: {exc.strerror}", file=str(path)) from None
    if path.suffix == ".json":
        try:
            plan = Plan.from_json(text)
            return dataclasses.replace(plan, base_dir=str(path.absolute().parent))
        except ConfigError as exc:
            raise ConfigError(exc.problem, file=str(path), key=exc.key, value=exc.value,
                              expected=exc.expected) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"not a compiled notification plan ({type(exc).__name__}: {exc})",
                file=str(path),
                expected="the JSON written by compile_plan()",
            ) from None
    from .config import compile_plan  # pydantic + yaml, imported only for YAML configs

    return compile_plan(path)
