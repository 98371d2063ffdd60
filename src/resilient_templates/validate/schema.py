"""Argo's official JSON schema, found, verified and made strict.

Where the schema comes from, in order:

1. ``ARGO_SCHEMA`` (a path; CI points it at the shared copy). Used as given, so a newer schema
   can be tried; a path that cannot be read is an error, never a silent skip.
2. The pinned copy in ``$XDG_CACHE_HOME/resilient-templates/`` (default ``~/.cache``), accepted
   only if its SHA-256 matches ``PINNED_SHA256``.
3. A download of exactly that file from GitHub at ``PINNED_COMMIT`` (base URL overridable with
   ``ARGO_SCHEMA_BASE_URL`` for a mirror), verified against the same checksum before it is cached.

If none works, ``SchemaUnavailable`` says why each source failed; callers then run the semantic
checks only and say so loudly.

Argo's published schema is loose in two ways (argo-semantics §11); ``strict_definitions``
corrects both: IntOrString and Quantity are widened to what the API server accepts
(``limit: 3``, ``cpu: 1``), and every object is closed with ``additionalProperties: false`` so
typos and fields removed in v4 are reported. It also adds the ``retryPolicy`` enum of the CRD.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from .problem import Finding, describe, show

__all__ = [
    "ArgoSchema",
    "DEFAULT_BASE_URL",
    "PINNED_COMMIT",
    "PINNED_SHA256",
    "SchemaUnavailable",
    "cache_path",
    "load_schema",
    "pinned_url",
    "strict_definitions",
]

PINNED_COMMIT = "f016ad89eb269d282aec06dc491c29f396a38df4"  # argo-workflows main at v4.1.2 changelog
PINNED_SHA256 = "3f84c5722c48a5aa815fe69119a9375fc3635114f8046da20ede55a8596529f5"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/argoproj/argo-workflows"
SCHEMA_PATH_IN_REPO = "api/jsonschema/schema.json"
DOWNLOAD_TIMEOUT_SECONDS = 5.0
MAX_SCHEMA_BYTES = 16 * 1024 * 1024

PREFIX = "io.argoproj.workflow.v1alpha1."
KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow", "WorkflowEventBinding")
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
#: Go ``struct{}`` types: the schema leaves them as bare ``{"type": "object"}``; only ``{}`` is valid.
EMPTY_STRUCTS = ("NoneStrategy", "RetryNodeAntiAffinity", "SuppliedValueFrom", "ZipStrategy")
RETRY_POLICIES = ["Always", "OnFailure", "OnError", "OnTransientError"]


class SchemaUnavailable(ValidationError):
    """No schema source worked; ``str()`` says why each one failed."""


def pinned_url(base_url: str = DEFAULT_BASE_URL) -> str:
    return f"{base_url.rstrip('/')}/{PINNED_COMMIT}/{SCHEMA_PATH_IN_REPO}"


def cache_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    root = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(root) / "resilient-templates" / f"argo-schema-{PINNED_COMMIT[:12]}.json"


def strict_definitions(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Argo's definitions with the two corrections and the retryPolicy enum (a deep copy)."""
    defs = copy.deepcopy(schema["definitions"])
    defs[INT_OR_STRING] = {"type": ["string", "integer"]}
    defs[QUANTITY] = {"type": ["string", "number"]}
    for name in EMPTY_STRUCTS:
        if PREFIX + name in defs:
            defs[PREFIX + name] = {"type": "object", "properties": {}}
    for definition in defs.values():
        _close_objects(definition)
    retry = defs.get(PREFIX + "RetryStrategy", {}).get("properties", {})
    if "retryPolicy" in retry:
        retry["retryPolicy"]["enum"] = list(RETRY_POLICIES)
    return defs


