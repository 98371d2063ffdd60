"""The notification config (YAML): validated with pydantic, compiled into a ``Plan``.

The shape is the spec's (``channels``, ``escalation_rules``) plus Alertmanager's routing
vocabulary (``receivers``, ``route`` with ``matchers``/``group_by``/``group_wait``/
``group_interval``/``repeat_interval``/``continue``/``routes``, ``inhibit_rules``)::

    channels:
      - {name: slack-critical, type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}
      - {name: pagerduty-critical, type: pagerduty, integration_key_file: /etc/rt/secrets/pd-key}
    receivers:
      - {name: oncall, channels: [slack-critical, pagerduty-critical], fallback: email-only}
    route:
      receiver: team
      group_by: [signature]
      routes:
        - {matchers: ['severity="critical"'], receiver: oncall, continue: true}
    inhibit_rules:
      - {source_matchers: [...], target_matchers: [...], equal: [workflow]}
    escalation_rules:
      - {severity: critical, delay: 5m, channels: [pagerduty-critical], repeat_interval: 15m, max_repeats: 4}
    delivery: {max_attempts: 6, backoff_base: 1s, backoff_cap: 5m, timeout: 10s}
    templates_dir: templates/        # relative to this file
    retention: 720h                  # tick prunes finished messages, audit, resolved incidents

Without ``route``, everything goes to receiver ``default`` (defined, or made of all channels).

Secrets (webhook URLs of Slack and Teams, PagerDuty keys, SMTP passwords, webhook HMAC
secrets) must be ``${ENV}`` references or ``*_file`` paths; an inline value is an error, so a
secret never lands in a generated manifest or a compiled plan. References are resolved at
send time: an unset variable fails that channel's sends only.

Every problem is reported at once, one line each: ``FILE: channels[1].integration_key: …``.
This module imports pydantic and PyYAML; the runtime's fast path reads the compiled JSON plan.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError

from ...errors import ConfigError, DurationError
from ...policy.duration import Duration
from ...policy.taxonomy import Severity
from .plan import (
    DEFAULT_GROUP_INTERVAL,
    DEFAULT_GROUP_WAIT,
    DEFAULT_RATE_PER_SECOND,
    DEFAULT_REPEAT_INTERVAL,
    DEFAULT_RETENTION,
    ChannelPlan,
    DeliveryDefaults,
    EscalationPlan,
    InhibitPlan,
    Matcher,
    Plan,
    ReceiverPlan,
    RoutePlan,
    parse_matcher,
)

__all__ = [
    "NotifyConfig",
    "compile_config",
    "compile_plan",
    "load_config",
    "plan_warnings",
    "validate_file",
]

log = logging.getLogger("resilient_templates.runtime.notify")

EXPECTED_DURATION = "a Go duration such as '30s', '5m' or '4h'"
SECRET_FIELDS = {
    "slack": ("webhook_url",),
    "teams": ("webhook_url",),
    "pagerduty": ("integration_key",),
    "email": ("password",),
    "webhook": ("secret",),
}
#: Settings of which exactly one of ``key`` / ``key_file`` is required.
REQUIRED_REFS = {
    "slack": ("webhook_url",),
    "teams": ("webhook_url",),
    "pagerduty": ("integration_key",),
    "webhook": ("url", "secret"),
    "email": (),
}
_ENV_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_ENV_REFS = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _duration(value: Any) -> Duration:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PydanticCustomError("rt", "not a duration", {"expected": EXPECTED_DURATION})
    try:
        return Duration.parse(value)
    except DurationError as exc:
        raise PydanticCustomError("rt", "{problem}", {"problem": str(exc), "expected": EXPECTED_DURATION}) from None


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > 100:
        raise PydanticCustomError(
            "rt", "invalid name", {"expected": "letters, digits, '.', '_' or '-' (at most 100)"}
        )
    return value


def _address(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", value.strip()):
        raise PydanticCustomError("rt", "not an email address", {"expected": "an address such as team@example.com"})
    return value.strip()


GoDuration = Annotated[Duration, PlainValidator(_duration)]
Name = Annotated[str, PlainValidator(_name)]
Address = Annotated[str, PlainValidator(_address)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=False)


class _ChannelSpec(_Strict):
    name: Name
    enabled: bool = True
    rate_per_second: Annotated[float, Field(gt=0, le=1000)] | None = None


class SlackSpec(_ChannelSpec):
    type: Literal["slack"]
    webhook_url: str | None = None
    webhook_url_file: str | None = None


class TeamsSpec(_ChannelSpec):
    type: Literal["teams"]
    webhook_url: str | None = None
    webhook_url_file: str | None = None


class PagerDutySpec(_ChannelSpec):
    type: Literal["pagerduty"]
    integration_key: str | None = None
    integration_key_file: str | None = None
    url: str = "https://events.pagerduty.com/v2/enqueue"
    source: str | None = None
    client: str = "resilient-templates"
    client_url: str | None = None


class EmailSpec(_ChannelSpec):
    type: Literal["email"]
    smtp_host: str
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    from_: Annotated[Address, Field(alias="from")]
    to: Annotated[list[Address], Field(min_length=1)]
    hello: str | None = None
    tls_ca_file: str | None = None
    tls_insecure_skip_verify: bool = False
    allow_insecure_auth: bool = False  # AUTH without TLS: only for a trusted local relay


class WebhookSpec(_ChannelSpec):
    type: Literal["webhook"]
    url: str | None = None
    url_file: str | None = None
    secret: str | None = None
    secret_file: str | None = None
    max_alerts: Annotated[int, Field(ge=0)] = 0


CHANNEL_MODELS: dict[str, type[_ChannelSpec]] = {
    "slack": SlackSpec,
    "teams": TeamsSpec,
    "pagerduty": PagerDutySpec,
    "email": EmailSpec,
    "webhook": WebhookSpec,
}


class ReceiverSpec(_Strict):
    name: Name
    channels: Annotated[list[str], Field(min_length=1)]
    fallback: str | None = None


#: Route durations are checked with the references (``_Checker.duration``), so a bad duration
#: does not hide the route's other problems.
RawDuration = Union[str, int]


class RouteSpec(_Strict):
    receiver: str | None = None
    group_by: list[str] | None = None
    group_wait: RawDuration | None = None
    group_interval: RawDuration | None = None
    repeat_interval: RawDuration | None = None
    matchers: list[str] = []
    continue_: bool = Field(False, alias="continue")
    routes: list[RouteSpec] = []


class InhibitSpec(_Strict):
    source_matchers: Annotated[list[str], Field(min_length=1)]
    target_matchers: Annotated[list[str], Field(min_length=1)]
    equal: list[str] = []


class EscalationSpec(_Strict):
    severity: Severity | None = None
    matchers: list[str] = []
    delay: GoDuration
    channels: list[str] = []
    receivers: list[str] = []
    repeat_interval: GoDuration | None = None
    max_repeats: Annotated[int, Field(ge=0, le=1000)] = 0


class DeliverySpec(_Strict):
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 6
    backoff_base: GoDuration = Duration.of(seconds=1)
    backoff_cap: GoDuration = Duration.of(minutes=5)
    timeout: GoDuration = Duration.of(seconds=10)
    lease: GoDuration = Duration.of(seconds=60)
    max_alerts: Annotated[int, Field(ge=1, le=1000)] = 20


class NotifyConfig(_Strict):
    channels: Annotated[list[Any], Field(min_length=1)]
    receivers: list[ReceiverSpec] = []
    route: RouteSpec | None = None
    inhibit_rules: list[InhibitSpec] = []
    escalation_rules: list[EscalationSpec] = []
    delivery: DeliverySpec = DeliverySpec()
    templates_dir: str | None = None
    retention: GoDuration = DEFAULT_RETENTION


class _TopLevel(_Strict):
    """Only the top-level keys; each section is validated on its own so every problem shows."""

    channels: Annotated[list[Any], Field(min_length=1)]
    receivers: list[Any] = []
    route: Any = None
    inhibit_rules: list[Any] = []
    escalation_rules: list[Any] = []
    delivery: Any = None
    templates_dir: str | None = None
    retention: Any = None


# ====================================================================== errors


def _path(loc: tuple[Any, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that owns the key at ``loc`` (for listing the allowed keys)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next(
            (f for n, f in current.model_fields.items() if n == part or f.alias == part), None
        )
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (list, Union) or str(origin) == "types.UnionType":
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = args[0] if args else annotation
            if origin is list or len(args) == 1:
                continue
            return annotation
        else:
            return annotation


def _keys_of(model: type[BaseModel]) -> str:
    return ", ".join(f.alias or n for n, f in model.model_fields.items())


def _secret_key(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return any(leaf == f for fields in SECRET_FIELDS.values() for f in fields)


def _problems_from(
    exc: ValidationError, model: type[BaseModel], file: str, prefix: str = ""
) -> list[ConfigError]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = _path(loc, prefix)
        kind = error["type"]
        ctx = error.get("ctx") or {}
        value = error.get("input")
        if kind == "missing":
            problems.append(ConfigError("required key is missing", file=file, key=key))
            continue
        if kind == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            expected = f"one of: {_keys_of(owner)}" if owner else None
            problems.append(ConfigError("unknown key", file=file, key=key, expected=expected))
            continue
        if kind == "too_short":
            minimum = ctx.get("min_length", 1)
            problems.append(ConfigError(
                "too few items", file=file, key=key, value=value, has_value=True,
                expected=f"at least {minimum} item{'s' if minimum != 1 else ''}",
            ))
            continue
        if kind == "rt":
            problem = ctx.get("problem") or error["msg"]
            expected = ctx.get("expected")
        else:
            problem = "invalid value"
            expected = error["msg"].removeprefix("Input should be ").removeprefix("String should ")
            expected = expected[0].lower() + expected[1:] if expected else None
        shown = "<secret>" if _secret_key(key) else value
        problems.append(
            ConfigError(problem, file=file, key=key, value=shown, expected=expected, has_value=True)
        )
    return problems


# ====================================================================== loading


def _yaml_load(text: str, file: str) -> Any:
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(
                    f"duplicate key {key!r} (line {mark.line + 1})", file=file,
                    expected="each key once per mapping",
                )
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML{where}: {problem}", file=file) from None


def load_config(path: str | Path) -> tuple[NotifyConfig, list[Any]]:
    """Parse and validate the file's structure: (config, per-channel specs); raises ConfigError."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read notification config: {exc.strerror}", file=file) from None
    data = _yaml_load(text, file)
    return validate_data(data, file)


