"""Kubernetes quantities are validated before they reach a manifest."""

from __future__ import annotations

from fractions import Fraction

import pytest

from resilient_templates.errors import QuantityError
from resilient_templates.policy import Quantity, Resources


@pytest.mark.parametrize(
    ("text", "value"),
    [("200m", Fraction(1, 5)), ("1", 1), ("0.5", Fraction(1, 2)), ("512Mi", 512 * 2**20),
     ("2Gi", 2 * 2**30), ("1G", 10**9), ("1e3", 1000), ("1.5Ki", 1536)],
)  # fmt: skip
def test_parses_quantities(text, value):
    """Binary and decimal suffixes and exponents parse exactly."""
    assert Quantity.parse(text).value == value


@pytest.mark.parametrize("text", ["1 Gi", "Gi", "1GiB", "1.2.3", "-1", "abc", "1Mb"])
def test_rejects_malformed_quantities(text):
    """Anything outside the Kubernetes grammar is refused with an example of the grammar."""
    with pytest.raises(QuantityError, match="Kubernetes quantity|must not be negative"):
        Quantity.parse(text)


def test_request_above_limit_is_refused():
    """A request above its limit is refused (Kubernetes would reject the pod)."""
    with pytest.raises(QuantityError, match="cpu_request '2' exceeds cpu_limit '1'"):
        Resources(cpu_request="2", cpu_limit="1")


def test_milli_memory_is_a_mistake():
    """'512m' memory is half a byte: the error suggests Mi."""
    with pytest.raises(QuantityError, match="did you mean 512Mi"):
        Resources(memory_limit="512m")


def test_renders_requests_and_limits_as_written():
    """Quantities render exactly as the user wrote them."""
    r = Resources(cpu_request="200m", memory_limit="2Gi", ephemeral_storage_limit="4Gi")
    assert r.requests() == {"cpu": "200m"}
    assert r.limits() == {"memory": "2Gi", "ephemeral-storage": "4Gi"}
