"""Fixtures for the delivery tests: an injected clock and extra store connections."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from delivery_helpers import FakeClock

from resilient_templates.runtime.store import Store, open_store


@pytest.fixture
def clock() -> FakeClock:
    """Injected time starting at a fixed instant; its ``sleep`` advances it."""
    return FakeClock()


@pytest.fixture
def store_factory(store_url: str) -> Iterator[Callable[[], Store]]:
    """Open more connections to the test's store (one per thread); all closed at the end."""
    opened: list[Store] = []

    def factory() -> Store:
        s = open_store(store_url)
        opened.append(s)
        return s

    yield factory
    for s in opened:
        s.close()