def _close_objects(node: object) -> None:
    """Add ``additionalProperties: false`` to every schema object that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for key, value in node.items():
            if key != "enum":
                _close_objects(value)
    elif isinstance(node, list):
        for item in node:
            _close_objects(item)


class ArgoSchema:
    """A loaded, strict Argo schema; validators are built once per kind and reused."""

    def __init__(self, raw: Mapping[str, Any], origin: str) -> None:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("definitions"), Mapping):
            raise ValidationError(f"{origin}: not Argo's JSON schema (no 'definitions' object)")
        missing = [kind for kind in KINDS[:4] if PREFIX + kind not in raw["definitions"]]
        if missing:
            raise ValidationError(f"{origin}: not Argo's JSON schema (no definition for {', '.join(missing)})")
        self.origin = origin
        self.definitions = strict_definitions(raw)
        self._validators: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"ArgoSchema({self.origin!r})"

    def knows(self, kind: object) -> bool:
        return isinstance(kind, str) and kind in KINDS and PREFIX + kind in self.definitions

    def validator(self, kind: str) -> Any:
        found = self._validators.get(kind)
        if found is None:
            from jsonschema import Draft202012Validator

            root = {"definitions": self.definitions, "$ref": f"#/definitions/{PREFIX}{kind}"}
            found = self._validators[kind] = Draft202012Validator(root)
        return found

    def check(self, doc: Mapping[str, Any]) -> list[Finding]:
        """Every schema violation of ``doc`` (whose kind this schema knows), one per key path."""
        errors = self.validator(str(doc["kind"])).iter_errors(doc)
        return [finding for error in errors for finding in _findings(error)]


def _findings(error: Any) -> Iterator[Finding]:
    """Turn one jsonschema error into findings that name the exact key, value and expectation."""
    at = tuple(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties" and error.validator_value is False:
        known = sorted(error.schema.get("properties", {}))
        for key in sorted(set(error.instance) - set(known)):
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            allowed = ", ".join(known) if known else "no fields at all ({})"
            yield Finding((*at, key), f"unknown field {show(key)} (expected one of: {allowed}{hint})", "schema")
    elif kind == "required":
        for key in error.validator_value:  # one error per missing key; duplicates merge by path
            if isinstance(error.instance, dict) and key not in error.instance:
                yield Finding((*at, key), f"missing required field {show(key)}", "schema")
    elif kind == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        yield Finding(at, describe("wrong type", got=error.instance, expected=" or ".join(types)), "schema")
    elif kind == "enum":
        choices = ", ".join(show(v) for v in error.validator_value)
        yield Finding(at, describe("not an allowed value", got=error.instance, expected=f"one of {choices}"), "schema")
    elif kind == "const":
        yield Finding(at, describe("wrong value", got=error.instance, expected=show(error.validator_value)), "schema")
    else:
        yield Finding(at, " ".join(error.message.split()), "schema")


def load_schema(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    base_url: str | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
    download: bool = True,
) -> ArgoSchema:
    """The strict Argo schema from ``path``, ``ARGO_SCHEMA``, the verified cache or a pinned download.

    Raises ``ValidationError`` when an explicitly named file is unusable, and
    ``SchemaUnavailable`` (a ValidationError) when no source worked, saying why.
    """
    env = os.environ if env is None else env
    explicit = str(path) if path is not None else env.get("ARGO_SCHEMA", "")
    if explicit:
        label = explicit if path is not None else f"ARGO_SCHEMA={explicit}"
        return ArgoSchema(_read_json(Path(explicit), label), label)

    reasons = ["ARGO_SCHEMA is not set"]
    cached = cache_path(env)
    data = _read_verified_cache(cached, reasons)
    origin = f"{cached} (argo-workflows {PINNED_COMMIT[:10]}, sha256 verified)"
    if data is None and download:
        url = pinned_url(base_url or env.get("ARGO_SCHEMA_BASE_URL") or DEFAULT_BASE_URL)
        data = _download_verified(url, timeout, reasons)
        if data is not None:
            _store(cached, data, reasons)
            origin = f"{url} (sha256 verified)"
    elif data is None:
        reasons.append("download disabled")
    if data is None:
        raise SchemaUnavailable("; ".join(reasons))
    return ArgoSchema(json.loads(data), origin)


def _read_json(path: Path, label: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise ValidationError(f"{label}: cannot read the Argo schema ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ValidationError(f"{label}: the Argo schema is not valid JSON ({exc})") from None


def _read_verified_cache(path: Path, reasons: list[str]) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        reasons.append(f"no cached copy at {path}")
        return None
    except OSError as exc:
        reasons.append(f"cannot read cached copy {path} ({exc.strerror or exc})")
        return None
    if hashlib.sha256(data).hexdigest() != PINNED_SHA256:
        reasons.append(f"cached copy {path} has the wrong sha256 (ignored)")
        return None
    return data


def _download_verified(url: str, timeout: float, reasons: list[str]) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https URL pinned)
            data = response.read(MAX_SCHEMA_BYTES + 1)
    except urllib.error.HTTPError as exc:
        reasons.append(f"download of {url} failed (HTTP {exc.code})")
        return None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        reasons.append(f"download of {url} failed ({why})")
        return None
    digest = hashlib.sha256(data).hexdigest()
    if digest != PINNED_SHA256:
        reasons.append(f"download of {url} has sha256 {digest}, expected {PINNED_SHA256} (refused)")
        return None
    return data


def _store(path: Path, data: bytes, reasons: list[str]) -> None:
    """Cache the verified bytes atomically; a read-only cache only costs the next download."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as exc:
        reasons.append(f"could not cache it at {path} ({exc.strerror or exc})")