def _validate_items(
    model: type[BaseModel], items: list[Any], key: str, file: str, problems: list[ConfigError]
) -> list[Any]:
    valid = []
    for index, raw in enumerate(items):
        try:
            valid.append(model.model_validate(raw))
        except ValidationError as exc:
            problems.extend(_problems_from(exc, model, file, f"{key}[{index}]"))
    return valid


def validate_data(data: Any, file: str) -> tuple[NotifyConfig, list[Any]]:
    """Validate the structure of every section; raises one ConfigError listing all problems.

    Sections that are valid are still cross-checked when others are not, so a single run
    reports structural and reference problems together.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            "the notification config must be a mapping", file=file, value=type(data).__name__,
            expected="keys channels, receivers, route, inhibit_rules, escalation_rules", has_value=True,
        )
    problems: list[ConfigError] = []
    try:
        top = _TopLevel.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems_from(exc, NotifyConfig, file))
        top = _TopLevel.model_construct(
            **{k: v for k, v in data.items() if k in _TopLevel.model_fields and isinstance(v, (list, str, dict))}
        )
    channels: list[Any] = []
    raw_channels = top.channels if isinstance(getattr(top, "channels", None), list) else []
    for index, raw in enumerate(raw_channels):
        key = f"channels[{index}]"
        kind = raw.get("type") if isinstance(raw, dict) else None
        model = CHANNEL_MODELS.get(kind) if isinstance(kind, str) else None
        if not isinstance(raw, dict):
            problems.append(ConfigError("a channel must be a mapping", file=file, key=key))
        elif model is None:
            problems.append(
                ConfigError("unknown channel type", file=file, key=f"{key}.type", value=kind,
                            expected=f"one of: {', '.join(CHANNEL_MODELS)}", has_value=True)
            )
        else:
            try:
                channels.append((index, model.model_validate(raw)))
            except ValidationError as exc:
                problems.extend(_problems_from(exc, model, file, key))
    receivers = _validate_items(ReceiverSpec, _list(top, "receivers"), "receivers", file, problems)
    route = None
    if getattr(top, "route", None) is not None:
        try:
            route = RouteSpec.model_validate(top.route)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, RouteSpec, file, "route"))
    inhibit = _validate_items(InhibitSpec, _list(top, "inhibit_rules"), "inhibit_rules", file, problems)
    escalation = _validate_items(EscalationSpec, _list(top, "escalation_rules"), "escalation_rules", file, problems)
    delivery = DeliverySpec()
    if getattr(top, "delivery", None) is not None:
        try:
            delivery = DeliverySpec.model_validate(top.delivery)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, DeliverySpec, file, "delivery"))
    retention = DEFAULT_RETENTION
    if getattr(top, "retention", None) is not None:
        try:
            retention = _duration(top.retention)
            if not retention:
                raise PydanticCustomError("rt", "retention cannot be zero", {"expected": "a positive duration such as 720h"})
        except PydanticCustomError as exc:
            context = exc.context or {}
            problems.append(ConfigError(context.get("problem") or exc.message(), file=file, key="retention",
                                        value=top.retention, expected=context.get("expected"), has_value=True))
    config = NotifyConfig.model_construct(
        retention=retention,
        channels=raw_channels,
        receivers=receivers,
        route=route,
        inhibit_rules=inhibit,
        escalation_rules=escalation,
        delivery=delivery,
        templates_dir=getattr(top, "templates_dir", None) if isinstance(getattr(top, "templates_dir", None), str) else None,
    )
    if problems:
        raise _Partial(problems, config, channels, data, route_invalid=route is None and top.route is not None)
    return config, channels


def _list(top: Any, name: str) -> list[Any]:
    value = getattr(top, name, None)
    return value if isinstance(value, list) else []


class _Partial(ConfigError):
    """Structural problems, with the sections that did validate (for the reference checks)."""

    def __init__(
        self, problems: list[ConfigError], config: NotifyConfig, channels: list[Any], data: dict[str, Any],
        *, route_invalid: bool,
    ) -> None:
        first = problems[0]
        super().__init__(
            first.problem, file=first.file, key=first.key, value=first.value,
            expected=first.expected, has_value=first.has_value, problems=problems,
        )
        self.config = config
        self.channels = channels
        self.route_invalid = route_invalid
        self.channel_names = _raw_names(data.get("channels"))
        self.receiver_names = _raw_names(data.get("receivers"))
        self.raw_receivers = data.get("receivers") if isinstance(data.get("receivers"), list) else []


def _combined(problems: list[ConfigError]) -> ConfigError:
    """One error for several problems; ``str()`` prints each on its own line."""
    if len(problems) == 1:
        return problems[0]
    first = problems[0]
    return ConfigError(
        first.problem, file=first.file, key=first.key, value=first.value,
        expected=first.expected, has_value=first.has_value, problems=problems,
    )


def _raw_names(items: Any) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)}


# ====================================================================== cross checks


class _Checker:
    def __init__(self, file: str, environ: Mapping[str, str]) -> None:
        self.file = file
        self.environ = environ
        self.problems: list[ConfigError] = []

    def fail(self, problem: str, key: str, value: Any = None, expected: str | None = None, *, has_value: bool = False) -> None:
        self.problems.append(
            ConfigError(problem, file=self.file, key=key, value=value, expected=expected, has_value=has_value)
        )

    def channel(self, index: int, spec: Any) -> None:
        key = f"channels[{index}]"
        kind = spec.type
        for ref in REQUIRED_REFS[kind]:
            inline, from_file = getattr(spec, ref), getattr(spec, f"{ref}_file")
            if inline is not None and from_file is not None:
                self.fail(f"at most one of {ref} & {ref}_file must be configured", f"{key}.{ref}")
            elif inline is None and from_file is None:
                self.fail(f"one of {ref} or {ref}_file is required", f"{key}.{ref}")
        for secret in SECRET_FIELDS[kind]:
            value = getattr(spec, secret)
            if value is None:
                continue
            if kind == "teams" and _retired(value):
                self._retired(f"{key}.{secret}")
            elif not _ENV_ONLY.match(value.strip()):
                self.fail(
                    "secret written inline", f"{key}.{secret}",
                    expected=f"a reference such as \"${{{_env_name(spec.name, secret)}}}\" or {secret}_file: /path/to/mounted/secret",
                )
            else:
                current = _ENV_REFS.sub(lambda m: self.environ.get(m.group(1), ""), value)
                if kind == "teams" and _retired(current):
                    self._retired(f"{key}.{secret}", via=value.strip())
        if kind == "teams" and spec.webhook_url_file and _file_text(spec.webhook_url_file, self.environ):
            if _retired(_file_text(spec.webhook_url_file, self.environ) or ""):
                self._retired(f"{key}.webhook_url_file", via=spec.webhook_url_file)
        if kind == "email":
            if (spec.password is not None or spec.password_file is not None) and spec.username is None:
                self.fail("a password needs a username", f"{key}.username")
            if spec.username is not None and spec.password is None and spec.password_file is None:
                self.fail("one of password or password_file is required with a username", f"{key}.password")
            if spec.password is not None and spec.password_file is not None:
                self.fail("at most one of password & password_file must be configured", f"{key}.password")
            if spec.username is not None and not (spec.starttls or spec.ssl or spec.allow_insecure_auth):
                self.fail("SMTP AUTH without TLS sends the password in clear", f"{key}.starttls",
                          expected="starttls: true or ssl: true (or allow_insecure_auth: true for a trusted local relay)")
            if spec.ssl and spec.starttls:
                self.fail("ssl (implicit TLS) and starttls exclude each other", f"{key}.starttls",
                          expected="starttls: false with ssl: true (usually port 465)")
        for field_name in ("url", "webhook_url", "client_url"):
            value = getattr(spec, field_name, None)
            if isinstance(value, str) and not _ENV_REFS.search(value) and not value.startswith(("https://", "http://")):
                self.fail("not an http(s) URL", f"{key}.{field_name}", value, "https://…", has_value=True)

    def duration(self, value: Any, key: str) -> Duration | None:
        if value is None:
            return None
        try:
            return _duration(value)
        except PydanticCustomError as exc:
            context = exc.context or {}
            self.fail(context.get("problem") or exc.message(), key, value, context.get("expected"), has_value=True)
            return None

    def _retired(self, key: str, via: str | None = None) -> None:
        problem = "Office 365 connector webhook URL"
        if via:
            problem += f" (from {via})"
        self.fail(
            problem, key,
            expected="a Teams Workflows webhook URL: Microsoft retired *.webhook.office.com/webhookb2/ "
            "connectors; create a workflow 'Post to a channel when a webhook request is received'",
        )

    def matchers(self, texts: list[str], key: str) -> tuple[Matcher, ...]:
        parsed = []
        for index, text in enumerate(texts):
            try:
                parsed.append(parse_matcher(text))
            except ValueError as exc:
                self.fail("invalid matcher", f"{key}[{index}]", text, str(exc), has_value=True)
        return tuple(parsed)

    def labels(self, names: list[str], key: str, *, allow_all: bool = False) -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if allow_all and name == "...":
                if len(names) > 1:
                    self.fail("cannot group by '...' and other labels at the same time", f"{key}[{index}]")
                continue
            if not _LABEL_NAME.match(name):
                self.fail("invalid label name", f"{key}[{index}]", name, "a label name such as severity or workflow", has_value=True)
            if name in seen:
                self.fail(f"duplicated label {name!r}", f"{key}[{index}]")
            seen.add(name)


def _env_name(channel: str, field_name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"{channel}_{field_name}".upper()).strip("_")


def _retired(url: str) -> bool:
    from .channels.teams import is_retired_connector_url

    return is_retired_connector_url(url)


def _file_text(path: str, environ: Mapping[str, str]) -> str | None:
    try:
        resolved = _ENV_REFS.sub(lambda m: environ.get(m.group(1), ""), path)
        return Path(resolved).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _unique(checker: _Checker, items: list[Any], key: str, what: str) -> None:
    """Report repeated ``name`` values among the raw items of a section (original indices)."""
    seen: set[str] = set()
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else getattr(item, "name", None)
        if not isinstance(name, str):
            continue
        if name in seen:
            checker.fail(f"{what} name {name!r} is not unique", f"{key}[{index}].name")
        seen.add(name)


# ====================================================================== compiling


def _compile_route(
    spec: RouteSpec, parent: RoutePlan | None, checker: _Checker, path: str, index: int
) -> RoutePlan:
    matchers = checker.matchers(spec.matchers, f"{path}.matchers")
    if spec.group_by is not None:
        checker.labels(spec.group_by, f"{path}.group_by", allow_all=True)
    timers = {name: checker.duration(getattr(spec, name), f"{path}.{name}")
              for name in ("group_wait", "group_interval", "repeat_interval")}
    for name in ("group_interval", "repeat_interval"):
        value = timers[name]
        if value is not None and not value:
            checker.fail(f"{name} cannot be zero", f"{path}.{name}", str(value), "a positive duration", has_value=True)
    group_by: tuple[str, ...] | None
    if spec.group_by is not None:
        group_by = None if spec.group_by == ["..."] else tuple(spec.group_by)
    else:
        group_by = parent.group_by if parent else ()
    matcher_text = "{" + ",".join(str(m) for m in matchers) + "}"
    node = RoutePlan(
        receiver=spec.receiver or (parent.receiver if parent else ""),
        group_by=group_by,
        group_wait=_pick(timers["group_wait"], parent.group_wait if parent else DEFAULT_GROUP_WAIT),
        group_interval=timers["group_interval"] or (parent.group_interval if parent else DEFAULT_GROUP_INTERVAL),
        repeat_interval=timers["repeat_interval"] or (parent.repeat_interval if parent else DEFAULT_REPEAT_INTERVAL),
        matchers=matchers,
        continue_=spec.continue_,
        key=matcher_text if parent is None else f"{parent.key}/{matcher_text}/{index}",
        path=path,
    )
    children = tuple(
        _compile_route(child, node, checker, f"{path}.routes[{i}]", i) for i, child in enumerate(spec.routes)
    )
    return dataclasses.replace(node, routes=children)


def _pick(value: Duration | None, inherited: Duration) -> Duration:
    return inherited if value is None else value


def _walk(route: RoutePlan):  # type: ignore[no-untyped-def]
    yield route
    for child in route.routes:
        yield from _walk(child)


def _settings(spec: Any) -> dict[str, Any]:
    data = spec.model_dump(by_alias=True, exclude={"name", "type", "enabled", "rate_per_second"})
    return {k: v for k, v in data.items() if v is not None}


def compile_config(
    config: NotifyConfig,
    channel_specs: list[Any],
    *,
    file: str = "",
    environ: Mapping[str, str] | None = None,
    partial: _Partial | None = None,
) -> Plan:
    """Check references across the config and build the resolved plan; raises ConfigError.

    ``partial`` carries structural problems found earlier: they are reported together with
    the reference problems of the sections that did validate.
    """
    checker = _Checker(file, os.environ if environ is None else environ)
    if partial is not None:
        checker.problems.extend(partial.problems)
    _unique(checker, list(config.channels), "channels", "channel")
    _unique(checker, partial.raw_receivers if partial else list(config.receivers), "receivers", "receiver")
    for index, spec in channel_specs:
        checker.channel(index, spec)
    channel_names = {c.name for _, c in channel_specs} | (partial.channel_names if partial else set())
    known_receivers = partial.receiver_names if partial else set()

    receivers = {r.name: ReceiverPlan(r.name, tuple(r.channels), r.fallback) for r in config.receivers}
    route_spec = config.route
    if route_spec is None and partial is not None and partial.route_invalid:
        route_spec = RouteSpec(receiver=next(iter(known_receivers | set(receivers)), "default"))
    elif route_spec is None:
        if "default" not in receivers:
            receivers["default"] = ReceiverPlan("default", tuple(c.name for _, c in channel_specs))
        route_spec = RouteSpec(receiver="default")
    for index, receiver in enumerate(config.receivers):
        for j, name in enumerate(receiver.channels):
            if name not in channel_names:
                checker.fail(f"undefined channel {name!r} used in receiver", f"receivers[{index}].channels[{j}]")
        if receiver.fallback is not None:
            if receiver.fallback not in receivers and receiver.fallback not in known_receivers:
                checker.fail(f"undefined fallback receiver {receiver.fallback!r}", f"receivers[{index}].fallback")
            elif _fallback_cycle(receivers, receiver.name):
                checker.fail("fallback receivers form a cycle", f"receivers[{index}].fallback",
                             expected="a chain that ends in a receiver without fallback")

    if not route_spec.receiver:
        checker.fail("root route must specify a default receiver", "route.receiver")
    if route_spec.matchers:
        checker.fail("root route must not have any matchers", "route.matchers")
    if route_spec.continue_:
        checker.fail("cannot have continue in root route", "route.continue")
    route = _compile_route(route_spec, None, checker, "route", 0)
    for node in _walk(route):
        if node.receiver and node.receiver not in receivers and node.receiver not in known_receivers:
            checker.fail(f"undefined receiver {node.receiver!r} used in route", f"{node.path}.receiver")

    inhibit = []
    for index, rule in enumerate(config.inhibit_rules):
        key = f"inhibit_rules[{index}]"
        checker.labels(rule.equal, f"{key}.equal")
        inhibit.append(
            InhibitPlan(
                checker.matchers(rule.source_matchers, f"{key}.source_matchers"),
                checker.matchers(rule.target_matchers, f"{key}.target_matchers"),
                tuple(rule.equal),
            )
        )

    escalation = []
    for index, rule in enumerate(config.escalation_rules):
        key = f"escalation_rules[{index}]"
        if not rule.channels and not rule.receivers:
            checker.fail("an escalation rule needs channels or receivers", f"{key}.channels")
        for j, name in enumerate(rule.channels):
            if name not in channel_names:
                checker.fail(f"undefined channel {name!r} used in escalation rule", f"{key}.channels[{j}]")
        for j, name in enumerate(rule.receivers):
            if name not in receivers and name not in known_receivers:
                checker.fail(f"undefined receiver {name!r} used in escalation rule", f"{key}.receivers[{j}]")
        if not rule.delay:
            checker.fail("delay cannot be zero", f"{key}.delay", str(rule.delay), "a positive duration", has_value=True)
        if rule.max_repeats and not rule.repeat_interval:
            checker.fail("repeat_interval is required when max_repeats > 0", f"{key}.repeat_interval",
                         expected=EXPECTED_DURATION)
        escalation.append(
            EscalationPlan(
                delay=rule.delay,
                severity=rule.severity.value if rule.severity else None,
                matchers=checker.matchers(rule.matchers, f"{key}.matchers"),
                receivers=tuple(rule.receivers),
                channels=tuple(rule.channels),
                repeat_interval=rule.repeat_interval or Duration.zero(),
                max_repeats=rule.max_repeats,
            )
        )

    templates_dir = None
    base = (Path(file).parent if file else Path.cwd()).absolute()
    if config.templates_dir:
        directory = (base / config.templates_dir).resolve()
        if not directory.is_dir():
            checker.fail("templates_dir is not a directory", "templates_dir", config.templates_dir,
                         "a directory of *.j2 templates, relative to the config file", has_value=True)
        else:
            from .templates import check_templates_dir

            for problem in check_templates_dir(str(directory)):
                checker.fail(f"template does not compile: {problem}", "templates_dir")
            # as written, relative to the config file: no machine path in a compiled plan
            templates_dir = Path(config.templates_dir).as_posix().rstrip("/") or "."

    if checker.problems:
        raise _combined(checker.problems)
    channels = {
        spec.name: ChannelPlan(
            name=spec.name,
            type=spec.type,
            enabled=spec.enabled,
            rate_per_second=spec.rate_per_second or DEFAULT_RATE_PER_SECOND[spec.type],
            settings=_settings(spec),
        )
        for _, spec in channel_specs
    }
    delivery = config.delivery
    return Plan(
        channels=channels,
        receivers=receivers,
        route=route,
        inhibit_rules=tuple(inhibit),
        escalation_rules=tuple(escalation),
        defaults=DeliveryDefaults(
            max_attempts=delivery.max_attempts,
            backoff_base=delivery.backoff_base,
            backoff_cap=delivery.backoff_cap,
            timeout=delivery.timeout,
            lease=delivery.lease,
            max_alerts=delivery.max_alerts,
            retention=config.retention,
        ),
        templates_dir=templates_dir,
        source=file,
        base_dir=str(base),
    )


def _fallback_cycle(receivers: Mapping[str, ReceiverPlan], start: str) -> bool:
    seen = {start}
    current = receivers[start].fallback
    while current is not None and current in receivers:
        if current in seen:
            return True
        seen.add(current)
        current = receivers[current].fallback
    return False


def compile_plan(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Plan:
    """Validate the YAML config at ``path`` and compile it; every problem in one ConfigError.

    Doubtful but valid choices (``plan_warnings``) are logged as one warning line each.
    """
    try:
        config, channels = load_config(path)
    except _Partial as partial:
        return compile_config(partial.config, partial.channels, file=str(path), environ=environ, partial=partial)
    plan = compile_config(config, channels, file=str(path), environ=environ)
    for key, message in plan_warnings(plan):
        log.warning("%s: %s: warning: %s", path, key, message)
    return plan


def plan_warnings(plan: Plan) -> list[tuple[str, str]]:
    """(key, message) for valid configs that will not do what they seem to.

    An escalation or reminder sent to a PagerDuty channel that may already have received the
    incident's trigger (through a route whose receiver has that channel, for incidents the
    rule applies to) is merged by PagerDuty into the open alert (same ``dedup_key``) and pages
    nobody new: PagerDuty escalates through its own escalation policy.
    """
    warnings = []
    for index, rule in enumerate(plan.escalation_rules):
        facts = {m.name: m.value for m in rule.matchers if m.op == "="}
        if rule.severity is not None:
            facts["severity"] = rule.severity
        pagers = [n for n in rule.channel_names(plan) if n in plan.channels and plan.channels[n].type == "pagerduty"]
        for name in pagers:
            route = _route_to_channel(plan, plan.route, (), name, facts)
            if route is not None:
                warnings.append((
                    f"escalation_rules[{index}]",
                    f"PagerDuty channel {name!r} may already have the incident's trigger (via "
                    f"{route.path}, receiver {route.receiver}); PagerDuty merges an escalation "
                    "with the same dedup_key into the open alert and pages nobody new. Escalate "
                    "to other channels and let PagerDuty's escalation policy escalate its alert",
                ))  # fmt: skip
    return warnings


def _route_to_channel(
    plan: Plan, route: RoutePlan, above: tuple[Matcher, ...], channel: str, facts: Mapping[str, str]
) -> RoutePlan | None:
    """The first route (depth first) that may take an incident with ``facts`` to ``channel``:
    none of its or its parents' matchers on a known label contradicts ``facts``."""
    matchers = above + route.matchers
    if any(m.name in facts and not m.matches({m.name: facts[m.name]}) for m in matchers):
        return None
    receiver = plan.receivers.get(route.receiver)
    if receiver is not None and channel in receiver.channels:
        return route
    for child in route.routes:
        found = _route_to_channel(plan, child, matchers, channel, facts)
        if found is not None:
            return found
    return None


def validate_file(path: str | Path) -> list[str]:
    """Problems in the config at ``path``, one line each (empty when it is valid)."""
    try:
        compile_plan(path)
    except ConfigError as exc:
        return [p._render_one() for p in exc.problems]
    return []
