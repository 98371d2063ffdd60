"""Per-channel send budgets, shared by every runtime process through the state store.

**Guarantee.** A channel with a budget of B messages per window W (``Budget.per_second(rate)``:
Slack 1/s, PagerDuty 2/s, …) never has more than B of its requests *arrive at the provider* in
any window of length W, however many processes send at once, provided every sender holds a
permit (``RateLimiter.try_acquire``) while it sends and each send is shorter than its lease.

**How.** Each channel has B *send slots* in the store. A send takes a free slot before it starts;
the slot stays busy until W after the sender saw the response (``release``), or, if the sender
died, until W after its lease ran out. Proof: if B + 1 requests arrived inside one window of
length W, two of them used the same slot; the later one started at least W after the earlier
one's response, which came after the earlier one arrived, so the two arrivals are at least W
apart, a contradiction.

A token bucket that only spaces the *starts* of requests is not exact at the provider: a
sender that gets its token at t = 0 but is descheduled or slow to connect can arrive at 0.9 s,
just before the next sender's request at 1.0 s. The price of exactness is that each slot waits
for the response, so throughput is B / (W + latency) instead of B / W; for Slack at 1/s and
200 ms latency that is 0.83 messages/s. A provider's 429 blocks the whole channel until its
``Retry-After`` (``block``), for every process: Slack warns that apps that keep posting after a
429 may be disabled.

Clocks: slots hold wall-clock times (``time.time()``). Senders on different nodes must be
NTP-synchronised; ``guard`` (10 ms by default) is added to every busy period to absorb small
skew and timer granularity.

Tables (component ``notify_ratelimit``): ``notify_rate_slots`` and ``notify_rate_blocks``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..store import Store

__all__ = ["Budget", "Permit", "RateLimiter", "migrate"]

_DDL = [
    "CREATE TABLE IF NOT EXISTS notify_rate_slots ("
    " channel TEXT NOT NULL, slot INTEGER NOT NULL, holder TEXT,"
    " busy_until DOUBLE PRECISION NOT NULL, PRIMARY KEY (channel, slot))",
    "CREATE TABLE IF NOT EXISTS notify_rate_blocks ("
    " channel TEXT PRIMARY KEY, blocked_until DOUBLE PRECISION NOT NULL, reason TEXT)",
]


def migrate(store: Store) -> None:
    """Create the rate-limit tables (idempotent)."""
    store.migrate("notify_ratelimit", _DDL)


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``messages`` requests in any window of ``window`` seconds."""

    messages: int
    window: float

    @classmethod
    def per_second(cls, rate: float) -> Budget:
        """The budget for a rate: floor(rate) per second, or one per 1/rate seconds below 1/s."""
        if not rate or rate <= 0 or math.isnan(rate):
            raise ValueError(f"rate_per_second must be > 0, got {rate!r}")
        if rate >= 1:
            return cls(messages=int(math.floor(rate)), window=1.0)
        return cls(messages=1, window=1.0 / rate)


@dataclass(frozen=True, slots=True)
class Permit:
    """A held send slot; give it back with ``RateLimiter.release`` after the response."""

    channel: str
    slot: int
    holder: str
    window: float


class RateLimiter:
    """Acquire and release send slots; every method is one short store transaction."""

    def __init__(
        self,
        store: Store,
        *,
        guard: float = 0.01,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.guard = guard
        self.clock = clock
        self.sleep = sleep

    def try_acquire(self, channel: str, budget: Budget, *, lease: float) -> Permit | float:
        """A permit now, or the number of seconds until one may be free (> 0).

        ``lease`` bounds the send: if the holder never releases, the slot frees itself
        ``lease + window`` after it was taken.
        """
        holder = uuid.uuid4().hex
        with self.store.transaction() as tx:
            tx.lock(f"notify_rate:{channel}")
            now = self.clock()
            row = tx.execute(
                "SELECT blocked_until FROM notify_rate_blocks WHERE channel = ?", (channel,)
            ).fetchone()
            if row and row[0] > now:
                return row[0] - now
            slots = tx.execute(
                "SELECT slot, busy_until, holder FROM notify_rate_slots WHERE channel = ? AND slot < ?",
                (channel, budget.messages),
            ).fetchall()
            busy = {slot: until for slot, until, _ in slots}
            free = [s for s in range(budget.messages) if busy.get(s, 0.0) <= now]
            if not free:
                # A released slot is busy until an exact time; a held one until its lease runs
                # out at the latest, but usually far sooner: look again after one window.
                wake = min(until if holder is None else min(until, now + budget.window)
                           for _, until, holder in slots)  # fmt: skip
                return max(wake - now, 1e-3)
            slot = free[0]
            until = now + lease + budget.window + self.guard
            tx.execute(
                "INSERT INTO notify_rate_slots (channel, slot, holder, busy_until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (channel, slot) DO UPDATE SET holder = excluded.holder, "
                "busy_until = excluded.busy_until",
                (channel, slot, holder, until),
            )
        return Permit(channel=channel, slot=slot, holder=holder, window=budget.window)

    def release(self, permit: Permit) -> None:
        """The response arrived (or the send failed): the slot is busy for one more window."""
        with self.store.transaction() as tx:
            tx.lock(f"notify_rate:{permit.channel}")
            until = self.clock() + permit.window + self.guard
            tx.execute(
                "UPDATE notify_rate_slots SET holder = NULL, busy_until = ? "
                "WHERE channel = ? AND slot = ? AND holder = ?",
                (until, permit.channel, permit.slot, permit.holder),
            )

    def block(self, channel: str, seconds: float, *, reason: str = "429") -> None:
        """Stop every process from sending on ``channel`` for ``seconds`` (a provider's 429)."""
        with self.store.transaction() as tx:
            tx.lock(f"notify_rate:{channel}")
            until = self.clock() + max(0.0, seconds)
            tx.execute(
                "INSERT INTO notify_rate_blocks (channel, blocked_until, reason) VALUES (?, ?, ?) "
                "ON CONFLICT (channel) DO UPDATE SET "
                "blocked_until = CASE WHEN notify_rate_blocks.blocked_until > excluded.blocked_until "
                "THEN notify_rate_blocks.blocked_until ELSE excluded.blocked_until END, "
                "reason = excluded.reason",
                (channel, until, reason),
            )
