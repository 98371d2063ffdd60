"""The signature knowledge base: failure causes as data (``signatures.yaml``), validated at load.

The built-in base ships as ``signatures.yaml`` plus ``signatures.json``, a copy compiled from it
that carries the YAML's SHA-256: a container started per failure reads the JSON (about 1 ms)
instead of importing PyYAML (about 55 ms), and falls back to the YAML whenever the copy is
stale. ``python -m resilient_templates.runtime.analysis.knowledge --compile`` rewrites it; a
test fails when it is out of date.

Users add signatures with ``--signatures FILE`` (YAML or JSON, same shape); a user signature
with the name of a built-in one replaces it. Every problem is reported at once, each naming the
file, the signature and the field (``ConfigError``), so a bad knowledge base is one clear
message, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError
from ...policy.taxonomy import Category, Severity, default_severity

__all__ = [
    "KnowledgeBase",
    "RecommendationTemplate",
    "RetryDelay",
    "Signature",
    "builtin",
    "load",
    "load_file",
    "wrapper_hints",
]

SCHEMA = 1
_HERE = os.path.dirname(os.path.abspath(__file__))
BUILTIN_YAML = os.path.join(_HERE, "signatures.yaml")
BUILTIN_JSON = os.path.join(_HERE, "signatures.json")

#: Placeholders every recommendation may use when the signature knows a retry delay.
DELAY_PLACEHOLDERS = frozenset({"retry_at", "delay"})
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_GROUP = re.compile(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DELAY_KINDS = ("epoch", "seconds", "duration", "rfc3339")
# Constructs GNU grep -E does not share with POSIX ERE, or that have another meaning there.
_ERE_FORBIDDEN = re.compile(r"\\[dDsSwWbB0-9]|\(\?|[\t\n\r]")
_FIELDS = {
    "name", "description", "category", "transient", "severity", "priority", "precision",
    "patterns", "extract", "suppressed_by", "exit_codes", "exit_precision", "pod_reasons",
    "retry_delay", "hint_ere", "recommendations", "source", "role",
}  # fmt: skip
#: What a signature's match means: a cause of the failure, a symptom (a failed test run, a
#: crash, a back-off) that a visible cause explains, or noise (a retried-and-recovered
#: warning) that only claims its lines so that no other signature reads them as evidence.
ROLES = ("cause", "symptom", "noise")


@dataclass(frozen=True, slots=True)
class RetryDelay:
    """How long to wait before a retry: a capture when the log shows it, else ``default``."""

    default: int | None = None
    maximum: int | None = None
    epoch: str | None = None  # capture holding a Unix time (x-ratelimit-reset)
    seconds: str | None = None  # capture holding seconds (Retry-After)
    duration: str | None = None  # capture holding a Go duration ("1m01s")
    rfc3339: str | None = None  # capture holding an RFC 3339 time

    @property
    def captures(self) -> tuple[str, ...]:
        return tuple(c for c in (self.epoch, self.seconds, self.duration, self.rfc3339) if c)


@dataclass(frozen=True, slots=True)
class RecommendationTemplate:
    action: str
    detail: str = ""
    automated: bool = False

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(_PLACEHOLDER.findall(self.action + "\n" + self.detail))


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    category: Category
    transient: bool
    patterns: tuple[str, ...]
    description: str = ""
    severity: Severity | None = None
    priority: int = 50
    precision: float = 0.8
    extract: tuple[str, ...] = ()
    suppressed_by: tuple[str, ...] = ()
    exit_codes: tuple[int, ...] = ()
    exit_precision: float = 0.5
    pod_reasons: tuple[str, ...] = ()
    retry_delay: RetryDelay | None = None
    hint_ere: str | None = None
    recommendations: tuple[RecommendationTemplate, ...] = ()
    source: tuple[str, ...] = ()
    role: str = "cause"  # cause | symptom | noise (ROLES)
    order: int = 0  # declaration order: the last tie-break

    @property
    def effective_severity(self) -> Severity:
        return self.severity or default_severity(self.category)

    @property
    def captures(self) -> frozenset[str]:
        names: set[str] = set()
        for pattern in (*self.patterns, *self.extract):
            names.update(_GROUP.findall(pattern))
        return frozenset(names)

    def to_dict(self) -> dict[str, Any]:
        """The normalised YAML shape (what ``signatures.json`` stores)."""
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "category": self.category.value,
            "transient": self.transient,
            "priority": self.priority,
            "precision": self.precision,
            "patterns": list(self.patterns),
        }
        if self.severity is not None:
            data["severity"] = self.severity.value
        if self.role != "cause":
            data["role"] = self.role
        for key in ("extract", "suppressed_by", "exit_codes", "pod_reasons", "source"):
            if getattr(self, key):
                data[key] = list(getattr(self, key))
        if self.exit_codes:
            data["exit_precision"] = self.exit_precision
        if self.retry_delay is not None:
            delay = self.retry_delay
            data["retry_delay"] = {
                k: v
                for k, v in (
                    ("default", delay.default),
                    ("max", delay.maximum),
                    *((kind, getattr(delay, kind)) for kind in _DELAY_KINDS),
                )
                if v is not None
            }
        if self.hint_ere:
            data["hint_ere"] = self.hint_ere
        data["recommendations"] = [
            {"action": r.action, **({"detail": r.detail} if r.detail else {}),
             **({"automated": True} if r.automated else {})}
            for r in self.recommendations
        ]  # fmt: skip
        return data


@dataclass(frozen=True)
class KnowledgeBase:
    signatures: tuple[Signature, ...]
    origin: str = "<built-in>"
    _by_name: dict[str, Signature] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({s.name: s for s in self.signatures})

    def __len__(self) -> int:
        return len(self.signatures)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.signatures)

    def get(self, name: str | None) -> Signature | None:
        return self._by_name.get(name or "")

    def by_priority(self) -> list[Signature]:
        """Most specific first: priority descending, then declaration order."""
        return sorted(self.signatures, key=lambda s: (-s.priority, s.order))

    def merged(self, extra: KnowledgeBase) -> KnowledgeBase:
        """This base plus ``extra``; an extra signature replaces a built-in one of its name."""
        replaced = {s.name for s in extra.signatures}
        kept = [s for s in self.signatures if s.name not in replaced]
        combined = [*kept, *extra.signatures]
        renumbered = tuple(_with_order(s, i) for i, s in enumerate(combined))
        _check_references(renumbered, f"{self.origin} + {extra.origin}")
        return KnowledgeBase(renumbered, origin=f"{self.origin} + {extra.origin}")


def _with_order(sig: Signature, order: int) -> Signature:
    from dataclasses import replace

    return replace(sig, order=order)


# --------------------------------------------------------------------------- loading

_BUILTIN: KnowledgeBase | None = None


def builtin() -> KnowledgeBase:
    """The knowledge base shipped with the package (cached per process)."""
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = _load_builtin()
    return _BUILTIN


def load(extra_files: Sequence[str] = ()) -> KnowledgeBase:
    """The built-in base plus each user file, in order."""
    kb = builtin()
    for path in extra_files:
        kb = kb.merged(load_file(path))
    return kb


def load_file(path: str) -> KnowledgeBase:
    """A user knowledge base (YAML, or JSON when the name ends in .json)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read signatures file: {exc.strerror}", file=path) from exc
    return build(_parse_document(raw, path), origin=path, standalone=False)


