"""validate_paths: walking directories, multi-document files, other kinds, unreadable YAML, and
what happens when no schema is available."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

from resilient_templates.errors import ValidationError
from resilient_templates.validate import (
    ArgoSchema,
    SchemaSkippedWarning,
    SchemaUnavailable,
    validate_documents,
    validate_paths,
)

GOOD = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: {name}
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      image: busybox
"""

BAD_FACTOR = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: bad
spec:
  entrypoint: main
  templates:
  - name: main
    retryStrategy:
      limit: "2"
      backoff: {duration: "5s", factor: "1.5"}
    container:
      image: busybox
"""

TYPO = GOOD.replace("entrypoint:", "entrypointt:")

OTHER_KINDS = """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [a.yaml]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_directories_are_walked_for_yaml_and_yml_only(tmp_path: Path, strict_schema: ArgoSchema) -> None:
    """*.yaml and *.yml are read recursively; other files and hidden directories are not."""
    write(tmp_path / "a.yaml", GOOD.format(name="a"))
    write(tmp_path / "nested" / "b.yml", GOOD.format(name="b"))
    write(tmp_path / "notes.txt", TYPO)
    write(tmp_path / ".git" / "c.yaml", TYPO)
    report = validate_paths([tmp_path], schema=strict_schema)
    assert [Path(f).relative_to(tmp_path).as_posix() for f in report.files] == ["a.yaml", "nested/b.yml"]
    assert (report.checked, report.invalid, report.skipped, report.ok) == (2, 0, 0, True)


def test_other_kinds_are_skipped_but_counted(tmp_path: Path, strict_schema: ArgoSchema) -> None:
    """Kustomization, ConfigMap, ServiceAccount and Role are not Argo documents; they are counted."""
    write(tmp_path / "k.yaml", OTHER_KINDS + "---\n" + GOOD.format(name="a"))
    report = validate_paths([tmp_path], schema=strict_schema)
    assert (report.checked, report.skipped) == (1, 4)
    assert report.summary() == "1 Argo documents checked, 0 invalid, 4 other documents skipped"


def test_problems_name_the_document_inside_a_multi_document_file(tmp_path: Path, strict_schema: ArgoSchema) -> None:
    """The document index counts every document in the file, so #2 is the third one."""
    write(tmp_path / "m.yaml", GOOD.format(name="a") + "---\n" + OTHER_KINDS.split("---")[1] + "---\n" + BAD_FACTOR)
    report = validate_paths([tmp_path / "m.yaml"], schema=strict_schema)
    (problem,) = report.problems
    assert (problem.doc_index, problem.kind, problem.name, problem.path) == (
        2,
        "WorkflowTemplate",
        "bad",
        "spec.templates[0].retryStrategy.backoff.factor",
    )
    assert (report.checked, report.invalid, report.skipped) == (2, 1, 1)


def test_a_named_file_is_read_whatever_its_extension(tmp_path: Path, strict_schema: ArgoSchema) -> None:
    """A file given by name is validated even if it is not *.yaml (e.g. JSON output)."""
    path = write(tmp_path / "wf.json", '{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": {}}')
    report = validate_paths([path], schema=strict_schema)
    assert [p.path for p in report.problems] == ["metadata"]


def test_invalid_yaml_is_one_problem_with_its_line(tmp_path: Path, strict_schema: ArgoSchema) -> None:
    """A YAML syntax error is reported with its position, and the documents before it still count."""
    path = write(tmp_path / "broken.yaml", GOOD.format(name="a") + "---\nkind: [unclosed\n")
    report = validate_paths([path], schema=strict_schema)
    (problem,) = report.problems
    assert problem.rule == "yaml" and problem.doc_index == 1
    assert problem.message.startswith("not valid YAML: line ")
    assert (report.checked, report.invalid) == (2, 1)


def test_unquoted_dates_stay_strings_as_kubernetes_reads_them(tmp_path: Path, strict_schema: ArgoSchema) -> None:
    """A bare 2024-01-01 in a string field is not turned into a date and rejected."""
    parameter = "\n  arguments:\n    parameters:\n    - name: day\n      value: 2024-01-01"
    text = GOOD.format(name="a").replace("  entrypoint: main", "  entrypoint: main" + parameter)
    report = validate_paths([write(tmp_path / "d.yaml", text)], schema=strict_schema)
    assert report.problems == ()


def test_a_missing_path_is_an_error(tmp_path: Path, strict_schema: ArgoSchema) -> None:
    """A path that does not exist stops with one line rather than validating nothing."""
    with pytest.raises(ValidationError, match=r"nope: no such file or directory$"):
        validate_paths([tmp_path / "nope"], schema=strict_schema)


def test_without_a_schema_semantics_still_run_and_the_skip_is_recorded(tmp_path: Path, no_schema_env: dict) -> None:
    """No ARGO_SCHEMA, no cache, no network: factor "1.5" is still caught and the reason kept."""
    write(tmp_path / "bad.yaml", BAD_FACTOR)
    write(tmp_path / "typo.yaml", TYPO.format(name="t"))
    report = validate_paths([tmp_path])
    assert [p.rule for p in report.problems] == ["integer"]  # the typo needs the schema
    assert report.schema_origin is None
    assert report.schema_skipped is not None
    assert report.schema_skipped.startswith("ARGO_SCHEMA is not set; no cached copy at ")
    assert "Connection refused" in report.schema_skipped


def test_require_schema_turns_the_skip_into_an_error(tmp_path: Path, no_schema_env: dict) -> None:
    """With require_schema=True a missing schema raises instead of validating half."""
    write(tmp_path / "bad.yaml", BAD_FACTOR)
    with pytest.raises(SchemaUnavailable, match="ARGO_SCHEMA is not set"):
        validate_paths([tmp_path], require_schema=True)


def test_validate_documents_warns_loudly_without_a_schema(no_schema_env: dict) -> None:
    """The library call warns with SchemaSkippedWarning and still reports semantic problems."""
    import yaml

    with pytest.warns(SchemaSkippedWarning, match="Argo schema validation SKIPPED: ARGO_SCHEMA is not set"):
        problems = validate_documents([yaml.safe_load(BAD_FACTOR)], source="x.yaml")
    assert [p.rule for p in problems] == ["integer"]


def test_validate_documents_uses_argo_schema_from_the_environment(
    schema_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ARGO_SCHEMA set, the default schema is used and nothing warns."""
    import yaml

    monkeypatch.setenv("ARGO_SCHEMA", str(schema_file))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        problems = validate_documents([yaml.safe_load(TYPO.format(name="t"))], source="x.yaml")
    assert [(p.path, p.rule) for p in problems] == [("spec.entrypointt", "schema")]
