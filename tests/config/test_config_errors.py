"""One test per config error: each asserts the complete one-line message."""

from __future__ import annotations

import pytest

from resilient_templates.config import load_config, load_config_text, retry_from_table
from resilient_templates.errors import ConfigError
from resilient_templates.policy import Exponential, Fixed, Linear, Retry, RetryOn

F = "stages/resilient.toml"

#: The five stages' defaults as the DSL gives them (the values only matter for the merge).
STAGES = {
    "repository_clone": Retry(3, Exponential("30s", cap="300s"), attempt_timeout="600s"),
    "code_analysis": Retry(2, Fixed("60s")),
    "test_execution": Retry(2, Linear("30s"), attempt_timeout="1800s"),
    "coverage": Retry(2, Exponential("30s")),
    "pr_operations": Retry(3, Exponential("30s"), retry_on=RetryOn.SAFE),
}


def error(text: str, **kwargs: object) -> str:
    """The message of the ConfigError that loading ``text`` raises."""
    kwargs.setdefault("stages", STAGES)
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, source=F, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def test_unknown_key_suggests_the_closest_known_key() -> None:
    """A misspelt key is rejected with a did-you-mean and the keys the table accepts."""
    assert error("[retry.repository_clone]\nmax_attempt = 3\n") == (
        f"{F}: retry.repository_clone.max_attempt: unknown key 'max_attempt'; did you mean "
        "'max_attempts'? (expected one of max_attempts, backoff_type, base_duration, factor, "
        "max_duration, jitter, increment, delays, timeout, budget, retry_on)"
    )


def test_unknown_section_suggests_the_closest_section() -> None:
    """A misspelt top-level table is rejected too."""
    assert error("[retries.repository_clone]\nmax_attempts = 3\n") == (
        f"{F}: retries: unknown key 'retries'; did you mean 'retry'? "
        "(expected one of pipeline, retry, resources, $schema, env)"
    )


def test_unknown_pipeline_key_without_a_close_match_lists_the_keys() -> None:
    """No suggestion when nothing is close, but the accepted keys are still listed."""
    assert error("[pipeline]\nreplicas = 3\n") == (
        f"{F}: pipeline.replicas: unknown key 'replicas' (expected one of name, namespace, "
        "service_account, deadline, runtime_image, pod_gc, ttl_after_success, "
        "ttl_after_failure, approval_timeout, approval_default)"
    )


def test_day_unit_is_refused_with_the_go_spelling() -> None:
    """'1d' is not a Go duration; the message says to use hours."""
    assert error('[retry.repository_clone]\nbase_duration = "1d"\n') == (
        f"{F}: retry.repository_clone.base_duration: duration '1d' uses unit 'd', which Argo's "
        "Go parser does not accept (use 24h per day, e.g. '24h') (got '1d'; expected a Go "
        "duration such as '30s' or '1h30m')"
    )


def test_seven_days_ttl_suggests_168h() -> None:
    """The hint converts the value itself: '7d' becomes '168h'."""
    assert error('[pipeline]\nttl_after_failure = "7d"\n') == (
        f"{F}: pipeline.ttl_after_failure: duration '7d' uses unit 'd', which Argo's Go parser "
        "does not accept (use 24h per day, e.g. '168h') (got '7d'; expected a Go duration such "
        "as '30s' or '1h30m')"
    )


def test_garbage_duration_is_refused() -> None:
    """A string that is no duration at all names the accepted units."""
    assert error('[retry.repository_clone]\ntimeout = "ten minutes"\n') == (
        f"{F}: retry.repository_clone.timeout: duration 'ten minutes' is not a Go duration "
        "(expected a number and a unit ns/us/ms/s/m/h, e.g. '500ms', '30s', '1h30m') "
        "(got 'ten minutes'; expected a Go duration such as '30s' or '1h30m')"
    )


