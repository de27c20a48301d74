"""Timing helper shared by the bench scripts (run as ``python bench/NAME.py``)."""

from __future__ import annotations

import time
from typing import Callable


def best_time(fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Shortest of ``repeat`` timings of ``fn()`` on ``clock`` (wall time by default;
    ``time.process_time`` for CPU time)."""
    best = float("inf")
    for _ in range(repeat):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return best
