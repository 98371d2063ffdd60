"""Deadlines at three levels, and the check that a retry schedule fits inside them.

=========  ================================================  ===================================
level      meaning                                           Argo primitive
=========  ================================================  ===================================
attempt    one try of a stage (``Retry.attempt_timeout``)    template ``activeDeadlineSeconds``
stage      all attempts and waits, from the first start      ``retryStrategy.backoff.maxDuration``
           (``Retry.budget``)
workflow   the whole run; exit handlers are exempt           ``spec.activeDeadlineSeconds``
           (``Pipeline.deadline``)
=========  ================================================  ===================================
"""

from __future__ import annotations

from ..errors import ScheduleError
from .duration import Duration
from .retry import Retry

__all__ = ["check_fits"]


def check_fits(retry: Retry, *, where: str = "stage") -> None:
    """Refuse a schedule whose worst case cannot finish within the stage budget.

    Worst case: every attempt runs to its attempt timeout and every wait to its ceiling.
    Without an attempt timeout only the waits are checked (attempts are unbounded).
    """
    if retry.budget is None:
        return
    waits = Duration(0)
    for delay in retry.schedule():
        waits = waits + delay
    worst = retry.worst_case()
    if waits > retry.budget:
        raise ScheduleError(
            f"{where}: the waits alone take {waits} ({_list(retry)}) but the stage budget is "
            f"{retry.budget}; lower max_attempts or the delays, or raise the budget"
        )
    if worst is not None and worst > retry.budget:
        raise ScheduleError(
            f"{where}: the retry schedule needs up to {worst} "
            f"({retry.max_attempts} attempts x {retry.attempt_timeout} + waits {waits}) "
            f"but the stage budget is {retry.budget}; lower max_attempts or the attempt "
            "timeout, or raise the budget"
        )


def _list(retry: Retry) -> str:
    return ", ".join(str(d) for d in retry.schedule())