def test_float_duration_is_refused() -> None:
    """A TOML float is neither a Go duration string nor whole seconds."""
    assert error("[retry.repository_clone]\nbudget = 1.5\n") == (
        f"{F}: retry.repository_clone.budget: a duration must be a string or an integer number "
        "of seconds, not a float (got 1.5; expected a Go duration such as '30s' or '1h30m')"
    )


def test_fractional_timeout_is_refused_because_argo_counts_whole_seconds() -> None:
    """The per-attempt timeout lowers to activeDeadlineSeconds, an integer."""
    assert error('[retry.repository_clone]\ntimeout = "1500ms"\n') == (
        f"{F}: retry.repository_clone.timeout: 1.5s is not a whole number of seconds, and "
        "activeDeadlineSeconds counts whole seconds (got '1500ms'; expected a whole number of "
        "seconds, e.g. '90s' or '10m')"
    )


def test_zero_budget_is_refused() -> None:
    """A zero budget would forbid every retry."""
    assert error('[retry.repository_clone]\nbudget = "0s"\n') == (
        f"{F}: retry.repository_clone.budget: must be greater than 0s (got '0s'; expected a "
        "positive Go duration such as '10m')"
    )


def test_fractional_factor_is_refused() -> None:
    """factor 1.5 fails Argo's Atoi at run time, so it fails here first."""
    assert error("[retry.repository_clone]\nfactor = 1.5\n") == (
        f"{F}: retry.repository_clone.factor: must be an integer, not a float (Argo parses "
        "factor with strconv.Atoi, so 1.5 fails at run time) (got 1.5; expected an integer "
        ">= 1, e.g. 2)"
    )


def test_factor_as_string_is_refused() -> None:
    """factor "1.5" (a string, as Argo's YAML has it) is refused the same way."""
    assert error('[retry.repository_clone]\nfactor = "1.5"\n') == (
        f"{F}: retry.repository_clone.factor: must be an integer, not a string (Argo parses "
        "factor with strconv.Atoi, so 1.5 fails at run time) (got '1.5'; expected an integer "
        ">= 1, e.g. 2)"
    )


def test_zero_factor_is_refused() -> None:
    """factor 0 would make every delay after the first zero."""
    assert error("[retry.repository_clone]\nfactor = 0\n") == (
        f"{F}: retry.repository_clone.factor: must be at least 1 (got 0; expected an integer "
        ">= 1, e.g. 2)"
    )


@pytest.mark.parametrize("value", [0, -2])
def test_max_attempts_below_one_is_refused(value: int) -> None:
    """max_attempts counts the first attempt too, so it is at least 1."""
    assert error(f"[retry.repository_clone]\nmax_attempts = {value}\n") == (
        f"{F}: retry.repository_clone.max_attempts: must be at least 1: it counts every "
        f"attempt, the first included (got {value}; expected an integer >= 1 counting every "
        "attempt, e.g. 3)"
    )


def test_fractional_max_attempts_is_refused() -> None:
    """2.5 attempts is not a thing."""
    assert error("[retry.repository_clone]\nmax_attempts = 2.5\n") == (
        f"{F}: retry.repository_clone.max_attempts: must be an integer, not a float (got 2.5; "
        "expected an integer >= 1 counting every attempt, e.g. 3)"
    )


def test_string_for_an_integer_is_refused() -> None:
    """A quoted number is a TOML string, not an integer."""
    assert error('[retry.repository_clone]\nmax_attempts = "3"\n') == (
        f"{F}: retry.repository_clone.max_attempts: must be an integer, not a string (got '3'; "
        "expected an integer >= 1 counting every attempt, e.g. 3)"
    )


def test_custom_delays_must_match_the_retries() -> None:
    """Custom backoff needs exactly one delay per retry (max_attempts - 1)."""
    text = (
        '[retry.code_analysis]\nmax_attempts = 4\nbackoff_type = "custom"\n'
        'delays = ["10s", "1m"]\n'
    )
    assert error(text) == (
        f"{F}: retry.code_analysis.delays: custom backoff lists 2 delays but max_attempts = 4 "
        "makes 3 retries, one delay each (got ['10s', '1m']; expected exactly max_attempts - 1 "
        "= 3 delays)"
    )


