"""Read ``resilient.toml``: parse, lay the chosen ``[env.NAME]`` over the root, validate, and
report every problem in one pass.

``load_config(path, env=None, stages=None)`` returns a :class:`ProjectConfig`; the generator
asks it ``retry_for(stage, default)`` and ``resources_for(stage, default)``. Given ``stages``
(name -> default Retry), every stage table is built and checked at load time, so one run shows
every mistake.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from .. import __version__
from ..errors import ConfigError
from ..policy import Duration, Resources, Retry
from .models import ConfigFile, PipelineTable, ResourcesTable, RetryTable
from .problems import dotted, from_pydantic, raise_all, unknown_name
from .tables import build_resources, build_retry

__all__ = [
    "DEFAULT_RUNTIME_IMAGE",
    "PipelineSettings",
    "ProjectConfig",
    "load_config",
    "load_config_text",
]

DEFAULT_RUNTIME_IMAGE = f"ghcr.io/resilient-templates/runtime:{__version__}"
_SECTIONS = ("retry", "resources")
_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_TOML_HINTS = {
    "Cannot overwrite a value": "is a key set twice?",
}


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """Workflow-wide settings from ``[pipeline]``, defaults filled in."""

    name: str = "resilient-pipeline"
    namespace: str | None = None
    service_account: str = "resilient-pipeline"
    deadline: Duration | None = Duration.of(hours=6)
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    pod_gc: str = "OnPodSuccess"
    ttl_after_success: Duration | None = Duration.of(hours=1)
    ttl_after_failure: Duration | None = Duration.of(hours=168)
    approval_timeout: Duration = Duration.of(hours=4)
    approval_default: str = "reject"


@dataclass(frozen=True, slots=True)
class _StageTable:
    """One stage's table after the env overlay, and where each key was written."""

    raw: Mapping[str, Any]
    paths: Mapping[str, str]
    prefix: str  # where a key that is not written would go
    latest: frozenset[str] = frozenset()  # keys the env overlay wrote

    def key_of(self, key: str) -> str:
        return self.paths.get(key, f"{self.prefix}.{key}")


@dataclass(frozen=True)
class ProjectConfig:
    """A validated config file: pipeline settings and per-stage overrides."""

    source: str
    env: str | None
    pipeline: PipelineSettings
    _retry: Mapping[str, _StageTable] = field(default_factory=dict, repr=False)
    _resources: Mapping[str, _StageTable] = field(default_factory=dict, repr=False)

    @property
    def stage_names(self) -> frozenset[str]:
        """Stages named under ``[retry.*]`` or ``[resources.*]``."""
        return frozenset(self._retry) | frozenset(self._resources)

    def retry_for(self, stage: str, default: Retry) -> Retry:
        """``default`` overridden by ``[retry.<stage>]``, validated (ConfigError otherwise)."""
        table = self._retry.get(stage)
        if table is None:
            return default
        raw = dict(table.raw)
        return self._build(
            table, lambda **kw: build_retry(RetryTable.model_validate(raw).given(), raw, **kw), default
        )

    def resources_for(self, stage: str, default: Resources) -> Resources:
        """``default`` overridden by ``[resources.<stage>]``, validated."""
        table = self._resources.get(stage)
        if table is None:
            return default
        given = ResourcesTable.model_validate(dict(table.raw)).given()
        return self._build(table, lambda **kw: build_resources(given, **kw), default)

    def _build(self, table: _StageTable, builder: Any, default: Any) -> Any:
        """Run a table builder against ``default``; every problem is raised at once."""
        problems: list[ConfigError] = []
        built = builder(
            base=default, key_of=table.key_of, file=self.source, problems=problems,
            latest=table.latest,
        )  # fmt: skip
        raise_all(problems)
        assert built is not None
        return built


