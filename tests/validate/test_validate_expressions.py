"""The lexers behind the depends, when-quoting and expression rules, on their own: what each
language accepts (no false positives) and the exact problem it reports for what Argo rejects."""

from __future__ import annotations

import pytest

from resilient_templates.validate.expressions import Dependency, expr_problem, parse_depends, when_problem

RETRY = {"lastRetry": frozenset({"exitCode", "status", "duration", "message"}), "retries": None}
HOOK = {"workflow": None, "steps": None, "tasks": None, "inputs": None}


@pytest.mark.parametrize(
    "depends",
    [
        "build",
        "build && test-1",
        "build.Failed || build.Errored",
        "(lint || build.AnySucceeded) && !deploy.Succeeded",
        "!(a.Skipped || a.Omitted) && b.Daemoned && c.AllFailed",
        "  spaced  &&\n  multi-line  ",
    ],
)
def test_depends_expressions_argo_accepts_parse_cleanly(depends: str) -> None:
    """Task names, every .Result, &&, ||, ! and parentheses parse without a problem."""
    assert parse_depends(depends)[1] is None


def test_depends_returns_every_task_reference_with_its_result() -> None:
    """Each task[.Result] is returned in order, with None where no result is given."""
    refs, _ = parse_depends("(a || b.AnySucceeded) && !c.Succeeded")
    assert refs == [Dependency("a", None), Dependency("b", "AnySucceeded"), Dependency("c", "Succeeded")]


@pytest.mark.parametrize(
    ("depends", "problem"),
    [
        ("(a || b", "unbalanced parentheses: '(' without ')'"),
        ("a || b)", "unbalanced parentheses: ')' without '('"),
        ("a b", '"b" follows another operand without && or ||'),
        ("a &&", "the expression ends where a task name is expected"),
        ("&& a", 'unexpected "&&"'),
        ("a & b", 'unexpected "&": depends takes task names, .Result, &&, ||, ! and ()'),
        ("", "empty expression"),
    ],
)
def test_malformed_depends_names_its_syntax_problem(depends: str, problem: str) -> None:
    """Each syntax error is reported with what is wrong and where."""
    assert parse_depends(depends)[1] == problem


@pytest.mark.parametrize(
    "when",
    [
        "{{steps.coin.outputs.result}} == heads",
        "{{workflow.status}} != Succeeded",
        "'{{steps.a.outputs.result}}' == 'approve-it'",
        "( {{tasks.a.outputs.result}} == x &&\n  {{tasks.b.outputs.result}} == y ) || false",
        "{{steps.a.outputs.result}} =~ 'ap+rove-.*'",
        "{{steps.count.outputs.result}} < {{inputs.parameters.limit}}",
        "{{item.value}} >= -1.5",
        "{{= inputs.parameters['go-ahead'] == 'yes-please' }}",
        "true",
        "{{steps.a.outputs.result}} == café",
        "{{steps.a.outputs.result}} in ('x', 'y-z') && {{item}} * 2 > 3",
    ],
)
def test_when_expressions_govaluate_reads_as_meant_pass(when: str) -> None:
    """Plain words, numbers, quoted values, regexes and expression tags are left alone."""
    assert when_problem(when) is None


@pytest.mark.parametrize(
    ("when", "problem", "quoted"),
    [
        (
            "{{steps.a.outputs.result}} == approve-it",
            'the unquoted word "approve-it" contains "-", which govaluate does not read as one value',
            "'{{steps.a.outputs.result}}' == 'approve-it'",
        ),
        (
            "{{steps.a.outputs.result}} == 2024-01-01",
            'the unquoted word "2024-01-01" contains "-", which govaluate does not read as one value',
            "'{{steps.a.outputs.result}}' == '2024-01-01'",
        ),
        (
            "{{inputs.parameters.host}} == example.com",
            'the unquoted word "example.com" contains ".", which govaluate does not read as one value',
            "'{{inputs.parameters.host}}' == 'example.com'",
        ),
        (
            "{{steps.a.outputs.result}} != 'not ready'",
            "an unquoted {{...}} is compared with 'not ready': a value equal to it is not one bare word, so the "
            "comparison errors exactly when it would match",
            "'{{steps.a.outputs.result}}' != 'not ready'",
        ),
        (
            "v{{inputs.parameters.major}} == v2",
            "a {{...}} value is joined to other text without quotes",
            "'v{{inputs.parameters.major}}' == v2",
        ),
    ],
)
def test_when_operands_govaluate_misreads_are_reported_with_the_quoted_fix(
    when: str, problem: str, quoted: str
) -> None:
    """The problem names the offending operand; the fix single-quotes both sides."""
    assert when_problem(when) == (problem, quoted)


@pytest.mark.parametrize(
    "expression",
    [
        'lastRetry.status == "Error" || asInt(lastRetry.exitCode) == 75',
        "asFloat(lastRetry.duration) < 120.5 && lastRetry.message matches 'OOMKilled|deleted'",
        "{{inputs.parameters.safe}} == true || int(retries) < 3",
        "sprig.contains('timeout', lower(lastRetry.message)) and not (lastRetry.status in ['Failed'])",
        "let code = asInt(lastRetry.exitCode); code >= 75 && code <= 79",
        "filter([1, 2, 3], {# > 1})[0] == 2 && {a: 1}.a == 1 && lastRetry?.exitCode != nil",
        "`raw \\string` != 'it\\'s' ? true : false",
    ],
)
def test_retry_expressions_over_the_retry_scope_pass(expression: str) -> None:
    """The retry scope, tags, builtins, Argo's helpers, closures, maps and let are accepted."""
    assert expr_problem(expression, RETRY) is None


@pytest.mark.parametrize(
    "expression",
    [
        'steps["step-1"].status == "Running"',
        "steps.step2.status == 'Succeeded' && workflow.status == 'Running'",
        "tasks['a'].outputs.parameters['x'] ?? 'fallback' == inputs.parameters.y",
    ],
)
def test_hook_expressions_over_the_node_scope_pass(expression: str) -> None:
    """Step/task hooks may read workflow, steps, tasks and inputs."""
    assert expr_problem(expression, HOOK) is None


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("lastRetry.status == 'Error", ("unterminated string: the ' at column 21 is never closed", False)),
        ('lastRetry.status == "Error', ('unterminated string: the " at column 21 is never closed', False)),
        ("(asInt(lastRetry.exitCode) > 1", ("unbalanced brackets: the ( at column 1 is never closed", False)),
        ("asInt(lastRetry.exitCode)) > 1", ("unbalanced brackets: the ) at column 26 closes nothing open", False)),
        ("[1, 2) == nil", ("unbalanced brackets: the ) at column 6 closes nothing open", False)),
        ("retry < 3", ('unknown name "retry"', False)),
        ("inputs.parameters.x == 'y'", ('unknown name "inputs"', False)),
        (
            "lastRetry.exitcode == '75'",
            (
                "reads lastRetry.exitcode, which is always nil (lastRetry has only duration, exitCode, message, "
                "status)",
                True,
            ),
        ),
    ],
)
def test_retry_expression_problems_are_named(expression: str, problem: tuple[str, bool]) -> None:
    """Unbalanced quotes and brackets, unknown names and unknown lastRetry fields are named exactly."""
    assert expr_problem(expression, RETRY) == problem
