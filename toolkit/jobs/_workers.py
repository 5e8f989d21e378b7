"""Where ``toolkit run``'s pipelines run: in this process one at a time, or in a pool of
spawned worker processes; on Ctrl-C the pool ends its own workers (and no other child of the
process)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from toolkit._cpu_budget import cpu_budget, torch_threads
from toolkit.jobs._outcome import Outcome

PIPELINE_THREADS = 1
"""torch threads per pipeline unless ``--threads`` says otherwise. These nets are small: a second
thread shortens a pipeline run alone on an idle machine by 0-25 % (digits_vae on 2 cores: 29.8 s
with two, 34.8 s with one), but once other work shares the cores, torch's OpenMP threads spin
while they wait for a descheduled sibling, and the same run takes 3-6x as long (159.5 s with two
threads against 56.0 s with one, beside 2 CPU-bound processes: benchmarks/cpu_load.py). The budget
decides instead how many pipelines run at once."""


PIPELINE_MEMORY = 1.5 * 2**30
"""Memory a pipeline's worker may take at its peak: the largest in a quick ``toolkit run`` reached
1.46 GB."""


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    """Bytes of memory available for new work (``MemAvailable``); None where the file does not say."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_jobs(threads: int = PIPELINE_THREADS) -> int:
    """Pipelines run at a time: as many as the CPU budget (``toolkit._cpu_budget``: the CPUs this
    process may use, not the host's) holds at ``threads`` torch threads each, and no more than
    the available memory holds at :data:`PIPELINE_MEMORY` each; at least one."""
    jobs = cpu_budget().threads // threads
    memory = available_memory()
    if memory is not None:
        jobs = min(jobs, int(memory // PIPELINE_MEMORY))
    return max(1, jobs)


class InProcess:
    """The executor of a run of one job at a time: each job runs in this process, inside
    ``submit`` (as the run did before it had workers)."""

    def submit(self, function, *args, **kwargs) -> Future:
        future = Future()
        future.set_result(function(*args, **kwargs))
        return future

    def stop(self) -> None:
        """Nothing runs outside ``submit``."""


def job_outcome(name: str, future: Future) -> Outcome:
    """A finished job's row; a FAIL row naming the cause when its worker process died (killed
    for memory, a crash in native code), which takes the pool and the jobs after it down too."""
    try:
        return future.result()
    except BrokenProcessPool as error:
        return Outcome(name, problem=f"the worker process running {name} died ({error})")


def start_worker(threads: int, pids) -> None:
    """A worker process's set-up: its pid reported on ``pids`` (so that the pool can end it),
    torch's threads, no progress bars (two workers' bars would garble each other; the start
    and result lines remain), and SIGINT left to the parent, which stops the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pids.put(os.getpid())
    os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TQDM_DISABLE="1")
    set_torch_threads(threads)


def set_torch_threads(threads: int) -> None:
    """torch's intra-op threads (when torch is installed: the base install has none)."""
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)


class WorkerPool:
    """``jobs`` spawned worker processes (no fork of a process that may hold torch's threads),
    each with ``threads`` of the cores, that run jobs with ``submit``; :meth:`stop` ends them."""

    def __init__(self, jobs: int, threads: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pids = context.SimpleQueue()
        self._workers: set[int] = set()
        self._executor = ProcessPoolExecutor(
            jobs, mp_context=context, initializer=start_worker, initargs=(threads, self._pids)
        )

    def submit(self, function, *args, **kwargs) -> Future:
        return self._executor.submit(function, *args, **kwargs)

    def worker_pids(self) -> set[int]:
        """The pids of the workers started so far."""
        while not self._pids.empty():
            self._workers.add(self._pids.get())
        return set(self._workers)

    def stop(self) -> None:
        """Cancel the jobs not started and end the workers' processes (a job cut short loses
        nothing: exports are written atomically): this pool's own, never another child of the
        process."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        for pid in self.worker_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def job_executor(jobs: int, threads: int = PIPELINE_THREADS):
    """(executor, slots): in this process for one job at a time, with ``threads`` torch threads
    (torch's own count restored after), else a :class:`WorkerPool` of ``jobs`` workers of
    ``threads`` each."""
    if jobs <= 1:
        with torch_threads(threads):
            yield InProcess(), 1
        return
    pool = WorkerPool(jobs, threads)
    try:
        yield pool, jobs
    finally:
        pool.close()
