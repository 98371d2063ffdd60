"""Evidence combination: category, transient, calibrated confidence, advice and the document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from resilient_templates.policy.taxonomy import Category
from resilient_templates.runtime.analysis import analyze_context, analyze_text, analyze_workflow
from resilient_templates.runtime.analysis.analyzer import (
    MAX_CONFIDENCE,
    Analyzer,
    FailureInput,
    adjust_for_history,
)
from resilient_templates.runtime.analysis.api import analyzer
from resilient_templates.runtime.model import FailureAnalysis, History, WorkflowRef

SAMPLES = yaml.safe_load((Path(__file__).parent / "data" / "signature_samples.yaml").read_text())
NOW = 1764355200.0  # 2025-11-28T18:40:00Z
WF = WorkflowRef(name="ci-main", namespace="ci", uid="5f0c-uid")


def _verdict(text: str = "", **fields):  # type: ignore[no-untyped-def]
    verdict, _h, _n = analyzer().classify(FailureInput(log=text.encode(), **fields))
    return verdict


def _lines_of(category: Category) -> list[str]:
    kb = analyzer().kb
    return [line for name, e in SAMPLES.items() if kb.get(name).category is category
            and kb.get(name).precision >= 0.5 for line in e.get("match", [])]  # fmt: skip


# ------------------------------------------------------------------ confidence behaviour


def test_agreeing_evidence_raises_confidence():
    """A node message plus the matching exit code is more certain than the message alone."""
    alone = _verdict(node_message="main: OOMKilled (exit code 137)", exit_code=None)
    both = _verdict(node_message="main: OOMKilled", exit_code=137)
    assert alone.signature.name == both.signature.name == "oom-killed"
    assert both.confidence > _verdict(node_message="main: OOMKilled").confidence


def test_a_rival_explanation_lowers_confidence():
    """A credible line of another category makes the same answer less certain."""
    clean = _verdict("OSError: [Errno 28] No space left on device\n")
    rival = _verdict("dial tcp 10.0.0.1:5432: connect: connection refused\n"
                     "OSError: [Errno 28] No space left on device\n")  # fmt: skip
    assert clean.signature.name == rival.signature.name == "disk-full"
    assert rival.confidence < clean.confidence


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_lines_of(Category.CODE_QUALITY)), min_size=1, max_size=4),
       st.sampled_from(_lines_of(Category.CODE_QUALITY)))  # fmt: skip
def test_adding_a_line_of_the_winning_category_never_lowers_confidence(lines, extra):
    """Monotonic: more evidence for the answer given cannot make it less certain."""
    rival = "dial tcp 10.1.0.215:6443: i/o timeout\n"
    before = _verdict(rival + "\n".join(lines) + "\n")
    after = _verdict(rival + "\n".join([*lines, extra]) + "\n")
    if before.category is Category.CODE_QUALITY:
        assert after.category is Category.CODE_QUALITY
        assert after.confidence >= before.confidence - 1e-9


def test_confidence_is_a_probability():
    """Confidence stays within [0, 0.99] whatever is combined."""
    text = "\n".join(line for e in SAMPLES.values() for line in e.get("match", []))
    verdict = _verdict(text, exit_code=137, pod_reason="OOMKilled", node_message="pod deleted")
    assert 0.0 <= verdict.confidence <= MAX_CONFIDENCE


def test_below_the_threshold_the_answer_is_unknown_with_the_guess_kept():
    """A weak match (ImagePullBackOff with no cause shown) abstains: unknown, guess kept."""
    verdict = _verdict('Normal  BackOff  12s (x2 over 38s)  kubelet  Back-off pulling image "app:1.2"\n')
    assert verdict.category is Category.UNKNOWN and verdict.signature is None
    assert verdict.guess.name == "image-pull-backoff"
    assert verdict.guess_confidence < 0.5


def test_a_crash_loop_with_no_cause_shown_is_a_low_confidence_infrastructure_answer():
    """LABELLING.md: CrashLoopBackOff with no visible inner cause is infrastructure (not retried)."""
    verdict = _verdict("postgres-0   0/1   CrashLoopBackOff   5   3m\n")
    assert verdict.category is Category.INFRASTRUCTURE and not verdict.transient
    assert 0.5 <= verdict.confidence < 0.8


@pytest.mark.parametrize(("threshold", "known"), [(0.0, True), (0.4, True), (0.5, False), (1.0, False)])
def test_the_threshold_decides_between_an_answer_and_unknown(threshold, known):
    """The same evidence is answered or not depending on the configured threshold."""
    an = Analyzer(threshold=threshold)
    verdict, _h, _n = an.classify(FailureInput(log=b'Back-off pulling image "app:1.2"\n'))
    assert (verdict.category is not Category.UNKNOWN) is known


def test_no_evidence_is_unknown_with_zero_confidence():
    """Nothing recognisable: unknown, confidence 0."""
    verdict = _verdict("Building project...\nError: Process completed with exit code 1.\n", exit_code=1)
    assert verdict.category is Category.UNKNOWN and verdict.confidence == 0.0 and verdict.guess is None


# ------------------------------------------------------------------ choosing the cause


def test_later_lines_weigh_more():
    """Of two comparable causes far apart in the log, the later one is the answer."""
    text = ("OSError: [Errno 28] No space left on device\n" + "noise line\n" * 3000
            + "x509: certificate signed by unknown authority\n")  # fmt: skip
    assert _verdict(text).guess.name == "tls-certificate-untrusted"


def test_in_a_near_tie_the_more_specific_signature_wins():
    """Adjacent lines of two causes: the higher-priority signature is chosen."""
    text = "npm ERR! code E404\nError: connect ECONNREFUSED 127.0.0.1:4873\n"
    assert _verdict(text).guess.name == "package-not-found"


def test_consequences_are_explained_by_their_cause():
    """A 403 next to a GitHub rate limit, and ImagePullBackOff after toomanyrequests."""
    assert _verdict("HTTP/1.1 403 Forbidden\n{\"message\":\"API rate limit exceeded for user ID 1.\"}\n"
                    ).signature.name == "github-rate-limit"  # fmt: skip
    verdict = _verdict("Failed to pull image \"x\": toomanyrequests: You have reached your pull rate limit.\n"
                       "Error: ImagePullBackOff\n")  # fmt: skip
    assert verdict.signature.name == "docker-hub-rate-limit"
    assert verdict.category is Category.EXTERNAL_DEPENDENCY


PYTEST_REFUSED = (
    "tests/test_api.py::test_list_users FAILED\n"
    "E   psycopg2.OperationalError: could not connect to server: Connection refused\n"
    "E   \tIs the server running on host \"db\" (10.0.3.4) and accepting\n"
    "FAILED tests/test_api.py::test_list_users - psycopg2.OperationalError: could not connect\n"
    "========================= 1 failed, 41 passed in 2.20s =========================\n"
)


def test_a_test_failure_caused_by_a_visible_lower_level_failure_is_labelled_by_the_cause():
    """Root cause over symptom: tests that failed because the database refused connections."""
    verdict = _verdict(PYTEST_REFUSED)
    assert verdict.category is Category.INFRASTRUCTURE and verdict.transient
    assert verdict.signature.name == "database-unreachable"


def test_an_explained_symptom_leaves_a_doubt():
    """The cause alone is more certain than the cause behind a failed test run."""
    alone = _verdict("psycopg2.OperationalError: could not connect to server: Connection refused\n")
    assert _verdict(PYTEST_REFUSED).confidence < alone.confidence


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("  ● Test suite failed to run\n    Jest worker ran out of memory and crashed\n"
         "Test Suites: 1 failed, 40 passed, 41 total\n", Category.RESOURCE_EXHAUSTION),
        ("--- FAIL: TestFetch (30.00s)\n    fetch_test.go:22: Get \"https://api.example.com\": dial tcp:"
         " lookup api.example.com on 10.96.0.10:53: no such host\nFAIL\texample.com/fetch\t30.1s\n",
         Category.INFRASTRUCTURE),
        ("Traceback (most recent call last):\n  File \"sync.py\", line 9, in <module>\n"
         "requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url:"
         " https://api.vendor.example/v1/items\n", Category.EXTERNAL_DEPENDENCY),
    ],
)  # fmt: skip
def test_resource_network_and_outage_causes_explain_failed_runs(text, category):
    """An OOM, a DNS failure or an outage behind a failed run or traceback decides the category."""
    assert _verdict(text).category is category


def test_a_compile_error_keeps_the_build_failure_as_its_own_evidence():
    """A real compiler error is code: a retried network warning earlier does not explain it away."""
    text = ("warning: spurious network error (2 tries remaining): [7] Couldn't connect to server\n"
            "error[E0425]: cannot find value `state` in this scope\n"
            "error: could not compile `koans` due to previous error\n")  # fmt: skip
    verdict = _verdict(text)
    assert verdict.category is Category.CODE_QUALITY and verdict.signature.name == "rust-compile-error"


def test_a_weak_cause_does_not_explain_a_failed_test_away():
    """'Permission denied' somewhere in a failed pytest run is not enough to call it configuration."""
    text = ("chmod: /tmp/cache: Permission denied\n"
            "FAILED tests/test_math.py::test_add - assert 3 == 4\n"
            "========================= 1 failed, 9 passed in 0.20s =========================\n")  # fmt: skip
    assert _verdict(text).category is Category.CODE_QUALITY


def test_a_retried_and_recovered_warning_is_not_the_cause():
    """pip retried a read timeout, then the tests failed on an assertion: code, not network."""
    text = ("WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after"
            " connection broken by 'ReadTimeoutError(\"HTTPSConnectionPool(host='pypi.org', port=443):"
            " Read timed out. (read timeout=15)\")': /simple/flask/\n"
            "Successfully installed flask-3.0.0\n"
            "FAILED tests/test_app.py::test_index - AssertionError: assert 404 == 200\n"
            "========================= 1 failed, 9 passed in 0.31s =========================\n")  # fmt: skip
    assert _verdict(text).category is Category.CODE_QUALITY


@pytest.mark.parametrize(
    ("text", "signature"),
    [
        ("2024-03-01T10:00:01.1234567Z FAILED tests/test_app.py::test_index - assert 404 == 200\n",
         "pytest-failure"),
        ("#10 79.31 npm ERR! code E404\n#10 79.31 npm ERR! 404 Not Found - GET https://registry.npmjs.org/x\n",
         "package-not-found"),
        ("[08:04:29]\terror[E0425]: cannot find value `state` in this scope\n", "rust-compile-error"),
    ],
)  # fmt: skip
def test_collector_prefixes_do_not_hide_line_anchored_messages(text, signature):
    """GitHub Actions timestamps, BuildKit steps and TeamCity times are stripped before matching."""
    assert _verdict(text).signature.name == signature


# ------------------------------------------------------------------ reached or not (the lead's ruling)


@pytest.mark.parametrize(
    "line",
    [
        "fatal: the remote end hung up unexpectedly",
        "fatal: early EOF",
        "error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502",
        "error: RPC failed; curl 18 transfer closed with outstanding read data remaining",
        "pip._vendor.urllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool(host='files.pythonhosted.org',"
        " port=443): Read timed out.",
        'error An unexpected error occurred: "https://registry.yarnpkg.com/rxjs/-/rxjs-5.5.12.tgz:'
        ' ESOCKETTIMEDOUT".',
        "npm ERR! network read ECONNRESET",
        "  [56] Failure when receiving data from the peer",
    ],
)  # fmt: skip
def test_a_remote_that_was_reached_and_then_failed_is_an_external_dependency(line):
    """Once the remote answered, a broken exchange is the remote's failure (transient)."""
    verdict = _verdict(line + "\n")
    assert verdict.category is Category.EXTERNAL_DEPENDENCY and verdict.transient


