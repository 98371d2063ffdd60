"""Load: 120 concurrent `resilient-runtime notify` processes sharing one store.

Real processes (``python -m resilient_templates.runtime notify``) start at once; each of 40
failures is reported by 3 of them; failures go to a webhook with a 5/s budget, critical ones
also to Slack at 1/s. At the servers: no 1 s window holds more requests than the budget, and
every incident produced exactly one message. About 35 s per backend on 2 cores.
"""

from __future__ import annotations

import pytest
from notify_scenarios import run_load, summary_line


@pytest.mark.slow
def test_concurrent_processes_keep_rate_limits_and_dedup_exact(store_url, tmp_path):
    """120 processes: never over budget in any 1 s window, one message per incident."""
    result = run_load(store_url, tmp_path, processes=120)
    print("\nload:", summary_line(result))
    assert result.exit_codes == {0: 120}, result.stderr_sample
    assert result.messages == {"chat": 5, "hook": 40}
    assert result.unique_keys == {"chat": 5, "hook": 40}
    assert result.duplicates == 0
    assert result.max_per_window["chat"] <= 1
    assert result.max_per_window["hook"] <= 5
