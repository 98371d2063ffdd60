"""The shape of ``resilient.toml``: pydantic models with ``extra="forbid"`` everywhere.

These models check each key on its own (type, unit, range) and give editors a JSON Schema
(``resilient-templates config schema``). Rules that span keys (a key that does not apply to the
chosen backoff, a schedule longer than its budget, a request above its limit) live in
``tables.py``, where the policy objects are built.

Every field validator raises ``PydanticCustomError("rt", "{problem}", {"problem": …,
"expected": …})`` so that ``problems.py`` can turn pydantic's error into a one-line
``ConfigError`` with the key path, the value and what was expected.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Callable

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from ..errors import DurationError, QuantityError
from ..policy import Duration, Jitter, Quantity, RetryOn

__all__ = [
    "BACKOFF_KEYS",
    "BACKOFF_TYPES",
    "COMMON_RETRY_KEYS",
    "ConfigFile",
    "EnvOverlay",
    "PipelineTable",
    "ResourcesTable",
    "RetryTable",
    "expected_duration",
    "json_schema",
    "keys_of",
    "model_at",
    "toml_type",
]

BACKOFF_TYPES = ("exponential", "linear", "fixed", "custom")
#: Keys every retry table may carry, whatever its backoff type.
COMMON_RETRY_KEYS = ("max_attempts", "backoff_type", "timeout", "budget", "retry_on")
#: Keys that belong to one backoff type (a key may belong to several).
BACKOFF_KEYS: dict[str, tuple[str, ...]] = {
    "exponential": ("base_duration", "factor", "max_duration", "jitter"),
    "linear": ("base_duration", "increment", "max_duration"),
    "fixed": ("base_duration",),
    "custom": ("delays",),
}
POD_GC_STRATEGIES = (
    "",
    "OnPodCompletion",
    "OnPodSuccess",
    "OnWorkflowCompletion",
    "OnWorkflowSuccess",
)
APPROVAL_DECISIONS = ("approve", "reject")

expected_duration = "a Go duration such as '30s' or '1h30m'"
_GO_DURATION_PATTERN = r"^(?:[0-9]+|(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+)$"
_DAYS = re.compile(r"(\d+)([dwy])")
_DAY_HOURS = {"d": 24, "w": 168, "y": 8760}
_INT32_MAX = 2**31 - 1


def toml_type(value: object) -> str:
    """'a string', 'an integer': the TOML type of a parsed value, with its article."""
    if isinstance(value, bool):
        return "a boolean"
    names = {
        str: "a string",
        int: "an integer",
        float: "a float",
        list: "an array",
        dict: "a table",
    }
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a date/time"


def _fail(problem: str, expected: str) -> PydanticCustomError:
    return PydanticCustomError("rt", "{problem}", {"problem": problem, "expected": expected})


# --- durations ------------------------------------------------------------------------------


def _go_hours(text: str) -> str | None:
    """'7d' -> '168h', '1d12h' -> '36h': the Go spelling of a duration written with d/w/y."""
    rest, hours = text, 0
    for number, unit in _DAYS.findall(text):
        hours += int(number) * _DAY_HOURS[unit]
        rest = rest.replace(f"{number}{unit}", "", 1)
    if not hours:
        return None
    try:
        tail = Duration.parse(rest) if rest else Duration(0)
    except DurationError:
        return None
    return str(Duration.of(hours=hours) + tail)


def _duration_problem(exc: DurationError, value: object) -> str:
    """The policy's message, with its example replaced by this value's own Go spelling."""
    problem = str(exc)
    suggestion = _go_hours(value.strip()) if isinstance(value, str) else None
    if suggestion is not None:
        problem = re.sub(r"e\.g\. '[^']*'", f"e.g. '{suggestion}'", problem)
    return problem


def _duration(*, positive: bool = False, whole: str | None = None) -> Callable[[Any], Duration]:
    """A validator: a Go duration string or integer seconds; optionally > 0 and whole seconds."""

    def parse(value: Any) -> Duration:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _fail(
                f"a duration must be a string or an integer number of seconds, "
                f"not {toml_type(value)}",
                expected_duration,
            )
        try:
            duration = Duration.parse(value)
        except DurationError as exc:
            raise _fail(_duration_problem(exc, value), expected_duration) from None
        if positive and not duration:
            raise _fail("must be greater than 0s", "a positive Go duration such as '10m'")
        if whole is not None and duration.nanoseconds % 1_000_000_000:
            raise _fail(
                f"{duration} is not a whole number of seconds, and {whole} counts whole seconds",
                "a whole number of seconds, e.g. '90s' or '10m'",
            )
        return duration

    return parse


_DURATION_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "pattern": _GO_DURATION_PATTERN},
            {"type": "integer", "minimum": 0},
        ],
        "$comment": "A Go duration ('500ms', '30s', '1h30m'; units ns, us, ms, s, m, h, no 'd') "
        "or an integer number of seconds.",
    }
)
GoDuration = Annotated[Duration, PlainValidator(_duration()), _DURATION_SCHEMA]
PositiveDuration = Annotated[Duration, PlainValidator(_duration(positive=True)), _DURATION_SCHEMA]
DeadlineSeconds = Annotated[
    Duration,
    PlainValidator(_duration(positive=True, whole="activeDeadlineSeconds")),
    _DURATION_SCHEMA,
]
TtlSeconds = Annotated[Duration, PlainValidator(_duration(whole="ttlStrategy")), _DURATION_SCHEMA]


# --- integers and choices -------------------------------------------------------------------


def _integer(
    *, minimum: int, expected: str, float_hint: str = "", too_small: str = ""
) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(f"must be an integer, not {toml_type(value)}{float_hint}", expected)
        if value < minimum:
            raise _fail(too_small or f"must be at least {minimum}", expected)
        return value

    return parse


def _choice(choices: tuple[str, ...], what: str) -> Callable[[Any], str]:
    expected = "one of " + ", ".join(repr(c) for c in choices)

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise _fail(f"{what} must be a string, not {toml_type(value)}", expected)
        if value not in choices:
            raise _fail(f"unknown {what}", expected)
        return value

    return parse


def _choice_type(choices: tuple[str, ...], what: str) -> Any:
    return Annotated[
        str,
        PlainValidator(_choice(choices, what)),
        WithJsonSchema({"type": "string", "enum": list(choices)}),
    ]


def _string(pattern: str, *, max_length: int, expected: str) -> Callable[[Any], str]:
    compiled = re.compile(pattern)

    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise _fail(f"must be a string, not {toml_type(value)}", expected)
        if len(value) > max_length:
            raise _fail(f"is {len(value)} characters long, longer than {max_length}", expected)
        if not compiled.fullmatch(value):
            raise _fail("is not a valid name", expected)
        return value

    return parse


def _string_type(pattern: str, *, max_length: int, expected: str) -> Any:
    return Annotated[
        str,
        PlainValidator(_string(pattern, max_length=max_length, expected=expected)),
        WithJsonSchema({"type": "string", "pattern": f"^{pattern}$", "maxLength": max_length}),
    ]


_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*"
_EXPECTED_LABEL = (
    "a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or "
    "digit, at most 63 characters"
)
_EXPECTED_SUBDOMAIN = (
    "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters"
)
# The Docker reference grammar (distribution/reference): [domain/]path[:tag][@digest].
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?)"
_IMAGE = (
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


# --- quantities -----------------------------------------------------------------------------

_EXPECTED_QUANTITY = {
    "cpu": "a CPU quantity such as '200m', '0.5' or '2'",
    "memory": "a byte quantity such as '512Mi' or '2Gi'",
    "ephemeral_storage": "a byte quantity such as '1Gi' or '4Gi'",
}


def _quantity(kind: str) -> Callable[[Any], str | int | float]:
    expected = _EXPECTED_QUANTITY[kind]

    def parse(value: Any) -> str | int | float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _fail(
                f"a quantity must be a string or a number, not {toml_type(value)}", expected
            )
        try:
            Quantity.parse(value)
        except QuantityError:
            text = str(value).strip()
            if text.startswith("-"):
                raise _fail("a quantity must not be negative", expected) from None
            raise _fail("not a Kubernetes quantity", expected) from None
        return value

    return parse


def _quantity_type(kind: str) -> Any:
    return Annotated[
        str | int | float,
        PlainValidator(_quantity(kind)),
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "string",
                        "pattern": r"^[+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
                        r"(?:Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE])?$",
                    },
                    {"type": "number", "minimum": 0},
                ]
            }
        ),
    ]


CpuQuantity = _quantity_type("cpu")
MemoryQuantity = _quantity_type("memory")
StorageQuantity = _quantity_type("ephemeral_storage")


# --- integer and string types ---------------------------------------------------------------

MaxAttempts = Annotated[
    int,
    PlainValidator(
        _integer(
            minimum=1,
            expected="an integer >= 1 counting every attempt, e.g. 3",
            too_small="must be at least 1: it counts every attempt, the first included",
        )
    ),
    WithJsonSchema({"type": "integer", "minimum": 1}),
]
Factor = Annotated[
    int,
    PlainValidator(
        _integer(
            minimum=1,
            expected="an integer >= 1, e.g. 2",
            float_hint=" (Argo parses factor with strconv.Atoi, so 1.5 fails at run time)",
        )
    ),
    WithJsonSchema({"type": "integer", "minimum": 1}),
]
BackoffType = _choice_type(BACKOFF_TYPES, "backoff_type")
JitterName = _choice_type(tuple(j.value for j in Jitter), "jitter")
RetryOnName = _choice_type(tuple(r.value for r in RetryOn), "retry_on")
PodGcStrategy = _choice_type(POD_GC_STRATEGIES, "pod_gc strategy")
ApprovalDecision = _choice_type(APPROVAL_DECISIONS, "approval_default")
DnsLabel = _string_type(_DNS_LABEL, max_length=63, expected=_EXPECTED_LABEL)
DnsSubdomain = _string_type(_DNS_SUBDOMAIN, max_length=253, expected=_EXPECTED_SUBDOMAIN)
ImageReference = _string_type(
    _IMAGE, max_length=512, expected="an image reference such as 'ghcr.io/org/runtime:1.2.3'"
)


# --- the tables -----------------------------------------------------------------------------


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def given(self) -> dict[str, Any]:
        """The keys actually written in the file, with their validated values."""
        return {key: getattr(self, key) for key in self.model_fields_set}


class RetryTable(_Table):
    """`[retry.<stage>]`: a partial override of the stage's default retry policy."""

    model_config = ConfigDict(title="Retry", extra="forbid", frozen=True)

    max_attempts: MaxAttempts | None = Field(
        None, description="All attempts, the first included (Argo limit = max_attempts - 1)."
    )
    backoff_type: BackoffType | None = Field(
        None, description="How the delay before each retry is computed."
    )
    base_duration: GoDuration | None = Field(
        None,
        description="Exponential base, fixed delay, or linear first delay (defaults to the "
        "increment).",
    )
    factor: Factor | None = Field(
        None,
        description="Exponential only: delay n = base x factor^(n-1). An integer: Argo parses "
        "it with strconv.Atoi.",
    )
    max_duration: GoDuration | None = Field(
        None, description="The cap on any single delay (Argo backoff.cap); exponential, linear."
    )
    jitter: JitterName | None = Field(
        None,
        description="Exponential only: randomise each delay (AWS 'Exponential Backoff and "
        "Jitter').",
    )
    increment: GoDuration | None = Field(
        None, description="Linear only: added to the delay before each further retry."
    )
    delays: list[GoDuration] | None = Field(
        None, description="Custom only: the delay before each retry, max_attempts - 1 entries."
    )
    timeout: DeadlineSeconds | None = Field(
        None, description="Per attempt (Argo activeDeadlineSeconds); whole seconds."
    )
    budget: PositiveDuration | None = Field(
        None,
        description="All attempts and waits from the first start (Argo backoff.maxDuration).",
    )
    retry_on: RetryOnName | None = Field(
        None,
        description="Which failures are retried: any, failed (non-zero exit), errored (pod "
        "errors), transient (errors, exit 75, transient hints), safe (only failures proving no "
        "side effect).",
    )