@pytest.mark.parametrize(
    "line",
    [
        "fatal: unable to access 'https://github.com/o/r.git/': Could not resolve host: github.com",
        "fatal: unable to access 'https://github.com/o/r.git/': Failed to connect to github.com port 443:"
        " Connection timed out",
        "ssh: connect to host github.com port 22: Connection refused",
        "npm ERR! network request to https://registry.npmjs.org/x failed, reason: connect ETIMEDOUT"
        " 104.16.18.35:443",
        "ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.org', port=443):"
        " Max retries exceeded with url: /simple/x/ (Caused by NewConnectionError('<conn>: Failed to"
        " establish a new connection: [Errno 111] Connection refused'))",
        'Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: TLS handshake timeout',
        "  [7] Couldn't connect to server (Failed to connect to index.crates.io port 443)",
    ],
)  # fmt: skip
def test_failing_to_reach_a_remote_is_infrastructure(line):
    """DNS, refused, connect timeouts and TLS handshakes never reached the service (transient)."""
    verdict = _verdict(line + "\n")
    assert verdict.category is Category.INFRASTRUCTURE and verdict.transient


def test_credentials_are_configuration_even_next_to_rate_limit_headers():
    """A 401 Bad credentials that prints x-ratelimit-remaining: 0 is a credentials problem."""
    text = ("< HTTP/2 401\n< x-ratelimit-limit: 60\n< x-ratelimit-remaining: 0\n"
            '{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}\n')  # fmt: skip
    verdict = _verdict(text)
    assert verdict.category is Category.CONFIGURATION and not verdict.transient


