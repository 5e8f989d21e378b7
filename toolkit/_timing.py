"""Wall-clock timing: the median of repeated calls, shared by ``toolkit run``'s latency column
and the scripts in ``benchmarks/``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(call: Callable[[], T], repeats: int = 1, warmup: int = 0) -> tuple[T, float]:
    """(result of the last call, median wall time in seconds over ``repeats`` calls), after
    ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)