def test_custom_with_a_single_attempt_has_nothing_to_delay() -> None:
    """max_attempts = 1 and custom delays contradict each other."""
    text = '[retry.code_analysis]\nmax_attempts = 1\nbackoff_type = "custom"\ndelays = ["10s"]\n'
    assert error(text) == (
        f"{F}: retry.code_analysis.delays: max_attempts = 1 makes no retries, so custom backoff "
        "has nothing to delay (got ['10s']; expected max_attempts >= 2, or backoff_type 'fixed')"
    )


def test_bad_custom_delay_is_located_by_index() -> None:
    """A bad entry in delays is reported with its index."""
    text = '[retry.code_analysis]\nbackoff_type = "custom"\ndelays = ["10s", "2d"]\n'
    assert error(text) == (
        f"{F}: retry.code_analysis.delays[1]: duration '2d' uses unit 'd', which Argo's Go "
        "parser does not accept (use 24h per day, e.g. '48h') (got '2d'; expected a Go duration "
        "such as '30s' or '1h30m')"
    )


def test_key_of_another_backoff_type_is_an_error() -> None:
    """increment belongs to linear backoff; with exponential it is refused, not ignored."""
    assert error('[retry.repository_clone]\nincrement = "30s"\n') == (
        f"{F}: retry.repository_clone.increment: 'increment' does not apply to backoff_type "
        "'exponential' (it is a linear key) (got '30s'; expected one of the keys exponential "
        "backoff takes: max_attempts, backoff_type, base_duration, factor, max_duration, "
        "jitter, timeout, budget, retry_on)"
    )


def test_jitter_with_linear_is_an_error() -> None:
    """Only exponential backoff is jittered."""
    assert error('[retry.test_execution]\njitter = "full"\n') == (
        f"{F}: retry.test_execution.jitter: 'jitter' does not apply to backoff_type 'linear' "
        "(it is an exponential key) (got 'full'; expected one of the keys linear backoff takes: "
        "max_attempts, backoff_type, base_duration, max_duration, increment, timeout, budget, "
        "retry_on)"
    )


def test_factor_with_fixed_is_an_error() -> None:
    """The stage default decides the type when the table does not: fixed takes no factor."""
    assert error("[retry.code_analysis]\nfactor = 3\n") == (
        f"{F}: retry.code_analysis.factor: 'factor' does not apply to backoff_type 'fixed' (it "
        "is an exponential key) (got 3; expected one of the keys fixed backoff takes: "
        "max_attempts, backoff_type, base_duration, timeout, budget, retry_on)"
    )


def test_bad_jitter_value_is_refused() -> None:
    """jitter names one of the four AWS strategies."""
    assert error('[retry.repository_clone]\njitter = "random"\n') == (
        f"{F}: retry.repository_clone.jitter: unknown jitter (got 'random'; expected one of "
        "'none', 'full', 'equal', 'decorrelated')"
    )


def test_bad_backoff_type_is_refused() -> None:
    """backoff_type names one of the four kinds."""
    assert error('[retry.repository_clone]\nbackoff_type = "exponentail"\n') == (
        f"{F}: retry.repository_clone.backoff_type: unknown backoff_type (got 'exponentail'; "
        "expected one of 'exponential', 'linear', 'fixed', 'custom')"
    )


def test_bad_retry_on_is_refused() -> None:
    """retry_on names one of the RetryOn values."""
    assert error('[retry.pr_operations]\nretry_on = "always"\n') == (
        f"{F}: retry.pr_operations.retry_on: unknown retry_on (got 'always'; expected one of "
        "'any', 'failed', 'errored', 'transient', 'safe')"
    )


