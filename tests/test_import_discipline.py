"""Import discipline: the runtime starts lean, only lower/ imports Hera, public APIs are frozen."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "resilient_templates"
HEAVY = ("hera", "pydantic", "yaml", "jinja2", "re2", "psycopg", "jsonschema", "hyperscan")


def modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}


@pytest.mark.parametrize(
    "statement",
    [
        "import resilient_templates",
        "import resilient_templates.policy",
        "import resilient_templates.runtime.__main__",
        "import resilient_templates.runtime.store",
        "import resilient_templates.runtime.model",
    ],
)
def test_runtime_and_policy_import_nothing_heavy(statement):
    """These imports pull in no Hera, pydantic, YAML, Jinja2, re2, psycopg or jsonschema."""
    assert modules_after(statement) & set(HEAVY) == set()


def test_runtime_help_starts_without_heavy_modules():
    """`resilient-runtime --help` (the dispatcher) runs without importing any heavy library."""
    assert modules_after(
        "from resilient_templates.runtime.__main__ import main; main(['--help'])"
    ) & set(HEAVY) == set()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_lowering_layer_imports_hera():
    """Hera appears only under resilient_templates/lower (one door to a fast-moving dependency)."""
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "hera" in _imports(p) and p.relative_to(SRC).parts[0] != "lower"
    ]
    assert offenders == []


def test_policy_core_is_stdlib_only():
    """policy/ imports only the stdlib and resilient_templates.errors."""
    allowed = set(sys.stdlib_module_names) | {"resilient_templates"}
    for path in (SRC / "policy").glob("*.py"):
        assert _imports(path) <= allowed, path.name


def test_top_level_public_api_is_frozen():
    """resilient_templates.__all__ is exactly this list; changing it is a deliberate API change."""
    import resilient_templates

    assert resilient_templates.__all__ == [
        "ApprovalGate", "BreakerConfig", "Category", "ConfigError", "Custom", "Duration",
        "ExitHandler", "Exponential", "Fixed", "Jitter", "Linear", "Pipeline", "PolicyError",
        "ResilientTemplatesError", "Resources", "Retry", "RetryOn", "Severity", "Stage",
        "__version__",
    ]  # fmt: skip
    for name in resilient_templates.__all__:
        assert getattr(resilient_templates, name) is not None


def test_every_package_is_listed_in_pyproject():
    """Each package directory under src/ (and stages/) is in pyproject's explicit packages list."""
    import tomllib

    listed = set(tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(SRC.parent).parts)
        for p in SRC.rglob("__init__.py")
    } | {"resilient_templates.stages"}
    assert found == listed


def test_runtime_taxonomy_import_does_not_load_the_whole_policy_core():
    """The runtime's taxonomy import leaves retry/breaker/resources unloaded (PEP 562 lazy core)."""
    code = (
        "import sys, resilient_templates.policy.taxonomy\n"
        "print(sorted(m for m in sys.modules if m.startswith('resilient_templates.policy.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['resilient_templates.policy.taxonomy']"


def test_test_file_basenames_are_unique():
    """pytest's default import mode needs unique test-module basenames (collisions abort CI)."""
    from collections import Counter

    tests = Path(__file__).resolve().parent
    names = Counter(p.name for p in tests.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
