"""Chaos: 1,000 notifications while 30 % of provider requests fail → ≥ 99.9 % delivered, no
duplicates at the providers.

Faults (drawn per request by each server's seeded RNG): connection dropped before the
provider processed the request, 500, 429 with ``Retry-After: 0.05`` (scaled down from
seconds so the run stays short), and a slow answer within the client timeout. Faults that
make the provider process a request the sender never hears about (``drop_after``, a slow
answer beyond the timeout) are the documented at-least-once window and are tested in
test_notify_deliver.py / test_notify_crash.py, not counted here. Real clock; bounded by a
time limit; the p99 latency is printed, not asserted.
"""

from __future__ import annotations

from notify_scenarios import run_chaos, summary_line


def test_chaos_delivers_with_30_percent_faults_and_no_duplicates(store_url):
    """1,000 notifications under 30 % injected faults: ≥ 99.9 % delivered, 0 duplicates."""
    result = run_chaos(store_url, notifications=1000, fault_rate=0.30)
    print("\nchaos:", summary_line(result))
    assert 0.25 <= result.faulted_requests / result.requests  # the faults really happened
    assert result.delivered_ratio >= 0.999
    assert result.delivered_at_servers >= 999
    assert result.duplicates == 0