def test_a_403_with_the_rate_limit_used_up_is_a_rate_limit():
    """403 plus x-ratelimit-remaining: 0 (no other message) is GitHub's primary rate limit."""
    text = "< HTTP/2 403\n< x-ratelimit-limit: 5000\n< x-ratelimit-remaining: 0\n< x-ratelimit-reset: 1764357000\n"
    verdict = _verdict(text)
    assert verdict.category is Category.EXTERNAL_DEPENDENCY
    assert verdict.signature.name == "github-rate-limit-header"


def test_an_exit_code_alone_does_not_explain_away_a_log_line():
    """Exit 137 (listed by oom-killed) does not suppress the 'Killed' line it would explain."""
    verdict = _verdict("line 10:    93 Killed                  python train.py\n", exit_code=137)
    assert verdict.category is Category.RESOURCE_EXHAUSTION
    assert verdict.signature.name == "sigkill-killed"


def test_how_the_pod_ended_outweighs_earlier_log_lines():
    """OOMKilled in the node message stays confident despite test failures logged before it."""
    verdict = _verdict("FAILED tests/test_model.py::test_load_fixture - FileNotFoundError\n",
                       node_message="main: OOMKilled (exit code 137)")  # fmt: skip
    assert verdict.signature.name == "oom-killed" and verdict.confidence >= 0.7


