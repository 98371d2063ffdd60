"""Kubernetes resource quantities and a stage's requests/limits, validated before lowering.

Grammar (k8s.io/apimachinery/pkg/api/resource, quantity.go)::

    <quantity> ::= <signedNumber><suffix>
    <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | "" | k | M | G | T | P | E
                 | e<signedNumber> | E<signedNumber>
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from ..errors import QuantityError

__all__ = ["Quantity", "Resources"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY = re.compile(
    r"(?P<num>[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)"
)


@dataclass(frozen=True, slots=True, order=True)
class Quantity:
    """A parsed quantity: ``value`` is exact (a Fraction of base units), ``text`` is as written."""

    value: Fraction
    text: str

    @classmethod
    def parse(cls, raw: str | int | float, *, what: str = "quantity") -> Quantity:
        if isinstance(raw, bool):
            raise QuantityError(f"{what} must be a Kubernetes quantity, got {raw!r}")
        text = str(raw).strip() if isinstance(raw, (int, float)) else raw
        if not isinstance(text, str):
            raise QuantityError(f"{what} must be a Kubernetes quantity, got {raw!r}")
        match = _QUANTITY.fullmatch(text)
        if not match:
            raise QuantityError(
                f"{what} {text!r} is not a Kubernetes quantity "
                "(expected a number and an optional suffix, e.g. '200m', '1', '512Mi', '2Gi')"
            )
        number, suffix = Fraction(match["num"]), match["suffix"]
        if suffix in _BINARY:
            value = number * _BINARY[suffix]
        elif suffix[:1] in ("e", "E") and len(suffix) > 1:
            value = number * Fraction(10) ** int(suffix[1:])
        else:
            value = number * _DECIMAL[suffix]
        if value < 0:
            raise QuantityError(f"{what} {text!r} must not be negative")
        return cls(value, text)

    def __str__(self) -> str:
        return self.text


def _opt(raw: str | int | float | None, what: str) -> Quantity | None:
    return None if raw is None else Quantity.parse(raw, what=what)


@dataclass(frozen=True, slots=True)
class Resources:
    """Requests and limits of one stage container; requests must not exceed limits."""

    cpu_request: Quantity | None = None
    cpu_limit: Quantity | None = None
    memory_request: Quantity | None = None
    memory_limit: Quantity | None = None
    ephemeral_storage_request: Quantity | None = None
    ephemeral_storage_limit: Quantity | None = None

    def __init__(
        self,
        cpu_request: str | int | float | None = None,
        cpu_limit: str | int | float | None = None,
        memory_request: str | int | None = None,
        memory_limit: str | int | None = None,
        ephemeral_storage_request: str | int | None = None,
        ephemeral_storage_limit: str | int | None = None,
    ) -> None:
        fields = {
            "cpu_request": cpu_request,
            "cpu_limit": cpu_limit,
            "memory_request": memory_request,
            "memory_limit": memory_limit,
            "ephemeral_storage_request": ephemeral_storage_request,
            "ephemeral_storage_limit": ephemeral_storage_limit,
        }
        for name, raw in fields.items():
            object.__setattr__(self, name, _opt(raw, name))
        for kind in ("memory", "ephemeral_storage"):
            for side in ("request", "limit"):
                q = getattr(self, f"{kind}_{side}")
                if q is not None and q.value and q.value < 1:
                    raise QuantityError(
                        f"{kind}_{side} {q.text!r} is {float(q.value):g} bytes; "
                        f"did you mean {q.text[:-1]}Mi? ('m' is milli, 'Mi' is mebibytes)"
                    )
        for kind in ("cpu", "memory", "ephemeral_storage"):
            request, limit = getattr(self, f"{kind}_request"), getattr(self, f"{kind}_limit")
            if request is not None and limit is not None and request.value > limit.value:
                raise QuantityError(
                    f"{kind}_request {request.text!r} exceeds {kind}_limit {limit.text!r} "
                    "(Kubernetes rejects a request above its limit)"
                )

    def requests(self) -> dict[str, str]:
        return self._collect("request")

    def limits(self) -> dict[str, str]:
        return self._collect("limit")

    def _collect(self, side: str) -> dict[str, str]:
        names = {"cpu": "cpu", "memory": "memory", "ephemeral_storage": "ephemeral-storage"}
        out = {}
        for kind, k8s in names.items():
            q = getattr(self, f"{kind}_{side}")
            if q is not None:
                out[k8s] = q.text
        return out
