"""Checks that names used inside a template exist: its inputs, its steps/tasks, the inputs of the
templates it calls (argo-semantics §2, §7; ``argo lint``'s variable resolution and
``common.ProcessArgs``, which fails a node with "inputs.parameters.X was not supplied").

Every function takes one template (a dict, possibly malformed) and its key path, and returns
``Finding``s. Names holding ``{{...}}`` are resolved at run time and are never judged.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .expressions import expression_tags, simple_tags
from .problem import Finding, describe, show

__all__ = [
    "argument_findings",
    "declared_inputs",
    "input_reference_findings",
    "node_reference_findings",
    "strings_in",
]

Parts = tuple[str | int, ...]
#: Locations of artifacts that make an input artifact optional to pass (``HasLocationOrKey``).
ARTIFACT_LOCATIONS = ("s3", "git", "http", "artifactory", "hdfs", "raw", "oss", "gcs", "azure", "plugin")

_STRING_LITERAL = re.compile(r"""(\[\s*)?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)""")
_EXPR_INPUT = re.compile(
    r"(?<![\w.$#])inputs\s*\.\s*(parameters|artifacts)\s*(?:\.\s*([A-Za-z0-9_]+)|\[\s*(['\"`])(.*?)\3\s*\])"
)
_EXPR_NODE = re.compile(r"(?<![\w.$#])(steps|tasks)\s*(?:\.\s*([A-Za-z0-9_]+)|\[\s*(['\"`])(.*?)\3\s*\])")


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def strings_in(value: object, at: Parts) -> list[tuple[Parts, str]]:
    """The strings under ``value`` that may name something (``{{...}}`` tags, ``expression``
    fields), with their key paths, in document order; ``inline`` templates are their own scope."""
    found: list[tuple[Parts, str]] = []

    def visit(key: str | int, item: object, parts: Parts) -> None:
        if isinstance(item, str):
            if "{{" in item or key == "expression":
                found.append(((*parts, key), item))
        elif isinstance(item, dict):
            walk(item.items(), (*parts, key))
        elif isinstance(item, list):
            walk(enumerate(item), (*parts, key))

    def walk(items: Iterable[tuple[str | int, object]], parts: Parts) -> None:
        for key, item in items:
            if key != "inline":
                visit(key, item, parts)

    if isinstance(value, dict):
        walk(value.items(), at)
    return found


def _blank_strings(expression: str) -> str:
    """``expression`` with string literals emptied, except subscripts such as ``['name']``."""
    return _STRING_LITERAL.sub(lambda m: m.group() if m.group(1) else m.group(2)[0] * 2, expression)


def _names(items: object) -> list[str]:
    return [n for n in (_dict(i).get("name") for i in _list(items)) if isinstance(n, str)]


def declared_inputs(template: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The names of a template's input parameters and input artifacts."""
    inputs = _dict(template.get("inputs"))
    return _names(inputs.get("parameters")), _names(inputs.get("artifacts"))


def _expected(kind: str, names: list[str], wanted: str) -> str:
    if not names:
        return f"an entry named {show(wanted)} in {kind} (there is none yet)"
    listed = ", ".join(sorted(names)[:10]) + (", ..." if len(names) > 10 else "")
    close = difflib.get_close_matches(wanted, names, n=1, cutoff=0.7)
    return f"one of its {kind}: {listed}" + (f'; did you mean "{close[0]}"?' if close else "")


# -- rule input-ref ------------------------------------------------------------------------


def input_reference_findings(
    template: Mapping[str, Any],
    at: Parts,
    extra: tuple[list[str], list[str]] = ([], []),
    strings: list[tuple[Parts, str]] | None = None,
) -> list[Finding]:
    """``{{inputs.parameters.X}}``/``{{inputs.artifacts.X}}`` (and the same inside ``{{= }}``)
    naming an input the template does not declare. ``extra`` are inputs from templateDefaults;
    ``strings`` is ``strings_in(template, at)`` if the caller has it already."""
    params, artifacts = declared_inputs(template)
    known = {"parameters": set(params) | set(extra[0]), "artifacts": set(artifacts) | set(extra[1])}
    findings = []
    for parts, text in strings if strings is not None else strings_in(template, at):
        if "inputs" not in text or "{{" not in text:
            continue
        missing = [(kind, name) for kind, name in _input_references(text) if name not in known[kind]]
        if not missing:
            continue
        kind, name = missing[0]
        refs = ", ".join(dict.fromkeys(f"inputs.{k}.{n}" for k, n in missing))
        findings.append(
            Finding(
                parts,
                describe(
                    f"{refs} names an input this template does not declare: argo lint fails with "
                    '"failed to resolve" and the controller cannot substitute it',
                    got=text,
                    expected=_expected(f"inputs.{kind}", params if kind == "parameters" else artifacts, name),
                ),
                "input-ref",
            )
        )
    return findings


def _input_references(text: str) -> Iterator[tuple[str, str]]:
    for tag in simple_tags(text):
        for kind in ("parameters", "artifacts"):
            prefix = f"inputs.{kind}."
            if tag.startswith(prefix):
                name = tag[len(prefix) :]
                yield kind, name.split(".")[0] if kind == "artifacts" else name
    for expression in expression_tags(text):
        for match in _EXPR_INPUT.finditer(_blank_strings(expression)):
            name = match.group(2) if match.group(2) is not None else match.group(4)
            if name and "{{" not in name:
                yield match.group(1), name


# -- rule node-ref -------------------------------------------------------------------------


