"""Timing shared by the benchmarks: contenders that take turns, so a machine whose speed drifts moves them alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def together(*works: Callable[[], object], runs: int) -> list[float]:
    """The median seconds of each of `works`: each run once to warm up, then `runs` rounds of one run of each."""
    for work in works:
        work()
    times: list[list[float]] = [[] for _ in works]
    for _ in range(runs):
        for work, kept in zip(works, times, strict=True):
            started = time.perf_counter()
            work()
            kept.append(time.perf_counter() - started)
    return [statistics.median(kept) for kept in times]
