"""The 222 upstream argo-workflows example files: real Argo YAML written by others.

Argo accepts all of them, so no rule that mirrors Argo may reject any. Two of them do what this
project forbids on purpose (POLICY_RULES): one retries without a limit, one sets a retryStrategy
for every template through templateDefaults; exactly those two findings are expected. Broken on
purpose (declarations renamed), the same examples show the name-checking rules do read them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from resilient_templates.validate import ArgoSchema, Report, validate_documents, validate_paths

EXPECTED_POLICY_FINDINGS = [
    ("retry-container-to-completion.yaml", 0, "spec.templates[0].retryStrategy.limit", "retry-limit"),
    ("template-defaults.yaml", 0, "spec.templateDefaults.retryStrategy", "spec-retry"),
]


def _report(examples_dir: Path, schema: ArgoSchema) -> Report:
    return validate_paths([examples_dir], schema=schema)


def test_all_upstream_examples_pass_every_argo_rule(examples_dir: Path, strict_schema: ArgoSchema) -> None:
    """No schema or semantic rule that mirrors Argo fires on any upstream example."""
    report = _report(examples_dir, strict_schema)
    assert [str(p) for p in report.problems if not p.is_policy] == []


def test_only_the_two_policy_findings_fire_on_upstream_examples(examples_dir: Path, strict_schema: ArgoSchema) -> None:
    """The unlimited retry and the templateDefaults retryStrategy are the only policy findings."""
    report = _report(examples_dir, strict_schema)
    found = [(Path(p.file).name, p.doc_index, p.path, p.rule) for p in report.problems if p.is_policy]
    assert found == EXPECTED_POLICY_FINDINGS


def test_every_example_document_is_counted(examples_dir: Path, strict_schema: ArgoSchema) -> None:
    """All 217 YAML files are read: 225 Argo documents checked, 3 other kinds skipped."""
    report = _report(examples_dir, strict_schema)
    assert (len(report.files), report.checked, report.skipped) == (217, 225, 3)
    assert report.invalid == len(EXPECTED_POLICY_FINDINGS)


def test_schema_verdicts_match_the_reference_on_every_example(
    examples_dir: Path, strict_schema: ArgoSchema, reference: ModuleType
) -> None:
    """Per document, our schema verdict equals the reference validator's (both: valid)."""
    checks = reference.validators()
    disagreements = []
    total = 0
    for path, index, doc in reference.documents([str(examples_dir)]):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind not in checks:
            continue
        total += 1
        theirs = any(True for _ in checks[kind].iter_errors(doc))
        ours = any(p.rule == "schema" for p in validate_documents([doc], source=str(path), schema=strict_schema))
        if theirs != ours:
            disagreements.append(f"{path}#{index}: reference invalid={theirs}, ours invalid={ours}")
    assert (total, disagreements) == (225, [])



def _walk(node: object, visit: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def _renamed(items: object) -> None:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            item["name"] = "zz-" + item["name"]


def _rename_mounts(node: dict[str, Any]) -> None:
    _renamed(node.get("volumeMounts"))


def _rename_inputs(node: dict[str, Any]) -> None:
    if isinstance(node.get("inputs"), dict):
        _renamed(node["inputs"].get("parameters"))
        _renamed(node["inputs"].get("artifacts"))


def _rename_steps(node: dict[str, Any]) -> None:
    for group in node.get("steps") if isinstance(node.get("steps"), list) else []:
        _renamed(group)


def _rename_tasks(node: dict[str, Any]) -> None:
    if isinstance(node.get("dag"), dict):
        _renamed(node["dag"].get("tasks"))


#: Upstream examples broken in one way each, and how many problems the matching rule then finds:
#: proof that each rule reads the shapes real manifests use (a rule that never looks finds 0).
MUTATIONS = {
    "volume-mount": (_rename_mounts, 46),
    "input-ref": (_rename_inputs, 149),
    "node-ref": (_rename_steps, 100),
    "depends": (_rename_tasks, 94),  # 93 depends/dependencies, one list of two names
}


@pytest.fixture(scope="module")
def example_documents(examples_dir: Path) -> list[object]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for path in sorted(examples_dir.rglob("*.y*ml")) for doc in yaml.load_all(path.read_text(), loader)]


@pytest.mark.parametrize("rule", list(MUTATIONS))
def test_each_new_rule_catches_dangling_names_in_broken_upstream_examples(
    example_documents: list[object], rule: str
) -> None:
    """Renaming declarations in real examples makes the matching rule report the uses left dangling."""
    mutate, expected = MUTATIONS[rule]
    broken = copy.deepcopy(example_documents)
    _walk(broken, mutate)
    found = validate_documents(broken, source="examples", schema=None)
    assert sum(p.rule == rule for p in found) == expected
