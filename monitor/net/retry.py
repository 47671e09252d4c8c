"""The one back-off ladder: requests, release pages and alert deliveries all wait by it."""

from __future__ import annotations


def backoff(first: float, attempt: int, cap: float) -> float:
    """The wait after failed try number ``attempt`` (1, 2, ...): ``first`` doubling, at most ``cap``."""
    return min(cap, first * 2.0 ** min(max(attempt - 1, 0), 60))


# A retry time further ahead than the longest wait by this much (seconds) was set by a clock
# that ran ahead and came back: it is due now, not next year.
CLOCK_SLACK = 3600.0
