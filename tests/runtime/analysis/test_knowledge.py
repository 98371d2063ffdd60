"""The signature knowledge base: loads, validates with precise errors, and feeds the wrapper."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from resilient_templates.errors import ConfigError
from resilient_templates.policy.taxonomy import Category
from resilient_templates.runtime.analysis import knowledge
from resilient_templates.runtime.analysis.knowledge import builtin, build, load, wrapper_hints

SAMPLES = yaml.safe_load((Path(__file__).parent / "data" / "signature_samples.yaml").read_text())


def _doc(**overrides: object) -> dict:
    sig = {
        "name": "demo",
        "category": "infrastructure",
        "transient": True,
        "patterns": ["boom (?P<thing>\\w+)"],
        "recommendations": [{"action": "fix {thing}"}],
    }
    sig.update(overrides)
    return {"schema": 1, "signatures": [sig]}


def test_builtin_loads_and_covers_the_categories():
    """The shipped base loads and has signatures for each of the five categories."""
    kb = builtin()
    assert len(kb) >= 75
    assert {s.category for s in kb} == set(Category) - {Category.UNKNOWN}


def test_compiled_json_copy_is_up_to_date():
    """signatures.json carries the hash of signatures.yaml (rerun the --compile when this fails)."""
    import hashlib

    raw = Path(knowledge.BUILTIN_YAML).read_bytes()
    compiled = json.loads(Path(knowledge.BUILTIN_JSON).read_text())
    assert compiled["source_sha256"] == hashlib.sha256(raw).hexdigest(), (
        "run: python -m resilient_templates.runtime.analysis.knowledge --compile"
    )
    from_yaml = build(yaml.safe_load(raw), origin="yaml")
    assert [s.to_dict() for s in from_yaml] == compiled["signatures"]


def test_every_builtin_signature_records_a_source_and_has_samples():
    """Each signature names where its message shape comes from and has match and miss samples."""
    for sig in builtin():
        assert sig.source, f"{sig.name} has no source"
        assert all(src.startswith("https://") for src in sig.source), sig.name
        kind = "noise" if sig.role == "noise" else "match"  # noise lines are never answers
        assert SAMPLES.get(sig.name, {}).get(kind), f"{sig.name} has no {kind} samples"
        assert SAMPLES.get(sig.name, {}).get("miss"), f"{sig.name} has no miss samples"


def test_every_builtin_signature_has_at_least_one_recommendation():
    """An analysis always tells the reader what to do next."""
    assert all(sig.recommendations for sig in builtin())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"category": "network"}, "signatures[0] (demo).category: invalid category (got 'network'"),
        ({"category": "unknown"}, "invalid category"),
        ({"patterns": ["(?<=x)y"]}, "signatures[0] (demo).patterns[0]: pattern does not compile"),
        ({"patterns": []}, "at least one pattern is required"),
        ({"recommendations": [{"action": "fix {other}"}]},
         "recommendations[0]: recommendation uses a capture no pattern defines (got '{other}'"),
        ({"retry_delay": {"epoch": "reset"}}, "retry_delay.epoch: retry_delay names a capture"),
        ({"precision": 1.5}, "signatures[0] (demo).precision: invalid probability (got 1.5"),
        ({"priority": "high"}, "invalid priority"),
        ({"hint_ere": "failed\\d+"}, "hint_ere uses a construct POSIX grep -E does not have"),
        ({"transient": "yes"}, "transient must be true or false"),
        ({"colour": "red"}, "signatures[0] (demo).colour: unknown field"),
        ({"suppressed_by": ["nobody"]}, "demo.suppressed_by: suppressed_by names an unknown signature"),
        ({"role": "consequence"}, "signatures[0] (demo).role: invalid role (got 'consequence'"),
    ],
)  # fmt: skip
def test_invalid_signatures_are_reported_with_their_name_and_field(overrides, message):
    """A knowledge-base mistake is a ConfigError naming the file, signature and field."""
    with pytest.raises(ConfigError) as info:
        build(_doc(**overrides), origin="mine.yaml")
    assert str(info.value).startswith("mine.yaml: ")
    assert message in str(info.value)


def test_duplicate_names_are_rejected():
    """Two signatures with one name are a problem naming the first use."""
    doc = _doc()
    doc["signatures"].append(dict(doc["signatures"][0]))
    with pytest.raises(ConfigError, match=r"signatures\[1\] \(demo\)\.name: duplicate signature name"):
        build(doc, origin="mine.yaml")


def test_all_problems_of_a_file_are_reported_at_once():
    """Several broken signatures give one error with a line per problem."""
    doc = {"schema": 1, "signatures": [
        {"name": "alpha", "category": "bogus", "transient": True, "patterns": ["x"]},
        {"name": "beta", "category": "configuration", "transient": True, "patterns": ["("]},
    ]}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        build(doc, origin="mine.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert "(alpha).category" in lines[0] and "(beta).patterns[0]" in lines[1]


def test_a_user_file_adds_signatures_and_replaces_builtin_ones_by_name(tmp_path):
    """--signatures FILE adds new signatures; one with a built-in name replaces it."""
    path = tmp_path / "extra.yaml"
    path.write_text(yaml.safe_dump({"schema": 1, "signatures": [
        {"name": "flaky-widget", "category": "external_dependency", "transient": True,
         "patterns": ["widget service flaked"], "suppressed_by": ["github-rate-limit"]},
        {"name": "disk-full", "category": "infrastructure", "transient": True,
         "patterns": ["No space left on device"]},
    ]}))  # fmt: skip
    kb = load([str(path)])
    assert kb.get("flaky-widget").category is Category.EXTERNAL_DEPENDENCY
    assert kb.get("disk-full").category is Category.INFRASTRUCTURE
    assert len(kb) == len(builtin()) + 1


def test_an_unreadable_or_invalid_user_file_is_one_clear_error(tmp_path):
    """A missing file or broken YAML names the file."""
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read signatures file"):
        load([str(tmp_path / "nope.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("signatures: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load([str(bad)])


def test_wrapper_hints_are_ordered_by_priority_and_use_the_taxonomy():
    """wrapper_hints() gives (name, category, transient, ERE): causes before symptoms, each by priority."""
    hints = wrapper_hints()
    kb = builtin()
    order = [(kb.get(name).role == "symptom", -kb.get(name).priority) for name, *_ in hints]
    assert order == sorted(order)
    for name, category, transient, ere in hints:
        assert Category(category) is kb.get(name).category
        assert isinstance(transient, bool)
        assert "\t" not in ere and "\n" not in ere


@pytest.mark.skipif(shutil.which("grep") is None, reason="needs grep")
def test_every_hint_ere_matches_its_samples_with_real_grep():
    """Each hint ERE matches its sample lines under `grep -E`, as the sh wrapper runs it."""
    checked = 0
    for name, _category, _transient, ere in wrapper_hints():
        lines = SAMPLES[name].get("hint")
        assert lines, f"{name} has a hint_ere but no hint samples"
        for line in lines:
            proc = subprocess.run(["grep", "-Eq", "--", ere], input=line.encode(), check=False)
            assert proc.returncode == 0, f"{name}: {ere!r} does not match {line!r}"
            checked += 1
    assert checked >= 50


@pytest.mark.skipif(shutil.which("grep") is None, reason="needs grep")
def test_hint_eres_stay_quiet_on_ordinary_log_lines():
    """No hint ERE fires on routine CI output (a false hint would mislabel every failure)."""
    noise = "\n".join([
        "2026-06-01T12:00:01Z INFO processed item 42 in 0.120s status=ok",
        "tests/unit/test_x.py::test_y PASSED                           [ 10%]",
        "--- PASS: TestHandler (0.01s)",
        "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/a/b/1/b-1.jar",
        "npm http fetch GET 200 https://registry.npmjs.org/left-pad 12ms",
        "Receiving objects: 100% (268676/268676), 120.5 MiB | 12.0 MiB/s, done.",
        "   Compiling serde v1.0.197",
        "Successfully installed requests-2.31.0",
    ]) + "\n"  # fmt: skip
    for name, _c, _t, ere in wrapper_hints():
        proc = subprocess.run(["grep", "-Eq", "--", ere], input=noise.encode(), check=False)
        assert proc.returncode == 1, f"{name}: {ere!r} matches routine output"


# ------------------------------------------------------------------ pattern cost

_NL = ord("\n")


def _crosses_lines(item: tuple) -> bool:
    """A one-character item that also matches a newline ([^x] does in RE2 unless \\n is listed)."""
    import re._constants as sc

    op, av = item
    if op == sc.NOT_LITERAL:
        return av != _NL
    if op == sc.IN:
        negated = any(o == sc.NEGATE for o, _ in av)
        has_nl = any((o == sc.LITERAL and a == _NL) or (o == sc.RANGE and a[0] <= _NL <= a[1])
                     or (o == sc.CATEGORY and a == sc.CATEGORY_SPACE) for o, a in av)  # fmt: skip
        return negated and not has_nl
    return False


def _opens_unbounded(seq: list, literals: int) -> tuple[bool, int, bool]:
    """(risky, literals seen, stop): an unbounded line-crossing class before 3 literal characters."""
    import re._constants as sc

    for op, av in seq:
        if literals >= 3:
            return False, literals, True
        if op == sc.LITERAL:
            literals += 1
        elif op in (sc.AT, sc.IN):
            continue
        elif op in (sc.MAX_REPEAT, sc.MIN_REPEAT):
            low, high, sub = av
            if high == sc.MAXREPEAT and len(sub) == 1 and _crosses_lines(sub[0]):
                return True, literals, True
            if low == 0:
                return False, literals, True
            risky, after, _stop = _opens_unbounded(list(sub), literals)
            return risky, after, True
        elif op == sc.SUBPATTERN:
            risky, literals, stop = _opens_unbounded(list(av[-1]), literals)
            if risky or stop:
                return risky, literals, True
        elif op == sc.BRANCH:
            outcomes = [_opens_unbounded(list(alt), literals) for alt in av[1]]
            if any(risky for risky, _, _ in outcomes):
                return True, literals, True
            literals = min(after for _, after, _ in outcomes)
            if any(stop for _, _, stop in outcomes):
                return False, literals, True
        else:
            return False, literals, True
    return False, literals, False


def test_no_pattern_opens_with_an_unbounded_class_that_crosses_lines():
    """Every pattern reaches 3 literal characters before an unbounded [^...]+ that matches newlines.

    In the one re2 Set such a pattern keeps a partial match alive from a frequent character (a
    quote) across lines; the DFA's states multiply until its cache thrashes. One pattern of this
    shape ((?:‘|')(?:Jenkins|[^‘’']+)...) took the engine from ~180 to ~16 MB/s on the bench log.
    """
    import re._parser as sre_parser

    offenders = []
    for sig in builtin():
        for pattern in sig.patterns:
            try:
                tree = sre_parser.parse(pattern)
            except Exception:  # RE2-only syntax: not checked here
                continue
            if _opens_unbounded(list(tree), 0)[0]:
                offenders.append((sig.name, pattern))
    assert not offenders
    assert _opens_unbounded(list(sre_parser.parse("(?:‘|')(?:Jenkins|[^‘’']+)(?:’|') doesn")), 0)[0]
