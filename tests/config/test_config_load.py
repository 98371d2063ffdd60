"""Loading resilient.toml: the spec's example, env overlays, pipeline settings, late checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilient_templates.config import (
    DEFAULT_RUNTIME_IMAGE,
    PipelineSettings,
    load_config,
    load_config_text,
)
from resilient_templates.errors import ConfigError
from resilient_templates.policy import Duration, Exponential, Fixed, Linear, Resources, Retry

#: The seed spec's "Configuration Examples / Retry Configuration", verbatim.
SPEC_EXAMPLE = """\
[retry.repository_clone]
max_attempts = 3
backoff_type = "exponential"
base_duration = "30s"
max_duration = "300s"
timeout = "600s"

[retry.test_execution]
max_attempts = 2
backoff_type = "linear"
increment = "30s"
timeout = "1800s"
"""

CLONE = Retry(3, Exponential("30s"), attempt_timeout="600s")
TESTS = Retry(2, Linear("30s"), attempt_timeout="1800s")
STAGES = {
    "repository_clone": CLONE,
    "test_execution": TESTS,
    "code_analysis": Retry(2, Fixed("60s")),
}

FULL = """\
#:schema ./resilient.schema.json
[pipeline]
name = "resilient-pipeline"
namespace = "argo"
service_account = "resilient-pipeline"
deadline = "2h"
runtime_image = "ghcr.io/resilient-templates/runtime:0.1.0"
pod_gc = "OnPodSuccess"
ttl_after_success = "1h"
ttl_after_failure = "168h"
approval_timeout = "1h"
approval_default = "reject"

[retry.repository_clone]
max_attempts = 3
timeout = "600s"

[resources.repository_clone]
cpu_request = "200m"
memory_limit = "1Gi"

[env.production.pipeline]
deadline = "4h"

[env.production.retry.repository_clone]
max_attempts = 5

[env.production.resources.repository_clone]
memory_limit = "2Gi"
"""


def test_spec_example_loads() -> None:
    """The spec's own retry example is a valid config file."""
    config = load_config_text(SPEC_EXAMPLE, source="spec.toml", stages=STAGES)
    assert config.stage_names == frozenset({"repository_clone", "test_execution"})


def test_spec_example_max_duration_caps_each_delay() -> None:
    """The spec's max_duration = "300s" is the cap on any single delay (Argo backoff.cap),
    not a total: 3 attempts wait 30s then 60s, and a 10th attempt would still wait only 5m."""
    config = load_config_text(SPEC_EXAMPLE, source="spec.toml", stages=STAGES)
    clone = config.retry_for("repository_clone", CLONE)
    assert clone.backoff == Exponential("30s", factor=2, cap="300s")
    assert [str(d) for d in clone.schedule()] == ["30s", "1m"]
    assert clone.budget is None
    ten = Retry(10, clone.backoff)
    assert str(max(ten.schedule())) == "5m"


def test_spec_example_linear_starts_at_its_increment() -> None:
    """increment = "30s" alone gives the delays 30s, 60s, … (base defaults to the increment)."""
    config = load_config_text(SPEC_EXAMPLE, stages=STAGES)
    tests = config.retry_for("test_execution", Retry(2, Fixed("1s")))
    assert tests == Retry(2, Linear("30s"), attempt_timeout="1800s")


def test_full_example_settings() -> None:
    """Every [pipeline] key reaches PipelineSettings as a typed value."""
    config = load_config_text(FULL, source="f.toml", stages=STAGES)
    assert config.source == "f.toml" and config.env is None
    assert config.pipeline == PipelineSettings(
        name="resilient-pipeline",
        namespace="argo",
        service_account="resilient-pipeline",
        deadline=Duration.parse("2h"),
        runtime_image="ghcr.io/resilient-templates/runtime:0.1.0",
        pod_gc="OnPodSuccess",
        ttl_after_success=Duration.parse("1h"),
        ttl_after_failure=Duration.parse("168h"),
        approval_timeout=Duration.parse("1h"),
        approval_default="reject",
    )