class ResourcesTable(_Table):
    """`[resources.<stage>]`: requests and limits of the stage container."""

    model_config = ConfigDict(title="Resources", extra="forbid", frozen=True)

    cpu_request: CpuQuantity | None = Field(None, description="CPU request, e.g. '200m'.")
    cpu_limit: CpuQuantity | None = Field(None, description="CPU limit, e.g. '1'.")
    memory_request: MemoryQuantity | None = Field(None, description="e.g. '512Mi'.")
    memory_limit: MemoryQuantity | None = Field(None, description="e.g. '2Gi'.")
    ephemeral_storage_request: StorageQuantity | None = Field(None, description="e.g. '1Gi'.")
    ephemeral_storage_limit: StorageQuantity | None = Field(None, description="e.g. '4Gi'.")


class PipelineTable(_Table):
    """`[pipeline]`: workflow-wide settings; every key is optional."""

    model_config = ConfigDict(title="Pipeline", extra="forbid", frozen=True)

    name: DnsLabel | None = Field(
        None, description="WorkflowTemplate name. Default 'resilient-pipeline'."
    )
    namespace: DnsLabel | None = Field(
        None, description="Namespace of the WorkflowTemplate; omitted when unset."
    )
    service_account: DnsSubdomain | None = Field(
        None, description="serviceAccountName of the workflow. Default 'resilient-pipeline'."
    )
    deadline: DeadlineSeconds | None = Field(
        None, description="The whole workflow (spec.activeDeadlineSeconds). Default '6h'."
    )
    runtime_image: ImageReference | None = Field(
        None, description="Image of the failure-analysis and notification runtime."
    )
    pod_gc: PodGcStrategy | None = Field(
        None,
        description="podGC.strategy; '' keeps pods. Default 'OnPodSuccess' (failed pods keep "
        "their logs for analysis).",
    )
    ttl_after_success: TtlSeconds | None = Field(
        None, description="ttlStrategy.secondsAfterSuccess. Default '1h'."
    )
    ttl_after_failure: TtlSeconds | None = Field(
        None, description="ttlStrategy.secondsAfterFailure. Default '168h'."
    )
    approval_timeout: PositiveDuration | None = Field(
        None, description="How long the manual-intervention gate waits. Default '4h'."
    )
    approval_default: ApprovalDecision | None = Field(
        None, description="Decision applied when the approval gate times out. Default 'reject'."
    )


