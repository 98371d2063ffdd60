"""``resilient-templates validate``: Argo manifests against Argo's strict schema and semantics.

    report = validate_paths(["generated/"])          # files and directories of *.yaml / *.yml
    problems = validate_documents(docs, source="x")  # already-parsed documents

Every problem is one line naming the file, the document (index, kind/name), the key path, the
bad value and what was expected. Documents of other kinds (Kustomization, ConfigMap, Role, ...)
are skipped and counted. Without a schema (see ``load_schema``) only the semantic checks run, and
that is said loudly: a warning from ``validate_documents``, ``Report.schema_skipped`` from
``validate_paths``, a banner on stderr from the CLI.

Rules (``Problem.rule``): ``schema`` (strict Argo schema), ``yaml`` (unreadable file), ``integer``
(limit/factor not Atoi-parsable), ``duration``, ``memoize-key``, ``metric-name``, ``metric-help``,
``metric-type``, ``metric-label``, ``metric-value``, ``gauge-realtime``, ``removed-v4``,
``leaf-only``, ``hook-expression``, ``template-ref``, ``continue-on-depends``,
``active-deadline`` (a template deadline ``intstr.Int64`` cannot read, a non-integer workflow
deadline), ``depends`` (unknown task or result, bad syntax), ``input-ref`` (an undeclared input
used), ``node-ref`` (an unknown step/task used), ``arguments`` (an argument the called template
does not declare, a required input not passed), ``when-quoting`` (a ``when`` govaluate misreads),
``expression`` (a retry/hook expression that cannot compile), ``volume-mount`` (a mount of an
undeclared volume; documents with an entrypoint only); and the two ``POLICY_RULES`` stricter than
Argo: ``retry-limit`` (no explicit limit) and ``spec-retry`` (a retryStrategy for every template).
One key path gets one problem: a semantic message replaces the schema's for the same path.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from ..errors import ValidationError
from .problem import POLICY_RULES, Problem, Report, render_path
from .schema import KINDS, ArgoSchema, SchemaUnavailable, load_schema
from .semantics import check_document

__all__ = [
    "ArgoSchema",
    "POLICY_RULES",
    "Problem",
    "Report",
    "SchemaSkippedWarning",
    "SchemaUnavailable",
    "default_schema",
    "load_schema",
    "run",
    "validate_documents",
    "validate_paths",
]


class SchemaSkippedWarning(UserWarning):
    """Schema validation did not run; only the semantic checks did."""


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


#: ``schema=AUTO``: use ``default_schema()``; if it is unavailable, check semantics only (loudly).
AUTO: Final = _Auto()
_ENV_KEYS = ("ARGO_SCHEMA", "XDG_CACHE_HOME", "HOME", "ARGO_SCHEMA_BASE_URL")
_defaults: dict[tuple[str, ...], ArgoSchema | SchemaUnavailable] = {}


def default_schema() -> ArgoSchema:
    """``load_schema()`` for the current environment, loaded once per process (failures too)."""
    key = tuple(os.environ.get(name, "") for name in _ENV_KEYS)
    if key not in _defaults:
        try:
            _defaults[key] = load_schema()
        except SchemaUnavailable as exc:
            _defaults[key] = exc
    found = _defaults[key]
    if isinstance(found, SchemaUnavailable):
        raise found
    return found


def validate_documents(
    docs: Iterable[object], *, source: str, schema: ArgoSchema | None | _Auto = AUTO
) -> list[Problem]:
    """Problems of each Argo document in ``docs`` (index = position in ``docs``).

    ``schema=None`` runs the semantic checks only; ``AUTO`` (default) uses ``default_schema()``
    and, if there is none, warns with ``SchemaSkippedWarning`` and checks semantics only.
    """
    if isinstance(schema, _Auto):
        try:
            schema = default_schema()
        except SchemaUnavailable as exc:
            warnings.warn(f"Argo schema validation SKIPPED: {exc}", SchemaSkippedWarning, stacklevel=2)
            schema = None
    problems: list[Problem] = []
    for index, doc in enumerate(docs):
        problems.extend(_check(doc, index, source, schema) or ())
    return problems


def _is_argo(doc: object) -> bool:
    return isinstance(doc, Mapping) and doc.get("kind") in KINDS


def _check(doc: object, index: int, source: str, schema: ArgoSchema | None) -> list[Problem] | None:
    """The document's problems, or None when it is not an Argo document."""
    if not _is_argo(doc):
        return None
    assert isinstance(doc, Mapping)
    semantic = check_document(doc)
    seen = {f.parts for f in semantic}
    findings = list(semantic)
    if schema is not None and schema.knows(doc.get("kind")):
        for finding in schema.check(doc):
            if finding.parts not in seen:  # a semantic message for the same key is the better one
                seen.add(finding.parts)
                findings.append(finding)
    findings.sort(key=lambda f: _order(f.parts))
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
    name = metadata.get("name") or metadata.get("generateName") or ""
    return [
        Problem(source, index, str(doc.get("kind")), str(name), render_path(f.parts), f.message, f.rule)
        for f in findings
    ]