def node_reference_findings(
    template: Mapping[str, Any], at: Parts, strings: list[tuple[Parts, str]] | None = None
) -> list[Finding]:
    """``steps.X``/``tasks.X`` (tags, hook expressions, output expressions) naming no step or task
    of this steps/DAG template. Leaf templates have neither and are not checked."""
    if isinstance(template.get("steps"), list):
        kind = "steps"
        nodes = _names([step for group in template["steps"] for step in _list(group)])
    elif isinstance(template.get("dag"), dict):
        kind = "tasks"
        nodes = _names(_dict(template["dag"]).get("tasks"))
    else:
        return []
    if any("{{" in n for n in nodes):
        return []  # generated names: unknowable before run time
    known = set(nodes)
    findings = []
    for parts, text in strings if strings is not None else strings_in(template, at):
        bare = _is_bare_expression(parts)
        if not bare and ("{{" not in text or ("steps" not in text and "tasks" not in text)):
            continue
        missing = [(k, n) for k, n in _node_references(text, bare) if k != kind or n not in known]
        if not missing:
            continue
        ref_kind, name = missing[0]
        refs = ", ".join(dict.fromkeys(f"{k}.{n}" for k, n in missing))
        if ref_kind != kind:
            problem = f"{refs}: this is a {'steps' if kind == 'steps' else 'DAG'} template, it has no {ref_kind}"
        else:
            problem = f"{refs} names no {'step' if kind == 'steps' else 'task'} of this template"
        findings.append(
            Finding(
                parts,
                describe(problem + ", so Argo cannot resolve it", got=text, expected=_expected(kind, nodes, name)),
                "node-ref",
            )
        )
    return findings


def _is_bare_expression(parts: Parts) -> bool:
    """An expr-lang string without ``{{= }}``: hook expressions and output valueFrom.expression."""
    return len(parts) >= 2 and parts[-1] == "expression" and (
        (len(parts) >= 3 and parts[-3] == "hooks") or parts[-2] == "valueFrom"
    )


def _node_references(text: str, bare: bool) -> Iterator[tuple[str, str]]:
    for tag in simple_tags(text):
        pieces = tag.split(".")
        if pieces[0] in ("steps", "tasks") and len(pieces) > 1 and tag not in ("steps.name", "tasks.name"):
            yield pieces[0], pieces[1]
    expressions = [text] if bare else list(expression_tags(text))
    for expression in expressions:
        for match in _EXPR_NODE.finditer(_blank_strings(expression)):
            name = match.group(2) if match.group(2) is not None else match.group(4)
            if name and "{{" not in name and not (match.group(2) == "name" and _ends_after(expression, match)):
                yield match.group(1), name


def _ends_after(expression: str, match: re.Match[str]) -> bool:
    """``steps.name`` on its own is Argo's current-step-name variable, not a step called "name"."""
    return not expression[match.end() :].lstrip().startswith((".", "["))


# -- rule arguments ------------------------------------------------------------------------


def argument_findings(step: Mapping[str, Any], at: Parts, called: Mapping[str, Any]) -> list[Finding]:
    """The arguments of a step/task against the inputs of the template it calls (``called``):
    parameters it does not declare (Argo ignores them silently) and required inputs not passed
    (Argo fails the node: "inputs.parameters.X was not supplied")."""
    name = called.get("name", "")
    what = f"template {show(name)}" if name else "the inline template"
    params, artifacts = declared_inputs(called)
    arguments = _dict(step.get("arguments"))
    findings = []
    for kind, declared in (("parameters", params), ("artifacts", artifacts)):
        if not declared:
            continue  # nothing to misspell: Argo ignores these, and examples pass them to label fan-out nodes
        passed = _list(arguments.get(kind))
        for index, argument in enumerate(passed):
            arg_name = _dict(argument).get("name")
            if not isinstance(arg_name, str) or "{{" in arg_name or arg_name in declared:
                continue
            findings.append(
                Finding(
                    (*at, "arguments", kind, index, "name"),
                    describe(
                        f"{what} has no input {kind[:-1]} {show(arg_name)}, so Argo ignores this argument silently",
                        got=arg_name,
                        expected=_expected(f"inputs.{kind}", declared, arg_name),
                    ),
                    "arguments",
                )
            )
    passed_names = {kind: set(_names(arguments.get(kind))) for kind in ("parameters", "artifacts")}
    missing = [("parameters", p) for p in _required_parameters(called) if p not in passed_names["parameters"]]
    missing += [("artifacts", a) for a in _required_artifacts(called) if a not in passed_names["artifacts"]]
    if missing:
        listed = ", ".join(f"inputs.{kind}.{n}" for kind, n in missing)
        kind, first = missing[0]
        findings.append(
            Finding(
                (*at, "arguments"),
                describe(
                    f"{what} requires {listed} (no default), which this "
                    f"{'task' if 'tasks' in at else 'step'} does not pass, so Argo fails it with "
                    f'"inputs.{kind}.{first} was not supplied"',
                    expected=f"arguments.{kind} with an entry named {show(first)}, or a default in {what}",
                ),
                "arguments",
            )
        )
    return findings


def _required_parameters(template: Mapping[str, Any]) -> list[str]:
    inputs = _dict(template.get("inputs"))
    return [
        p["name"]
        for p in _list(inputs.get("parameters"))
        if isinstance(p, dict)
        and isinstance(p.get("name"), str)
        and all(p.get(key) is None for key in ("value", "default", "valueFrom"))
    ]


def _required_artifacts(template: Mapping[str, Any]) -> list[str]:
    inputs = _dict(template.get("inputs"))
    return [
        a["name"]
        for a in _list(inputs.get("artifacts"))
        if isinstance(a, dict)
        and isinstance(a.get("name"), str)
        and not a.get("optional")
        and not any(a.get(key) is not None for key in ARTIFACT_LOCATIONS)
    ]
