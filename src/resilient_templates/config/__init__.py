"""``resilient.toml``: pipeline settings and per-stage retry/resources overrides.

    from resilient_templates.config import load_config
    cfg = load_config("stages/resilient.toml", env="production", stages={"clone": clone_retry})
    retry = cfg.retry_for("clone", clone_retry)

Every mistake is a one-line ``ConfigError`` naming the file, the key path, the value and what
was expected; several mistakes are reported together, one per line.
"""

from __future__ import annotations

from .load import (
    DEFAULT_RUNTIME_IMAGE,
    PipelineSettings,
    ProjectConfig,
    load_config,
    load_config_text,
)
from .models import json_schema
from .tables import resources_from_table, resources_to_table, retry_from_table, retry_to_table

__all__ = [
    "DEFAULT_RUNTIME_IMAGE",
    "PipelineSettings",
    "ProjectConfig",
    "json_schema",
    "load_config",
    "load_config_text",
    "resources_from_table",
    "resources_to_table",
    "retry_from_table",
    "retry_to_table",
]
