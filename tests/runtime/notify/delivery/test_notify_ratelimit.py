"""Per-channel budgets shared through the store: exact at the provider, shared 429 pauses.

The exactness test uses real time (arrival times measured by the Slack test server); the
slot-timing tests use an injected clock.
"""

from __future__ import annotations

import threading

import pytest
from delivery_helpers import analysis, channel, make_plan, rows

from resilient_templates.runtime.notify.ratelimit import Budget, Permit, RateLimiter, migrate
from resilient_templates.runtime.notify.service import NotifyService


def max_in_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` inside any half-open window [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_max_in_window_counts_a_sliding_window():
    """The window helper counts arrivals in every [t, t + 1 s) window."""
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.98], 1.0) == 3
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1


def test_budget_from_a_rate():
    """A rate becomes messages per window: 1/s, 2.5/s -> 2 per second, 0.5/s -> 1 per 2 s."""
    assert Budget.per_second(1) == Budget(1, 1.0)
    assert Budget.per_second(2.5) == Budget(2, 1.0)
    assert Budget.per_second(0.5) == Budget(1, 2.0)
    with pytest.raises(ValueError):
        Budget.per_second(0)


def test_concurrent_senders_never_exceed_the_budget_at_the_provider(store_factory, slack_server):
    """Six senders sharing a 4/s budget never put more than 4 requests in any 1 s window."""
    plan = make_plan([channel("chat", slack_server, rate=4)], {"team": ["chat"]})
    NotifyService(store_factory(), plan)
    slack_server.max_per_second = 4  # the provider would answer 429 if we overshot
    errors: list[BaseException] = []

    def sender(n: int) -> None:
        try:
            service = NotifyService(store_factory(), plan, migrate_store=False)
            service.notify([analysis(f"wf-{n}-{i}") for i in range(2)], deliver_for=30)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    received = slack_server.received()
    assert len(received) == 12 and all(r.status == 200 for r in received)
    assert max_in_window([r.received_at for r in received], 1.0) <= 4


def test_a_429_pauses_the_channel_for_every_process(store, store_factory, clock):
    """A block recorded by one process makes another wait until the Retry-After ends."""
    migrate(store)
    RateLimiter(store, clock=clock).block("chat", 5.0)
    other = RateLimiter(store_factory(), clock=clock)
    wait = other.try_acquire("chat", Budget(1, 1.0), lease=1.0)
    assert wait == pytest.approx(5.0)
    clock.advance(5.0)
    assert isinstance(other.try_acquire("chat", Budget(1, 1.0), lease=1.0), Permit)


def test_a_released_slot_stays_busy_one_window_after_the_response(store, clock):
    """The next send may start one window (plus a 10 ms guard) after the previous response."""
    migrate(store)
    limiter = RateLimiter(store, clock=clock)
    permit = limiter.try_acquire("chat", Budget(1, 1.0), lease=5.0)
    assert isinstance(permit, Permit)
    clock.advance(0.3)  # the provider took 0.3 s to answer
    limiter.release(permit)
    clock.advance(1.0)
    assert limiter.try_acquire("chat", Budget(1, 1.0), lease=5.0) == pytest.approx(0.01)
    clock.advance(0.01)
    assert isinstance(limiter.try_acquire("chat", Budget(1, 1.0), lease=5.0), Permit)


def test_a_dead_holders_slot_frees_after_its_lease(store, clock):
    """A permit never released (its process died) frees itself lease + window later."""
    migrate(store)
    limiter = RateLimiter(store, clock=clock)
    assert isinstance(limiter.try_acquire("chat", Budget(1, 1.0), lease=2.0), Permit)
    clock.advance(3.0)
    assert limiter.try_acquire("chat", Budget(1, 1.0), lease=2.0) == pytest.approx(0.01)
    clock.advance(0.01)
    assert isinstance(limiter.try_acquire("chat", Budget(1, 1.0), lease=2.0), Permit)


def test_budget_slots_are_independent(store, clock):
    """With a budget of 3 per second, three permits are granted at once and the fourth waits."""
    migrate(store)
    limiter = RateLimiter(store, clock=clock)
    permits = [limiter.try_acquire("hook", Budget(3, 1.0), lease=1.0) for _ in range(4)]
    assert [isinstance(p, Permit) for p in permits] == [True, True, True, False]
    assert rows(store, "SELECT count(*) FROM notify_rate_slots WHERE channel = 'hook'") == [(3,)]


def test_a_held_slot_is_polled_each_window_not_waited_out_to_its_lease(store, clock):
    """While a send holds the only slot (lease 90 s), another sender is told to look again
    after one window, not after the lease: most sends answer in milliseconds. The slot still
    is not granted before the holder releases it and one window has passed."""
    migrate(store)
    holder = RateLimiter(store, clock=clock)
    permit = holder.try_acquire("chat", Budget(1, 1.0), lease=90.0)
    assert isinstance(permit, Permit)
    assert holder.try_acquire("chat", Budget(1, 1.0), lease=90.0) == pytest.approx(1.0)
    clock.advance(0.2)
    holder.release(permit)
    assert holder.try_acquire("chat", Budget(1, 1.0), lease=90.0) == pytest.approx(1.01)
    clock.advance(1.01)
    assert isinstance(holder.try_acquire("chat", Budget(1, 1.0), lease=90.0), Permit)