def test_schedule_longer_than_its_budget_is_refused() -> None:
    """Three 10-minute attempts plus waits cannot fit a 30-minute budget."""
    text = '[retry.repository_clone]\ntimeout = "10m"\nbudget = "30m"\n'
    assert error(text) == (
        f"{F}: retry.repository_clone.budget: schedule longer than its budget: the retry "
        "schedule needs up to 31m30s (3 attempts x 10m + waits 1m30s) but the stage budget is "
        "30m; lower max_attempts or the attempt timeout, or raise the budget (got '30m'; "
        "expected a budget of at least 31m30s)"
    )


def test_waits_alone_longer_than_the_budget_are_refused() -> None:
    """Even with unbounded attempts, the waits must fit the budget."""
    text = '[retry.code_analysis]\nmax_attempts = 3\nbase_duration = "10m"\nbudget = "15m"\n'
    assert error(text) == (
        f"{F}: retry.code_analysis.budget: schedule longer than its budget: the waits alone "
        "take 20m (10m, 10m) but the stage budget is 15m; lower max_attempts or the delays, or "
        "raise the budget (got '15m'; expected a budget of at least 20m)"
    )


def test_schedule_check_blames_the_key_the_file_changed() -> None:
    """With the budget from the default, raising max_attempts is what broke the fit."""
    stages = {"clone": Retry(2, Fixed("1m"), attempt_timeout="5m", budget="12m")}
    assert error("[retry.clone]\nmax_attempts = 3\n", stages=stages) == (
        f"{F}: retry.clone.max_attempts: schedule longer than its budget: the retry schedule "
        "needs up to 17m (3 attempts x 5m + waits 2m) but the stage budget is 12m; lower "
        "max_attempts or the attempt timeout, or raise the budget (got 3; expected a budget of "
        "at least 17m)"
    )


def test_cap_below_base_is_refused() -> None:
    """max_duration caps each delay, so it cannot be below the first one."""
    assert error('[retry.repository_clone]\nmax_duration = "10s"\n') == (
        f"{F}: retry.repository_clone.max_duration: max_duration 10s (the cap on each delay) is "
        "below base_duration 30s (got '10s'; expected max_duration >= base_duration)"
    )


def test_bad_quantity_is_refused() -> None:
    """A resource value must be a Kubernetes quantity."""
    assert error('[resources.code_analysis]\ncpu_limit = "two"\n') == (
        f"{F}: resources.code_analysis.cpu_limit: not a Kubernetes quantity (got 'two'; "
        "expected a CPU quantity such as '200m', '0.5' or '2')"
    )


def test_negative_quantity_is_refused() -> None:
    """Requests and limits are never negative."""
    assert error('[resources.code_analysis]\nmemory_limit = "-1Gi"\n') == (
        f"{F}: resources.code_analysis.memory_limit: a quantity must not be negative (got "
        "'-1Gi'; expected a byte quantity such as '512Mi' or '2Gi')"
    )


def test_request_above_limit_is_refused() -> None:
    """Kubernetes rejects a request above its limit."""
    text = '[resources.code_analysis]\ncpu_request = "2"\ncpu_limit = "1"\n'
    assert error(text) == (
        f"{F}: resources.code_analysis.cpu_request: cpu_request '2' exceeds cpu_limit '1' "
        "(Kubernetes rejects a request above its limit) (got '2'; expected cpu_request <= "
        "cpu_limit)"
    )


def test_memory_in_milli_units_gets_a_mebibyte_hint() -> None:
    """'512m' is 0.512 bytes: almost certainly meant as 512Mi."""
    assert error('[resources.code_analysis]\nmemory_request = "512m"\n') == (
        f"{F}: resources.code_analysis.memory_request: memory_request '512m' is 0.512 bytes; "
        "did you mean 512Mi? ('m' is milli, 'Mi' is mebibytes) (got '512m'; expected a byte "
        "quantity such as '512Mi' or '2Gi')"
    )