def test_env_overlay_deep_merges_over_the_root() -> None:
    """--env production changes only the keys its tables set."""
    config = load_config_text(FULL, env="production", stages=STAGES)
    assert config.env == "production"
    assert config.pipeline.deadline == Duration.parse("4h")
    assert config.pipeline.namespace == "argo"
    assert config.retry_for("repository_clone", CLONE) == Retry(
        5, Exponential("30s"), attempt_timeout="600s"
    )
    resources = config.resources_for("repository_clone", Resources(cpu_limit="1"))
    assert resources == Resources(cpu_request="200m", cpu_limit="1", memory_limit="2Gi")


def test_stage_without_a_table_keeps_its_default() -> None:
    """retry_for and resources_for return the default when the file says nothing."""
    config = load_config_text(FULL, stages=STAGES)
    default = Retry(2, Fixed("60s"))
    assert config.retry_for("code_analysis", default) is default
    assert config.resources_for("code_analysis", Resources()) == Resources()


def test_empty_file_gives_the_default_settings() -> None:
    """Every [pipeline] key is optional; the defaults are consistent with each other."""
    config = load_config_text("")
    assert config.pipeline == PipelineSettings()
    assert config.pipeline.runtime_image == DEFAULT_RUNTIME_IMAGE
    assert config.pipeline.approval_timeout < config.pipeline.deadline


def test_schema_key_is_allowed_for_editors() -> None:
    """A root "$schema" key (Taplo's alternative to the #:schema comment) is accepted."""
    assert load_config_text('"$schema" = "./resilient.schema.json"\n').stage_names == frozenset()


def test_without_stage_defaults_unknown_stage_names_are_allowed() -> None:
    """Without the stage list, names are not checked; tables are checked as far as they can be."""
    config = load_config_text("[retry.anything]\nmax_attempts = 2\n")
    assert config.stage_names == frozenset({"anything"})


def test_without_stage_defaults_a_complete_table_is_checked() -> None:
    """A table that names its type and attempts is built and checked even without defaults."""
    text = (
        '[retry.x]\nmax_attempts = 3\nbackoff_type = "fixed"\nbase_duration = "10m"\n'
        'budget = "15m"\n'
    )
    with pytest.raises(ConfigError, match=r"retry\.x\.budget: schedule longer than its budget"):
        load_config_text(text)


def test_retry_for_checks_the_table_against_the_given_default() -> None:
    """A problem only the stage default reveals surfaces in retry_for, still as one line."""
    config = load_config_text("[retry.x]\nfactor = 3\n", source="f.toml")
    with pytest.raises(ConfigError) as caught:
        config.retry_for("x", Retry(2, Fixed("10s")))
    assert str(caught.value) == (
        "f.toml: retry.x.factor: 'factor' does not apply to backoff_type 'fixed' (it is an "
        "exponential key) (got 3; expected one of the keys fixed backoff takes: max_attempts, "
        "backoff_type, base_duration, timeout, budget, retry_on)"
    )


def test_resources_for_checks_the_table_against_the_given_default() -> None:
    """A request above the default's limit is caught when the default is known."""
    config = load_config_text('[resources.x]\nmemory_request = "4Gi"\n', source="f.toml")
    with pytest.raises(ConfigError) as caught:
        config.resources_for("x", Resources(memory_limit="2Gi"))
    assert str(caught.value) == (
        "f.toml: resources.x.memory_request: memory_request '4Gi' exceeds memory_limit '2Gi' "
        "(Kubernetes rejects a request above its limit) (got '4Gi'; expected memory_request "
        "<= memory_limit)"
    )


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    """load_config reads the path and keeps it as given for messages."""
    path = tmp_path / "resilient.toml"
    path.write_text(SPEC_EXAMPLE, encoding="utf-8")
    assert load_config(path, stages=STAGES).source == str(path)


def test_non_utf8_file_is_one_line(tmp_path: Path) -> None:
    """A file that is not UTF-8 is a ConfigError naming the byte offset."""
    path = tmp_path / "latin1.toml"
    path.write_bytes('[pipeline]\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 22); TOML files are UTF-8"