def test_the_wrapper_hint_names_the_signature():
    """A termination hint with signature= is evidence for that signature."""
    verdict = _verdict(node_message="main: Error (exit code 1): rt:transient "
                       "category=external_dependency signature=github-rate-limit exit=1")  # fmt: skip
    assert verdict.signature.name == "github-rate-limit" and verdict.transient


def test_a_stage_that_declares_itself_transient_is_retried():
    """rt:transient without a signature (exit 75): transient, retried, even if the cause is unknown."""
    analysis = analyze_text("", node_message="main: Error (exit code 75): rt:transient exit=75", now=NOW)
    assert analysis.root_cause.transient
    assert analysis.retry_advice.retry and "declared" in analysis.retry_advice.reason


# ------------------------------------------------------------------ retry advice


def test_a_github_rate_limit_waits_until_the_reset_time_in_the_log():
    """x-ratelimit-reset gives the delay: reset minus now."""
    log = "< x-ratelimit-remaining: 0\n< x-ratelimit-reset: 1764357000\n"
    analysis = analyze_text(log, stage="clone", workflow=WF, now=NOW)
    assert analysis.root_cause.signature == "github-rate-limit-header"
    assert analysis.retry_advice.retry and analysis.retry_advice.delay_seconds == 1800
    assert any("2025-11-28T19:10:00Z" in r.action for r in analysis.recommendations)


