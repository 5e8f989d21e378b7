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

from toolkit._cpu_budget import cpu_budget
from toolkit.jobs._outcome import Outcome


def default_jobs() -> int:
    """Pipelines run at a time: two where the CPU budget (``toolkit._cpu_budget``: the CPUs this
    process may use, not the host's) has two threads or more. Their nets are small, and torch
    uses a second thread on one poorly: on 2 cores, two pipelines of one thread each finish
    sooner than one after the other with two threads each (shapes_captioning + digits_ddpm:
    155 s of CPU with one thread, 221 s with two)."""
    return 2 if cpu_budget().threads >= 2 else 1


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


def set_torch_threads(threads: int, at_most: bool = False) -> None:
    """torch's intra-op threads (when torch is installed: the base install has none); ``at_most``:
    never more than torch's own default (one per physical core, which the budget, counting
    logical CPUs, may exceed)."""
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(min(threads, torch.get_num_threads()) if at_most else threads)


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
def job_executor(jobs: int):
    """(executor, slots): in this process for one job at a time, with torch's threads at most the
    CPU budget (torch's default counts the host's cores), else a :class:`WorkerPool` of ``jobs``
    workers, each with its share of the budget."""
    threads = cpu_budget().threads
    if jobs <= 1:
        set_torch_threads(threads, at_most=True)
        yield InProcess(), 1
        return
    pool = WorkerPool(jobs, threads=max(1, threads // jobs))
    try:
        yield pool, jobs
    finally:
        pool.close()
