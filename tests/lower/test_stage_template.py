"""A Stage lowers to a container template run through the wrapper, with deadlines and outputs."""

from __future__ import annotations

import pytest
import yaml
from hera.workflows import WorkflowTemplate

from resilient_templates.dsl import Output, Param, SecretEnv, Stage
from resilient_templates.errors import PolicyError
from resilient_templates.lower import stage_template
from resilient_templates.lower.stage import soft_deadline
from resilient_templates.lower.wrapper import wrapper_script
from resilient_templates.policy import Duration, Linear, Resources, Retry

HINTS = [("gh-rate", "external_dependency", True, "rate limit exceeded")]


def build(stage: Stage) -> dict:
    """The template as it appears in a WorkflowTemplate (Hera's public to_dict)."""
    workflow = WorkflowTemplate(name="t", templates=[stage_template(stage, hints=HINTS)])
    return workflow.to_dict()["spec"]["templates"][0]


STAGE = Stage(
    name="unit_tests",
    image="python:3.12-slim",
    command=("pytest", "-q"),
    retry=Retry(3, Linear("30s"), attempt_timeout="10m", budget="40m"),
    resources=Resources(cpu_request="500m", memory_limit="1Gi"),
    inputs=(Param("suite", default="all"),),
    outputs=(Output("report", path="/tmp/report.xml"),),
    env={"SUITE": "{{inputs.parameters.suite}}"},
    secret_env=(SecretEnv("TOKEN", secret="ci", key="token", optional=True),),
)


def test_command_runs_through_the_wrapper_and_args_are_the_stage_command():
    """The wrapper is the container command; the stage's own argv follows as args."""
    t = build(STAGE)
    assert t["container"]["command"] == ["/bin/sh", "-c", wrapper_script(), "rt-wrapper"]
    assert t["container"]["args"] == ["pytest", "-q"]


def test_script_stage_runs_with_sh():
    """A script stage runs as /bin/sh -c SCRIPT under the wrapper."""
    t = build(STAGE.with_(command=(), script="echo hi"))
    assert t["container"]["args"] == ["/bin/sh", "-c", "echo hi"]


def test_deadline_covers_attempt_plus_in_pod_wait():
    """activeDeadlineSeconds = attempt timeout + the longest in-pod wait (30s here)."""
    assert build(STAGE)["activeDeadlineSeconds"] == "630"


def test_wrapper_stops_the_command_before_the_pod_deadline():
    """The soft deadline (and its kill grace) ends before the kubelet's hard kill."""
    env = {e["name"]: e.get("value") for e in build(STAGE)["container"]["env"]}
    assert (env["RT_TIMEOUT"], env["RT_KILL_GRACE"]) == ("540", "10")
    for seconds in (1, 2, 5, 30, 59, 60, 300, 600, 3600, 86400):
        stop, grace = soft_deadline(Duration.parse(seconds))
        assert 1 <= stop and stop + grace <= max(seconds, 2)
        if seconds >= 60:  # room for the kill grace, the 5 s tail collection and pod start-up
            assert seconds - stop >= grace + 20


def test_error_context_output_has_a_default():
    """error-context defaults to '{}' so a pod that died early never breaks output saving."""
    outputs = build(STAGE)["outputs"]["parameters"]
    assert outputs[0]["name"] == "error-context"
    assert outputs[0]["valueFrom"] == {"path": "/tmp/rt/error-context.json", "default": "{}"}
    assert outputs[1]["valueFrom"] == {"path": "/tmp/report.xml", "default": ""}


def test_env_order_and_secret_reference():
    """RT_* wrapper variables first, then the stage's env, then secrets by reference only."""
    env = build(STAGE)["container"]["env"]
    names = [e["name"] for e in env]
    assert names == ["RT_STAGE", "RT_RETRIES", "RT_FLOOR", "RT_SLEEPS", "RT_TIMEOUT",
                     "RT_KILL_GRACE", "RT_MKDIRS", "RT_HINTS", "SUITE", "TOKEN"]  # fmt: skip
    assert env[-1]["valueFrom"] == {"secretKeyRef": {"name": "ci", "key": "token", "optional": True}}
    assert env[6]["value"] == "/tmp"  # the report's directory, created before the command runs
    assert env[7]["value"] == "gh-rate\texternal_dependency\ttrue\trate limit exceeded"


def test_labels_resources_and_workspace():
    """Pods carry managed-by and stage labels, validated resources and the workspace mount."""
    t = build(STAGE)
    assert t["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "resilient-templates",
        "resilient-templates.io/stage": "unit-tests",
    }
    assert t["container"]["resources"] == {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}
    assert t["container"]["volumeMounts"] == [{"name": "workspace", "mountPath": "/workspace"}]


def test_required_input_has_no_default():
    """A Param without default stays required (Hera would otherwise render the string 'null')."""
    t = build(STAGE.with_(inputs=(Param("repo"),)))
    assert t["inputs"]["parameters"] == [{"name": "repo"}]


def test_single_attempt_stage_has_no_retry_variables():
    """Without retries, {{retries}} must not appear (Argo could not resolve it)."""
    text = yaml.safe_dump(build(STAGE.with_(retry=Retry(1))))
    assert "{{retries}}" not in text and "retryStrategy" not in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Bad-Name"}, "must be snake_case"),
        ({"command": (), "script": None}, "exactly one of command or script"),
        ({"env": {"RT_STAGE": "x"}}, "reserved RT_ prefix"),
        ({"outputs": (Output("error-context", path="/x"),)}, "'error-context' is reserved"),
        ({"inputs": (Param("a"), Param("a"))}, "declares input 'a' twice"),
    ],
)
def test_invalid_stages_are_refused(changes, message):
    """Stage mistakes are caught when the value is built, with a message naming the stage."""
    with pytest.raises(PolicyError, match=message):
        STAGE.with_(**changes)