class EnvOverlay(BaseModel):
    """`[env.<name>]`: deep-merged over the root when `--env <name>` is chosen."""

    model_config = ConfigDict(title="Environment overlay", extra="forbid", frozen=True)

    pipeline: PipelineTable | None = Field(None, description="Workflow-wide settings.")
    retry: dict[str, RetryTable] = Field(
        default_factory=dict, description="Per-stage retry policy, overriding the stage default."
    )
    resources: dict[str, ResourcesTable] = Field(
        default_factory=dict, description="Per-stage container requests and limits."
    )


class ConfigFile(EnvOverlay):
    """The whole `resilient.toml`: root settings plus `[env.<name>]` overlays."""

    model_config = ConfigDict(
        title="resilient-templates configuration",
        extra="forbid",
        frozen=True,
        populate_by_name=True,
    )

    schema_ref: str | None = Field(
        None,
        alias="$schema",
        description="Path or URL of this JSON Schema, for editors (Taplo, Even Better TOML).",
    )
    env: dict[str, EnvOverlay] = Field(
        default_factory=dict, description="Environment overlays, chosen with --env NAME."
    )


def model_at(path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model validating the table at ``path`` in the file (None if not a model)."""
    if path[:1] == ("env",):
        if len(path) < 2:
            return None
        path = path[2:]
        if not path:
            return EnvOverlay
    elif not path:
        return ConfigFile
    shapes = {
        ("pipeline", 1): PipelineTable,
        ("retry", 2): RetryTable,
        ("resources", 2): ResourcesTable,
    }
    return shapes.get((str(path[0]), len(path)))


def keys_of(model: type[BaseModel]) -> list[str]:
    """The TOML keys a model accepts, aliases included, in declaration order."""
    return [info.alias or name for name, info in model.model_fields.items()]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``resilient.toml`` for editors; TOML has no null, so none appears."""
    schema = ConfigFile.model_json_schema(by_alias=True)
    schema = _drop_nulls(schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _drop_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "default" and value is None:
                continue
            if key == "anyOf":
                kept = [v for v in value if v != {"type": "null"}]
                if len(kept) == 1 and len(kept) != len(value):
                    out.update(_drop_nulls(kept[0]))
                    continue
                value = kept
            out[key] = _drop_nulls(value)
        return out
    if isinstance(node, list):
        return [_drop_nulls(v) for v in node]
    return node
