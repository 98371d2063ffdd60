"""The analysis path starts lean: no Hera, pydantic or Jinja2; heavy libraries only when needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_analysis_cli_imports_neither_hera_nor_pydantic_nor_jinja2():
    """After importing the analyze command module, hera, pydantic and jinja2 are not loaded."""
    loaded = modules_after("import resilient_templates.runtime.analysis.cli")
    assert not {"hera", "pydantic", "jinja2"} & {m.split(".")[0] for m in loaded}


def test_the_package_import_is_cheap():
    """`import resilient_templates.runtime.analysis` loads none of its submodules or re2/yaml."""
    loaded = modules_after("import resilient_templates.runtime.analysis")
    assert not {m for m in loaded if m.startswith("resilient_templates.runtime.analysis.")}
    assert not {"re2", "yaml", "psycopg", "sqlite3"} & {m.split(".")[0] for m in loaded}


def test_a_whole_analysis_uses_no_yaml_and_no_database_driver():
    """Analysing a log (no store) reads the compiled JSON knowledge base: no PyYAML, no sqlite3."""
    loaded = modules_after(
        "from resilient_templates.runtime.analysis import analyze_text\n"
        "analyze_text('npm ERR! code E503', now=0)"
    )
    top = {m.split(".")[0] for m in loaded}
    assert "re2" in top
    assert not {"yaml", "sqlite3", "psycopg", "hera", "pydantic", "jinja2", "hyperscan"} & top


@pytest.mark.parametrize("name", ["analyze_text", "analyze_context", "analyze_workflow", "wrapper_hints"])
def test_the_public_api_is_exported_lazily(name):
    """The notifier's entry points are attributes of the package."""
    import resilient_templates.runtime.analysis as analysis

    assert callable(getattr(analysis, name))
    assert name in analysis.__all__
