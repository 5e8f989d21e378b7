"""Wall-clock timing shared by the benchmark scripts (imported as a sibling module: the scripts run
as ``python benchmarks/<name>.py``, which puts this folder on sys.path). ``timed`` is the
package's own, which ``toolkit run``'s latency column uses too."""

from __future__ import annotations

import statistics
import time

from toolkit._timing import timed

__all__ = ["interleaved_ms", "timed"]


def interleaved_ms(calls, rounds: int = 7, per_round: int = 500) -> list[float]:
    """Median over rounds of the mean time per call (ms) of each of ``calls``, the rounds
    interleaved so that drift in the machine's speed hits every call alike (50 untimed calls
    open each round)."""
    times = [[] for _ in calls]
    for _ in range(rounds):
        for call, spent in zip(calls, times):
            for _ in range(50):
                call()
            started = time.perf_counter()
            for _ in range(per_round):
                call()
            spent.append((time.perf_counter() - started) / per_round * 1e3)
    return [statistics.median(spent) for spent in times]