def test_unknown_stage_is_refused_with_a_suggestion() -> None:
    """A table for a stage the pipeline does not have is a typo, not a no-op."""
    assert error("[retry.repository_clon]\nmax_attempts = 2\n") == (
        f"{F}: retry.repository_clon: unknown stage 'repository_clon'; did you mean "
        "'repository_clone'? (expected one of code_analysis, coverage, pr_operations, "
        "repository_clone, test_execution)"
    )


def test_unknown_env_lists_the_defined_ones() -> None:
    """--env must name an [env.NAME] table of the file."""
    text = "[env.production.retry.coverage]\nmax_attempts = 3\n[env.staging]\n"
    assert error(text, env="prod") == (
        f"{F}: env: unknown environment 'prod' (expected one of production, staging)"
    )


def test_unknown_env_when_none_are_defined() -> None:
    """Without any [env.*] table, the message says so."""
    assert error("", env="production") == (
        f"{F}: env: unknown environment 'production' (expected no environments are defined)"
    )


def test_problem_inside_an_overlay_is_reported_at_its_real_path() -> None:
    """Keys in [env.NAME] are named with their env prefix."""
    text = "[env.production.retry.repository_clone]\nfactor = 1.5\n"
    assert error(text, env="production") == (
        f"{F}: env.production.retry.repository_clone.factor: must be an integer, not a float "
        "(Argo parses factor with strconv.Atoi, so 1.5 fails at run time) (got 1.5; expected "
        "an integer >= 1, e.g. 2)"
    )


def test_unknown_key_inside_an_overlay_gets_a_suggestion() -> None:
    """Overlay tables have the root's shape, so a typo there is caught the same way."""
    text = "[env.staging.retry.coverage]\nmax_atempts = 3\n"
    assert error(text) == (
        f"{F}: env.staging.retry.coverage.max_atempts: unknown key 'max_atempts'; did you mean "
        "'max_attempts'? (expected one of max_attempts, backoff_type, base_duration, factor, "
        "max_duration, jitter, increment, delays, timeout, budget, retry_on)"
    )


def test_cross_key_problem_from_an_overlay_names_the_overlay_key() -> None:
    """A merged table's problem points at the key as written in the overlay."""
    text = (
        '[retry.code_analysis]\nbackoff_type = "custom"\nmax_attempts = 2\ndelays = ["1m"]\n'
        "[env.production.retry.code_analysis]\nmax_attempts = 4\n"
    )
    assert error(text, env="production") == (
        f"{F}: env.production.retry.code_analysis.max_attempts: custom backoff lists 1 delay "
        "but max_attempts = 4 makes 3 retries, one delay each (got 4; expected exactly "
        "max_attempts - 1 = 3 delays)"
    )


def test_toml_syntax_error_reports_line_and_column() -> None:
    """tomllib's position becomes file:line:column."""
    assert error("[retry.coverage]\nmax_attempts = \n") == (
        f"{F}:2:16: invalid TOML: Invalid value"
    )


def test_duplicate_key_is_a_toml_error_with_a_hint() -> None:
    """TOML forbids setting a key twice; the message says that is what happened."""
    assert error("[retry.coverage]\nmax_attempts = 2\nmax_attempts = 3\n") == (
        f"{F}:3:17: invalid TOML: Cannot overwrite a value (is a key set twice?)"
    )


def test_value_where_a_table_belongs_is_refused() -> None:
    """retry.<stage> must be a table of keys."""
    assert error("[retry]\ncoverage = 3\n") == (
        f"{F}: retry.coverage: must be a table, not an integer (got 3; expected a table)"
    )


def test_bad_workflow_name_is_refused() -> None:
    """The WorkflowTemplate name must be a DNS-1123 label."""
    assert error('[pipeline]\nname = "Resilient_Pipeline"\n') == (
        f"{F}: pipeline.name: is not a valid name (got 'Resilient_Pipeline'; expected a "
        "DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter "
        "or digit, at most 63 characters)"
    )