def test_a_rate_limit_message_with_a_reset_duration_sets_the_delay():
    """gh's '[rate reset in 1m01s]' is read as 61 seconds."""
    analysis = analyze_text("GET https://api.github.com/x: 403 API rate limit exceeded for user ID 1. "
                            "[rate reset in 1m01s]\n", now=NOW)  # fmt: skip
    assert analysis.retry_advice.delay_seconds == 61


def test_a_rate_limit_without_a_reset_time_uses_the_default_delay():
    """No reset in the log: the signature's default delay (15 minutes)."""
    analysis = analyze_text('{"message":"API rate limit exceeded for user ID 1."}\n', now=NOW)
    assert analysis.retry_advice.delay_seconds == 900


def test_a_permanent_failure_is_not_retried():
    """Compile errors are permanent: no retry."""
    analysis = analyze_text("error[E0425]: cannot find value `x` in this scope\n", now=NOW)
    assert not analysis.root_cause.transient and not analysis.retry_advice.retry


def test_an_exhausted_retry_budget_stops_retries():
    """Transient, but the policy's attempts are used up: no retry, budget 0."""
    analysis = analyze_text("dial tcp 10.0.0.1:443: i/o timeout\n", attempts=3, max_attempts=3, now=NOW)
    assert analysis.impact.retry_budget_left == 0 and not analysis.retry_advice.retry
    analysis = analyze_text("dial tcp 10.0.0.1:443: i/o timeout\n", attempts=1, max_attempts=3, now=NOW)
    assert analysis.impact.retry_budget_left == 2 and analysis.retry_advice.retry


def test_an_unknown_cause_is_not_retried_automatically():
    """Unknown: no automatic retry."""
    analysis = analyze_text("something odd happened\n", now=NOW)
    assert analysis.root_cause.category is Category.UNKNOWN and not analysis.retry_advice.retry


# ------------------------------------------------------------------ the document


def test_the_failure_id_is_stable_for_workflow_stage_and_attempt():
    """Same uid, stage and attempt: same id; another attempt: another id."""
    a = analyze_context(b'{"attempt": 2, "exit_code": 1}', stage="build", workflow=WF, now=NOW)
    b = analyze_context(b'{"attempt": 2, "exit_code": 137}', stage="build", workflow=WF, now=NOW + 60)
    c = analyze_context(b'{"attempt": 3, "exit_code": 1}', stage="build", workflow=WF, now=NOW)
    assert a.failure_id == b.failure_id != c.failure_id


def test_downstream_stages_are_reported_as_blocked():
    """Stages after the failed one in --stages order are blocked."""
    analysis = analyze_text("No space left on device\n", stage="build",
                            stages=["clone", "build", "test", "deploy"], now=NOW)  # fmt: skip
    assert analysis.impact.blocked_stages == ("test", "deploy")


def test_secrets_never_reach_the_analysis():
    """Tokens and passwords in the log, message and evidence are redacted."""
    token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    log = (f"curl -H 'Authorization: Bearer {token}' https://api.github.com/user\n"
           f"fatal: Authentication failed for 'https://bot:{token}@github.com/org/repo.git/'\n")  # fmt: skip
    analysis = analyze_text(log, node_message=f"main: Error (exit code 1): token={token}", now=NOW)
    document = analysis.to_json()
    assert token not in document
    assert analysis.root_cause.signature == "git-auth-failed"
    assert any("[REDACTED:" in line for line in analysis.root_cause.evidence)


def test_the_document_round_trips_through_json():
    """The FailureAnalysis JSON reads back into an equal object (the notifier's contract)."""
    analysis = analyze_text("Could not resolve host: github.com\n", stage="clone", workflow=WF,
                            exit_code=128, now=NOW)  # fmt: skip
    assert FailureAnalysis.from_json(analysis.to_json()) == analysis
    assert analysis.created_at == "2025-11-28T18:40:00Z"


def test_empty_input_gives_a_degraded_unknown_analysis():
    """No evidence at all: an analysis that says why it is empty."""
    analysis = analyze_text("", now=NOW)
    assert analysis.root_cause.category is Category.UNKNOWN
    assert analysis.degraded == ("no failure evidence given (empty input)",)


