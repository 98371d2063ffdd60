"""Signature table: every signature recognises its sources' messages and ignores near misses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from resilient_templates.runtime.analysis.analyzer import FailureInput
from resilient_templates.runtime.analysis.api import analyzer

SAMPLES = yaml.safe_load((Path(__file__).parent / "data" / "signature_samples.yaml").read_text())
MATCHES = [(name, line) for name, entry in SAMPLES.items() for line in entry.get("match", [])]
MISSES = [(name, line) for name, entry in SAMPLES.items() for line in entry.get("miss", [])]
NOISE = [(name, line) for name, entry in SAMPLES.items() for line in entry.get("noise", [])]


@pytest.mark.parametrize(("name", "line"), MATCHES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MATCHES)])
def test_a_sample_line_is_classified_as_its_signature(name, line):
    """A message from the signature's sources, alone, makes it the best candidate."""
    verdict, _history, _notes = analyzer().classify(FailureInput(log=line.encode()))
    assert verdict.guess is not None, f"nothing matched {line!r}"
    assert verdict.guess.name == name


@pytest.mark.parametrize(("name", "line"), MISSES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MISSES)])
def test_a_near_miss_does_not_match_the_signature(name, line):
    """A line that looks close but is not this failure does not match the signature's patterns."""
    assert name not in analyzer().engine.scan(line.encode()).names()


@pytest.mark.parametrize(("name", "line"), NOISE, ids=[f"{n}-{i}" for i, (n, _) in enumerate(NOISE)])
def test_a_retried_warning_is_claimed_by_noise_and_is_no_evidence(name, line):
    """A warning that an operation is retried owns its line and gives no cause at all."""
    scan = analyzer().engine.scan(line.encode())
    assert name in scan.names()
    verdict, _history, _notes = analyzer().classify(FailureInput(log=line.encode()))
    assert verdict.guess is None, f"{line!r} was read as {verdict.guess.name}"


def test_confident_sample_answers_carry_the_signature_category():
    """Above the threshold, a sample's category is its signature's category."""
    an = analyzer()
    for name, line in MATCHES:
        verdict, _h, _n = an.classify(FailureInput(log=line.encode()))
        if verdict.confidence >= an.threshold:
            assert verdict.category is an.kb.get(name).category, line