def _load_builtin() -> KnowledgeBase:
    with open(BUILTIN_YAML, "rb") as handle:
        raw = handle.read()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        with open(BUILTIN_JSON, encoding="utf-8") as handle:
            compiled = json.load(handle)
        if compiled.get("source_sha256") == digest:
            return build(compiled, origin=BUILTIN_YAML, validate_patterns=False)
    except (OSError, ValueError):
        pass
    return build(_parse_document(raw, BUILTIN_YAML), origin=BUILTIN_YAML)


def _parse_document(raw: bytes, path: str) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"not valid JSON: {exc}", file=path) from exc
    import yaml  # lazily: PyYAML costs ~55 ms to import

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}".replace("\n", " "), file=path) from exc


def compile_builtin() -> str:
    """Rewrite ``signatures.json`` from ``signatures.yaml``; returns the path written."""
    with open(BUILTIN_YAML, "rb") as handle:
        raw = handle.read()
    kb = build(_parse_document(raw, BUILTIN_YAML), origin=BUILTIN_YAML)
    document = {
        "//": "generated from signatures.yaml by `python -m "
        "resilient_templates.runtime.analysis.knowledge --compile`; do not edit",
        "schema": SCHEMA,
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "signatures": [s.to_dict() for s in kb.signatures],
    }
    with open(BUILTIN_JSON, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    return BUILTIN_JSON


# --------------------------------------------------------------------------- validation


class _Problems:
    """Collects every problem of one document, so that all are reported at once."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.items: list[ConfigError] = []

    def __len__(self) -> int:
        return len(self.items)

    def __call__(self, message: str, key: str, value: object = None,
                 expected: str | None = None, has_value: bool = False) -> None:  # fmt: skip
        self.items.append(ConfigError(message, file=self.origin, key=key, value=value,
                                      expected=expected, has_value=has_value))  # fmt: skip

    def raise_if_any(self) -> None:
        if len(self.items) == 1:
            raise self.items[0]
        if self.items:
            raise ConfigError(self.items[0].problem, file=self.origin, problems=self.items)


def build(document: Any, *, origin: str, validate_patterns: bool = True,
          standalone: bool = True) -> KnowledgeBase:  # fmt: skip
    """Validate a parsed document and build the base; every problem is reported at once.

    ``standalone=False`` (user files) allows ``suppressed_by`` to name signatures of the base
    the file is merged into; the merge checks them.
    """
    problem = _Problems(origin)
    if not isinstance(document, Mapping):
        raise ConfigError("the document must be a mapping with a 'signatures' list",
                          file=origin, expected="{schema: 1, signatures: [...]}")  # fmt: skip
    schema = document.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ConfigError("unsupported schema", file=origin, key="schema", value=schema,
                          expected=str(SCHEMA))  # fmt: skip
    entries = document.get("signatures")
    if not isinstance(entries, list):
        raise ConfigError("'signatures' must be a list", file=origin, key="signatures",
                          value=type(entries).__name__, expected="a list of signatures")  # fmt: skip
    signatures: list[Signature] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        label = f"signatures[{index}]"
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            label = f"signatures[{index}] ({entry['name']})"
        sig = _build_signature(entry, index, label, problem, validate_patterns)
        if sig is None:
            continue
        if sig.name in seen:
            problem("duplicate signature name", f"{label}.name", sig.name,
                    f"unique names (first used by signatures[{seen[sig.name]}])")  # fmt: skip
            continue
        seen[sig.name] = index
        signatures.append(sig)
    problem.raise_if_any()
    result = tuple(signatures)
    if standalone:
        _check_references(result, origin)
    return KnowledgeBase(result, origin=origin)


def _check_references(signatures: Iterable[Signature], origin: str) -> None:
    """Every ``suppressed_by`` name must be a signature of the base."""
    names = {s.name for s in signatures}
    problems = [
        ConfigError("suppressed_by names an unknown signature", file=origin,
                    key=f"{s.name}.suppressed_by", value=other,
                    expected="the name of a signature in the knowledge base")  # fmt: skip
        for s in signatures
        for other in s.suppressed_by
        if other not in names
    ]
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigError(problems[0].problem, file=origin, problems=problems)


def _build_signature(entry: Any, index: int, label: str, problem: _Problems,
                     validate_patterns: bool) -> Signature | None:  # fmt: skip
    if not isinstance(entry, Mapping):
        problem("a signature must be a mapping", label, type(entry).__name__, "a mapping")
        return None
    count = len(problem)
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        problem("unknown field", f"{label}.{unknown[0]}", unknown[0],
                "one of " + ", ".join(sorted(_FIELDS)))  # fmt: skip
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problem("invalid signature name", f"{label}.name", name,
                "lower-case letters, digits and dashes")  # fmt: skip
    try:
        category = Category(entry.get("category"))
        if category is Category.UNKNOWN:
            raise ValueError
    except ValueError:
        category = Category.UNKNOWN
        problem("invalid category", f"{label}.category", entry.get("category"),
                "one of " + ", ".join(c.value for c in Category if c is not Category.UNKNOWN))  # fmt: skip
    transient = entry.get("transient")
    if not isinstance(transient, bool):
        problem("transient must be true or false", f"{label}.transient", transient, "a boolean")
    severity = None
    if entry.get("severity") is not None:
        try:
            severity = Severity(entry["severity"])
        except ValueError:
            problem("invalid severity", f"{label}.severity", entry["severity"],
                    "one of " + ", ".join(s.value for s in Severity))  # fmt: skip
    role = entry.get("role", "cause")
    if role not in ROLES:
        problem("invalid role", f"{label}.role", role, "one of " + ", ".join(ROLES))
        role = "cause"
    priority = entry.get("priority", 50)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 100:
        problem("invalid priority", f"{label}.priority", priority, "an integer from 0 to 100")
        priority = 50
    precision = _probability(entry.get("precision", 0.8), f"{label}.precision", problem)
    exit_precision = _probability(entry.get("exit_precision", 0.5),
                                  f"{label}.exit_precision", problem)  # fmt: skip
    patterns = _strings(entry.get("patterns"), f"{label}.patterns", problem, required=True)
    extract = _strings(entry.get("extract", []), f"{label}.extract", problem)
    if validate_patterns:
        for key, regexes in (("patterns", patterns), ("extract", extract)):
            for i, regex in enumerate(regexes):
                error = _compile_error(regex)
                if error:
                    problem(f"pattern does not compile: {error}", f"{label}.{key}[{i}]", regex,
                            "an RE2 regular expression")  # fmt: skip
    suppressed_by = _strings(entry.get("suppressed_by", []), f"{label}.suppressed_by", problem)
    pod_reasons = _strings(entry.get("pod_reasons", []), f"{label}.pod_reasons", problem)
    source = _strings(entry.get("source", []), f"{label}.source", problem)
    exit_codes = entry.get("exit_codes", [])
    if not isinstance(exit_codes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in exit_codes
    ):
        problem("invalid exit_codes", f"{label}.exit_codes", exit_codes,
                "a list of integers from 0 to 255")  # fmt: skip
        exit_codes = []
    hint_ere = entry.get("hint_ere")
    if hint_ere is not None:
        if not isinstance(hint_ere, str) or not hint_ere:
            problem("hint_ere must be a non-empty string", f"{label}.hint_ere", hint_ere)
            hint_ere = None
        elif _ERE_FORBIDDEN.search(hint_ere):
            problem("hint_ere uses a construct POSIX grep -E does not have", f"{label}.hint_ere",
                    hint_ere, "plain ERE: no \\d \\s \\w \\b, (?...) or backreferences; "
                    "use [0-9] and [[:space:]]")  # fmt: skip
    captures: set[str] = set()
    for regex in (*patterns, *extract):
        captures.update(_GROUP.findall(regex))
    retry_delay = _retry_delay(entry.get("retry_delay"), f"{label}.retry_delay", captures,
                               problem)  # fmt: skip
    allowed = captures | (DELAY_PLACEHOLDERS if retry_delay is not None else set())
    recommendations = _recommendations(entry.get("recommendations", []),
                                       f"{label}.recommendations", allowed, problem)  # fmt: skip
    if len(problem) > count:
        return None
    return Signature(
        name=name,
        description=str(entry.get("description", "")),
        category=category,
        transient=bool(transient),
        severity=severity,
        priority=priority,
        precision=precision,
        patterns=tuple(patterns),
        extract=tuple(extract),
        suppressed_by=tuple(suppressed_by),
        exit_codes=tuple(exit_codes),
        exit_precision=exit_precision,
        pod_reasons=tuple(pod_reasons),
        retry_delay=retry_delay,
        hint_ere=hint_ere,
        recommendations=tuple(recommendations),
        source=tuple(source),
        role=role,
        order=index,
    )


def _probability(value: Any, key: str, problem: _Problems) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        problem("invalid probability", key, value, "a number from 0 to 1")
        return 0.5
    return float(value)


def _strings(value: Any, key: str, problem: _Problems, *, required: bool = False) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problem("must be a list of non-empty strings", key, value, "a list of strings",
                has_value=True)  # fmt: skip
        return []
    if required and not value:
        problem("at least one pattern is required", key, value, "a non-empty list",
                has_value=True)  # fmt: skip
    return list(value)


def _retry_delay(value: Any, key: str, captures: set[str], problem: _Problems) -> RetryDelay | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return RetryDelay(default=value)
    if not isinstance(value, Mapping):
        problem("invalid retry_delay", key, value,
                "seconds, or {default, max, epoch|seconds|duration|rfc3339: capture}")  # fmt: skip
        return None
    unknown = sorted(set(value) - {"default", "max", *_DELAY_KINDS})
    if unknown:
        problem("unknown retry_delay field", f"{key}.{unknown[0]}", unknown[0],
                "default, max, " + ", ".join(_DELAY_KINDS))  # fmt: skip
    for bound in ("default", "max"):
        v = value.get(bound)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            problem(f"invalid retry_delay {bound}", f"{key}.{bound}", v, "seconds (an integer >= 0)")
    for kind in _DELAY_KINDS:
        capture = value.get(kind)
        if capture is not None and capture not in captures:
            problem("retry_delay names a capture no pattern defines", f"{key}.{kind}", capture,
                    "a named group (?P<name>...) of the signature's patterns or extract")  # fmt: skip
    return RetryDelay(
        default=value.get("default"),
        maximum=value.get("max"),
        **{kind: value.get(kind) for kind in _DELAY_KINDS},
    )


def _recommendations(value: Any, key: str, allowed: set[str],
                     problem: _Problems) -> list[RecommendationTemplate]:  # fmt: skip
    if not isinstance(value, list):
        problem("recommendations must be a list", key, value, "a list of {action, detail}")
        return []
    result = []
    for i, item in enumerate(value):
        item_key = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"action": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("action"), str):
            problem("a recommendation needs an 'action' string", item_key, item,
                    "{action: ..., detail: ..., automated: false}")  # fmt: skip
            continue
        rec = RecommendationTemplate(
            action=item["action"],
            detail=str(item.get("detail", "")),
            automated=bool(item.get("automated", False)),
        )
        missing = sorted(rec.placeholders - allowed)
        if missing:
            problem("recommendation uses a capture no pattern defines", item_key,
                    "{" + missing[0] + "}", "one of " + (", ".join(sorted(allowed)) or
                    "(no captures: add (?P<name>...) to a pattern)"))  # fmt: skip
            continue
        result.append(rec)
    return result


def _compile_error(regex: str) -> str | None:
    try:
        import re2
    except ImportError:  # pragma: no cover - google-re2 is a runtime dependency
        try:
            re.compile(regex)
        except re.error as exc:
            return str(exc)
        return None
    options = re2.Options()
    options.log_errors = False
    try:
        re2.compile(regex, options)
    except re2.error as exc:
        message = exc.args[0] if exc.args else exc
        return message.decode() if isinstance(message, bytes) else str(message)
    return None


# --------------------------------------------------------------------------- wrapper hints


def wrapper_hints(kb: KnowledgeBase | None = None) -> list[tuple[str, str, bool, str]]:
    """(signature, category, transient, POSIX ERE) for the stage wrapper: causes first, each
    group most specific first, then symptoms.

    The wrapper greps its log tail with each ERE (``grep -E``, case-sensitive) and reports
    the first match in its termination-message hint; listing causes before symptoms makes a
    test run that died of a network error hint the network error (root cause over symptom).
    Noise signatures have no hint.
    """
    kb = kb or builtin()
    ordered = sorted(kb.by_priority(), key=lambda s: s.role == "symptom")  # stable
    return [
        (s.name, s.category.value, s.transient, s.hint_ere)
        for s in ordered
        if s.hint_ere and s.role != "noise"
    ]


def _main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["--compile"]:
            print(compile_builtin())
            return 0
        if argv[:1] == ["--check"]:
            with open(BUILTIN_YAML, "rb") as handle:
                kb = build(_parse_document(handle.read(), BUILTIN_YAML), origin=BUILTIN_YAML)
            print(f"{len(kb)} signatures OK")
            return 0
    except ConfigError as exc:  # every problem, one per line, no traceback
        print(exc, file=sys.stderr)
        return 1
    print("usage: python -m resilient_templates.runtime.analysis.knowledge --compile|--check",
          file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