def load_config(
    path: str | Path,
    env: str | None = None,
    stages: Mapping[str, Retry] | None = None,
    *,
    resources: Mapping[str, Resources] | None = None,
) -> ProjectConfig:
    """Read and validate ``path``; ConfigError lists every problem, one per line."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot read the config file: {reason}", file=source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}); TOML files are UTF-8", file=source
        ) from None
    return load_config_text(text, source=source, env=env, stages=stages, resources=resources)


def load_config_text(
    text: str,
    *,
    source: str = "<string>",
    env: str | None = None,
    stages: Mapping[str, Retry] | None = None,
    resources: Mapping[str, Resources] | None = None,
) -> ProjectConfig:
    """Like :func:`load_config`, from a string (``source`` names it in messages)."""
    doc = _parse(text, source)
    problems: list[ConfigError] = []
    broken = _check_shape(doc, source, problems)
    overlay = _select_env(doc, env, source, problems)
    prefixes = {"": ()} if overlay is None else {"": (), f"env.{env}.": ("env", env)}

    def clean(*path: str) -> bool:
        """No shape error under ``path`` in the root or the chosen overlay."""
        wanted = [base + path for base in prefixes.values()]
        return not any(bad[: len(w)] == w for w in wanted for bad in broken)

    pipeline = _pipeline(doc, overlay, env, source, problems) if clean("pipeline") else None
    tables = {section: _stage_tables(doc, overlay, env, section) for section in _SECTIONS}
    if stages is not None:
        for section in _SECTIONS:
            for name, table in tables[section].items():
                if name not in stages:
                    problems.append(
                        unknown_name("stage", name, stages, file=source, key=table.prefix)
                    )
    for name, table in tables["retry"].items():
        if not clean("retry", name) or (stages is not None and name not in stages):
            continue
        build_retry(
            RetryTable.model_validate(dict(table.raw)).given(),
            dict(table.raw),
            base=None if stages is None else stages[name],
            key_of=table.key_of,
            file=source,
            problems=problems,
            lenient=stages is None,
            latest=table.latest,
        )
    for name, table in tables["resources"].items():
        if not clean("resources", name) or (stages is not None and name not in stages):
            continue
        build_resources(
            ResourcesTable.model_validate(dict(table.raw)).given(),
            base=(resources or {}).get(name),
            key_of=table.key_of,
            file=source,
            problems=problems,
            latest=table.latest,
        )
    raise_all(_unique(problems))
    assert pipeline is not None
    return ProjectConfig(source, env, pipeline, tables["retry"], tables["resources"])


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.match(message)
        where = source
        if match:
            message = match["msg"]
            where = f"{source}:{match['line']}:{match['col']}"
        hint = _TOML_HINTS.get(message)
        raise ConfigError(
            f"invalid TOML: {message}" + (f" ({hint})" if hint else ""), file=where
        ) from None


def _check_shape(doc: dict[str, Any], source: str, problems: list[ConfigError]) -> set[tuple]:
    """Validate the whole file (every overlay too); return the locations that failed."""
    try:
        ConfigFile.model_validate(doc)
    except PydanticValidationError as exc:
        problems.extend(from_pydantic(exc, file=source))
        return {tuple(error["loc"]) for error in exc.errors()}
    return set()


def _select_env(
    doc: dict[str, Any], env: str | None, source: str, problems: list[ConfigError]
) -> dict[str, Any] | None:
    if env is None:
        return None
    envs = doc.get("env") if isinstance(doc.get("env"), dict) else {}
    overlay = envs.get(env)
    if overlay is None:
        problems.append(unknown_name("environment", env, envs, file=source, key="env"))
        return None
    return overlay if isinstance(overlay, dict) else None


def _table(node: Any, *path: str) -> dict[str, Any]:
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _stage_tables(
    doc: dict[str, Any], overlay: dict[str, Any] | None, env: str | None, section: str
) -> dict[str, _StageTable]:
    root = _table(doc, section)
    over = _table(overlay, section) if overlay is not None else {}
    out = {}
    for name in [*root, *(n for n in over if n not in root)]:
        base, top = _table(root, name), _table(over, name)
        root_path = dotted((section, name))
        env_path = dotted(("env", env or "", section, name))
        paths = {key: f"{root_path}.{key}" for key in base}
        paths |= {key: f"{env_path}.{key}" for key in top}
        prefix = env_path if name in over else root_path
        out[name] = _StageTable({**base, **top}, paths, prefix, frozenset(top))
    return out


def _pipeline(
    doc: dict[str, Any],
    overlay: dict[str, Any] | None,
    env: str | None,
    source: str,
    problems: list[ConfigError],
) -> PipelineSettings | None:
    root = _table(doc, "pipeline")
    top = _table(overlay, "pipeline") if overlay is not None else {}
    values = PipelineTable.model_validate({**root, **top}).given()
    settings = PipelineSettings(**values)
    deadline, timeout = settings.deadline, settings.approval_timeout
    if deadline is not None and timeout >= deadline:
        keys = ("approval_timeout", "deadline")
        written = [k for k in keys if k in top] or [k for k in keys if k in root] or [keys[0]]
        key = written[0]
        where = f"env.{env}.pipeline" if key in top else "pipeline"
        problems.append(
            ConfigError(
                f"approval_timeout {timeout} is not shorter than the workflow deadline "
                f"{deadline}: Argo fails a suspended gate at the deadline, so the "
                f"approval_default would never apply",
                file=source,
                key=f"{where}.{key}",
                value={**root, **top}.get(key, str(getattr(settings, key))),
                expected=f"approval_timeout < deadline ({deadline})",
            )
        )
    return settings


def _unique(problems: list[ConfigError]) -> list[ConfigError]:
    seen, out = set(), []
    for problem in problems:
        if str(problem) not in seen:
            seen.add(str(problem))
            out.append(problem)
    return out
