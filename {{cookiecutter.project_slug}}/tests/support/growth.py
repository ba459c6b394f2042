"""How a call's time grows with its input, in one run: a linearity check that is not a wall clock.

The same call is timed at a size and at four times that size, interleaved and the best of several
rounds each, so load on a shared machine slows both sides alike. Linear work takes ~4x as long,
quadratic work ~16x: ``LINEAR_LIMIT`` sits between them, far from both.
"""

from __future__ import annotations

import time
from collections.abc import Callable

FACTOR = 4
LINEAR_LIMIT = 9.0  # 4x expected for linear work, 16x for quadratic


def interleaved_best(calls: dict[int, Callable[[], object]], rounds: int) -> list[float]:
    """Best seconds of each call, every size timed in every round: load hits all sizes alike."""
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for size, call in calls.items():
            start = time.perf_counter()
            call()
            best[size] = min(best[size], time.perf_counter() - start)
    return list(best.values())


def growth(call_at: Callable[[int], Callable[[], object]], small: int, rounds: int = 5) -> float:
    """Best time at ``FACTOR * small`` over best time at ``small``; ``call_at(n)`` builds the call."""
    at_small, at_large = interleaved_best(
        {small: call_at(small), FACTOR * small: call_at(FACTOR * small)}, rounds
    )
    return at_large / at_small