def test_bad_pod_gc_strategy_is_refused() -> None:
    """pod_gc is one of Argo's podGC strategies."""
    assert error('[pipeline]\npod_gc = "Always"\n') == (
        f"{F}: pipeline.pod_gc: unknown pod_gc strategy (got 'Always'; expected one of '', "
        "'OnPodCompletion', 'OnPodSuccess', 'OnWorkflowCompletion', 'OnWorkflowSuccess')"
    )


def test_approval_timeout_must_end_before_the_workflow_deadline() -> None:
    """Argo fails a suspended gate at the workflow deadline: the default would never apply."""
    assert error('[pipeline]\ndeadline = "2h"\napproval_timeout = "4h"\n') == (
        f"{F}: pipeline.approval_timeout: approval_timeout 4h is not shorter than the workflow "
        "deadline 2h: Argo fails a suspended gate at the deadline, so the approval_default "
        "would never apply (got '4h'; expected approval_timeout < deadline (2h))"
    )


def test_several_problems_are_reported_together_one_per_line() -> None:
    """Every problem in the file shows up in one pass, in file order per section."""
    text = (
        "[pipeline]\n"
        'deadline = "1d"\n'
        "[retry.repository_clone]\n"
        "factor = 1.5\n"
        "max_attemps = 3\n"
        "[retry.coverage]\n"
        'timeout = "10m"\nbudget = "15m"\n'
        "[resources.test_execution]\n"
        'memory_request = "512m"\n'
    )
    assert error(text).splitlines() == [
        f"{F}: pipeline.deadline: duration '1d' uses unit 'd', which Argo's Go parser does not "
        "accept (use 24h per day, e.g. '24h') (got '1d'; expected a Go duration such as '30s' "
        "or '1h30m')",
        f"{F}: retry.repository_clone.factor: must be an integer, not a float (Argo parses "
        "factor with strconv.Atoi, so 1.5 fails at run time) (got 1.5; expected an integer "
        ">= 1, e.g. 2)",
        f"{F}: retry.repository_clone.max_attemps: unknown key 'max_attemps'; did you mean "
        "'max_attempts'? (expected one of max_attempts, backoff_type, base_duration, factor, "
        "max_duration, jitter, increment, delays, timeout, budget, retry_on)",
        f"{F}: retry.coverage.budget: schedule longer than its budget: the retry schedule needs "
        "up to 20m30s (2 attempts x 10m + waits 30s) but the stage budget is 15m; lower "
        "max_attempts or the attempt timeout, or raise the budget (got '15m'; expected a budget "
        "of at least 20m30s)",
        f"{F}: resources.test_execution.memory_request: memory_request '512m' is 0.512 bytes; "
        "did you mean 512Mi? ('m' is milli, 'Mi' is mebibytes) (got '512m'; expected a byte "
        "quantity such as '512Mi' or '2Gi')",
    ]


def test_missing_file_is_one_line() -> None:
    """A path that does not exist is a ConfigError, not an OSError traceback."""
    with pytest.raises(ConfigError) as caught:
        load_config("does/not/exist.toml")
    assert str(caught.value) == (
        "does/not/exist.toml: cannot read the config file: No such file or directory"
    )


def test_table_without_a_default_must_name_its_backoff() -> None:
    """retry_from_table with no base needs max_attempts, backoff_type and the type's key."""
    with pytest.raises(ConfigError) as caught:
        retry_from_table({"backoff_type": "linear"}, base=None, where="retry.x", file=F)
    assert str(caught.value).splitlines() == [
        f"{F}: retry.x.max_attempts: missing key 'max_attempts' (the stage has no default to "
        "inherit it from) (expected an integer >= 1 counting every attempt, e.g. 3)",
        f"{F}: retry.x.increment: missing key 'increment': linear backoff needs it (expected a "
        "Go duration such as '30s')",
    ]