def _order(parts: tuple[str | int, ...]) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in parts)


def _files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = [
                f
                for f in sorted(path.rglob("*"))
                if f.suffix in (".yaml", ".yml")
                and f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
            ]
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ValidationError(f"{raw}: no such file or directory")
    return files


@functools.cache
def _yaml_loader() -> type:
    """PyYAML's safe loader (C if available) without timestamp parsing: Kubernetes reads a bare
    ``2024-01-01`` into a string field as a string, so it must not become a ``date`` here."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    return Loader


def _load_stream(path: Path) -> tuple[list[Any], Problem | None]:
    """The documents of one file, and a problem if it could not all be read."""
    import yaml

    docs: list[Any] = []
    try:
        text = path.read_text(encoding="utf-8")
        for doc in yaml.load_all(text, Loader=_yaml_loader()):
            docs.append(doc)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return docs, Problem(str(path), len(docs), "", "", "", f"cannot read the file ({reason})", "yaml")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{what} ({context})" if context else what
        return docs, Problem(str(path), len(docs), "", "", "", f"not valid YAML: {where}{detail}", "yaml")
    return docs, None


def validate_paths(
    paths: Sequence[str | os.PathLike[str]],
    *,
    schema: ArgoSchema | None | _Auto = AUTO,
    require_schema: bool = False,
) -> Report:
    """Validate every ``*.yaml``/``*.yml`` under ``paths`` (files given by name are read whatever
    their extension). ``require_schema`` turns a missing schema into ``SchemaUnavailable``."""
    skipped_reason = None
    if isinstance(schema, _Auto):
        try:
            schema = default_schema()
        except SchemaUnavailable as exc:
            if require_schema:
                raise
            schema, skipped_reason = None, str(exc)
    elif schema is None:
        if require_schema:
            raise SchemaUnavailable("schema validation was turned off (schema=None)")
        skipped_reason = "schema validation was turned off (schema=None)"
    files = _files(paths)
    problems: list[Problem] = []
    checked = invalid = other = 0
    for path in files:
        docs, unreadable = _load_stream(path)
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            found = _check(doc, index, str(path), schema)
            if found is None:
                other += 1
                continue
            checked += 1
            invalid += bool(found)
            problems.extend(found)
        if unreadable is not None:
            checked += 1
            invalid += 1
            problems.append(unreadable)
    return Report(
        problems=tuple(problems),
        checked=checked,
        invalid=invalid,
        skipped=other,
        schema_origin=schema.origin if schema is not None else None,
        schema_skipped=skipped_reason,
        files=tuple(str(f) for f in files),
    )


def run(argv: list[str]) -> int:
    """``resilient-templates validate PATH... [--require-schema] [--schema FILE]``."""
    from .cli import run as run_cli

    return run_cli(argv)