def test_only_the_tail_of_a_long_text_is_analysed():
    """A cause before the analysed tail is not seen; one inside it is."""
    text = "No space left on device\n" + "x" * 100 + "\n" + "filler line\n" * 1000
    assert analyze_text(text, tail_bytes=4096, now=NOW).root_cause.category is Category.UNKNOWN
    assert analyze_text(text, now=NOW).root_cause.signature == "disk-full"


def test_history_raises_confidence_by_a_bounded_amount():
    """Seen before and resolved: closer to 1, but never more than 30 % of the gap, never > 0.99."""
    assert adjust_for_history(0.4, History()) == 0.4
    assert adjust_for_history(0.4, History(seen_count=2)) == pytest.approx(0.46)
    assert adjust_for_history(0.4, History(seen_count=100, last_resolution="bumped memory")) == (
        pytest.approx(0.58)
    )
    assert adjust_for_history(0.98, History(seen_count=100, last_resolution="x")) <= MAX_CONFIDENCE


# ------------------------------------------------------------------ whole workflows


def _failures(*entries: dict) -> str:
    return json.dumps(json.dumps(list(entries)))


def test_a_workflow_gives_one_analysis_per_failed_stage():
    """Each failed stage is analysed once, with its attempts and its context."""
    failures = _failures(
        {"displayName": "clone(0)", "message": "main: Error (exit code 128)", "templateName": "clone",
         "phase": "Failed", "finishedAt": "2026-08-21T10:00:00Z"},
        {"displayName": "clone(1)", "message": "main: Error (exit code 128)", "templateName": "clone",
         "phase": "Failed", "finishedAt": "2026-08-21T10:01:00Z"},
        {"displayName": "clone", "message": "No more retries left", "templateName": "clone",
         "phase": "Failed", "finishedAt": "2026-08-21T10:01:00Z"},
    )  # fmt: skip
    contexts = {"clone": b'{"attempt": 2, "exit_code": 128, "log_tail": "fatal: Couldn\'t find remote ref refs/heads/nope\\n"}'}
    analyses = analyze_workflow("Failed", failures, workflow=WF, contexts=contexts,
                                stages=["clone", "build"], now=NOW)  # fmt: skip
    assert len(analyses) == 1
    clone = analyses[0]
    assert clone.stage == "clone" and clone.error.attempts == 2
    assert clone.root_cause.signature == "git-missing-ref"
    assert clone.impact.retry_budget_left == 0 and clone.impact.blocked_stages == ("build",)
    assert clone.workflow.status == "Failed"


def test_a_succeeded_workflow_without_failures_has_nothing_to_analyse():
    """workflow.failures "null" and status Succeeded: no analysis."""
    assert analyze_workflow("Succeeded", '"null"', workflow=WF, now=NOW) == []


def test_a_failed_workflow_with_no_failed_nodes_is_reported_degraded():
    """Failed, yet "null": one degraded analysis saying so."""
    [analysis] = analyze_workflow("Failed", "null", workflow=WF, now=NOW)
    assert "lists no failed node" in analysis.degraded[0]


def test_malformed_failures_still_give_a_degraded_analysis():
    """Unparseable failures JSON: one analysis saying why, not an exception."""
    [analysis] = analyze_workflow("Failed", "[{oops", workflow=WF, now=NOW)
    assert analysis.root_cause.category is Category.UNKNOWN
    assert analysis.degraded[0].startswith("workflow failures: not JSON")


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=300), st.binary(max_size=300))
def test_garbage_inputs_always_give_analyses(failures, context):
    """Random failures strings and contexts never raise: analyses come back, maybe degraded."""
    analyses = analyze_workflow("Failed", failures, workflow=WF, contexts={"x": context}, now=NOW)
    for analysis in analyses:
        assert isinstance(analysis, FailureAnalysis)
    analysis = analyze_context(context, stage="x", workflow=WF, now=NOW)
    assert isinstance(analysis, FailureAnalysis)
