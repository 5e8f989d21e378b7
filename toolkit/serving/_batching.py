"""Adaptive batching, like Triton's dynamic batcher: concurrent requests for one model are
stacked along the batch axis into one onnxruntime run, and the outputs split back.

A request waits at most ``max_queue_delay_us`` for others to join it, and a batch holds at most
``max_batch_size`` rows; while a batch runs on a thread, the next one gathers. With no delay,
requests queue and their batch runs on the loop's next turn, after every request parsed in
this one; but under light load (the last batch held one request), a small request that finds
nothing queued runs at once, as unbatched, so that a lone client loses no turn of the event
loop (requests arriving after it in the same turn queue). A transport that takes one call per turn
of the loop (grpc.aio accepts calls one by one) says when other calls of its are in flight: those
requests queue, and their batches run on a thread however small, so that the calls accepted while
one runs gather into the next. Batches are run from loop callbacks,
not a task of their own: a request costs one future and no extra task switch. Requests are validated and cast one by
one before they queue (a bad request fails alone); the batch is the concatenation of their
prepared arrays, and a batch that onnxruntime refuses is run again request by request, so
that only the requests that fail alone get an error. Some of onnxruntime's kernels round
differently at another batch size (float64 GEMMs: the mixture graph), so the server batches
a graph only when a start-up probe finds its answers bit for bit alike at batch sizes 1 to 8
(``ServedModel.batching_problem``): batching never changes an answer. More
than ``max_queue_size`` requests waiting makes the next one fail fast with ``QueueFull`` (the
server answers 503 with Retry-After, as Triton does) instead of growing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import numpy as np

# Runs of at most this many input values go on the event loop itself: for them the hop to a
# worker thread and back (~180 us measured) costs more than the run (~50 us for a digits row).
INLINE_ELEMENTS = 4096


class QueueFull(Exception):
    """The model's batching queue holds ``max_queue_size`` requests already."""


@dataclass(slots=True)
class Pending:
    feed: dict[str, np.ndarray]
    rows: int
    deadline: float
    future: asyncio.Future


@dataclass
class Batcher:
    """One model's queue of requests and the runs of its batches.

    Parameters
    ----------
    run : callable (feed) -> list of arrays
        Runs the graph on a prepared feed (all outputs, in ``output_names`` order); called on
        the event loop for small batches, on a worker thread for others.
    max_batch_size : int
        Rows per batch at most (a request of more rows runs alone).
    max_queue_delay_us : int
        How long the first request of a batch waits for others, in microseconds.
    max_queue_size : int
        Requests waiting at most; beyond, ``submit`` raises QueueFull.
    on_batch : callable (n_requests), optional
        Told of every batch run (the server's metrics).
    inline_elements : int
        Batches of at most this many input values run on the event loop itself (the hop to
        a worker thread costs more than running them); larger ones on a thread.
    """

    run: object
    max_batch_size: int
    max_queue_delay_us: int
    max_queue_size: int
    on_batch: object | None = None
    inline_elements: int = INLINE_ELEMENTS
    pending: deque = field(default_factory=deque)
    pending_rows: int = 0
    scheduled: asyncio.Handle | None = None  # the next batch's start
    running: bool = False  # a batch is on a worker thread
    ran_this_turn: bool = False  # a request ran at once in this turn of the event loop
    last_batch_requests: int = 1
    offload: bool = False  # small batches go to a thread too: calls arrive one per turn, and gather meanwhile

    async def submit(self, feed: dict[str, np.ndarray], *, concurrent: bool = False) -> list[np.ndarray]:
        """Queue one prepared request; its outputs (all of the graph's) once its batch ran.
        ``concurrent``: the request's transport has other calls in flight, which reach the loop
        one per turn (gRPC): it waits for its batch on a thread, which they can join meanwhile."""
        if len(self.pending) >= self.max_queue_size:
            raise QueueFull(f"{len(self.pending)} requests are waiting (max_queue_size {self.max_queue_size})")
        loop = asyncio.get_running_loop()
        self.offload = concurrent
        alone = not concurrent and self.last_batch_requests == 1
        alone = alone and not (self.pending or self.running or self.ran_this_turn)
        if alone and not self.max_queue_delay_us:
            if sum(value.size for value in feed.values()) <= self.inline_elements:
                return self._run_now(loop, feed)
        rows = len(next(iter(feed.values())))
        pending = Pending(feed, rows, loop.time() + self.max_queue_delay_us / 1e6, loop.create_future())
        self.pending.append(pending)
        self.pending_rows += rows
        if not self.running:
            full = self.pending_rows >= self.max_batch_size
            if full and isinstance(self.scheduled, asyncio.TimerHandle):
                self.scheduled.cancel()  # a full batch does not wait out the delay
                self.scheduled = None
            if self.scheduled is None:
                self._schedule(loop, now=full)
        return await pending.future

    def _run_now(self, loop: asyncio.AbstractEventLoop, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run a request that finds nothing queued at once: no turn of the loop lost. Requests that
        arrive later in the same turn (concurrent ones) queue, to be batched on the next."""
        self.ran_this_turn = True
        loop.call_soon(self._next_turn)
        if self.on_batch is not None:
            self.on_batch(1)
        return self.run(feed)

    def _next_turn(self) -> None:
        self.ran_this_turn = False

    def _schedule(self, loop: asyncio.AbstractEventLoop, now: bool = False) -> None:
        """Start the next batch on the loop's next turn, or when its oldest request's wait ends."""
        delay = 0.0 if now else self.pending[0].deadline - loop.time()
        if delay > 0:
            self.scheduled = loop.call_later(delay, self._start, loop)
        else:
            self.scheduled = loop.call_soon(self._start, loop)

    def _take(self) -> list[Pending]:
        """The oldest waiting requests, up to ``max_batch_size`` rows (the first one whatever its
        rows); those whose client went away are dropped: they cost nothing."""
        batch, rows = [], 0
        while self.pending and (not batch or rows + self.pending[0].rows <= self.max_batch_size):
            pending = self.pending.popleft()
            self.pending_rows -= pending.rows
            if not pending.future.cancelled():
                batch.append(pending)
                rows += pending.rows
        return batch

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.scheduled = None
        batch = self._take()
        if batch:
            small = sum(value.size for pending in batch for value in pending.feed.values()) <= self.inline_elements
            if small and not self.offload:
                self._finish(batch, self._answers(batch))  # small: the hop to a thread costs more than the run
            else:
                self.running = True
                done = loop.run_in_executor(None, self._answers, batch)
                done.add_done_callback(lambda future: self._after_thread(loop, batch, future))
                return
        self._schedule_waiting(loop)

    def _after_thread(self, loop: asyncio.AbstractEventLoop, batch: list[Pending], done: asyncio.Future) -> None:
        self.running = False
        self._finish(batch, done.result())
        self._schedule_waiting(loop)

    def _schedule_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        """After a batch: start the next for the requests still waiting (at once when they fill one)."""
        if self.pending and self.scheduled is None:
            self._schedule(loop, now=self.pending_rows >= self.max_batch_size)

    def _answers(self, batch: list[Pending]) -> list:
        """Each request's outputs, or the exception its run raised. Requests whose other axes
        differ (sequences of several lengths) cannot be stacked: they run one by one too."""
        if len(batch) == 1:
            return [self._run_alone(batch[0])]
        try:
            outputs = self.run({name: np.concatenate([p.feed[name] for p in batch]) for name in batch[0].feed})
        except Exception:  # noqa: BLE001 - run each alone: only the requests at fault get an error
            return [self._run_alone(pending) for pending in batch]
        answers, start = [], 0
        for pending in batch:
            answers.append([value[start : start + pending.rows] for value in outputs])
            start += pending.rows
        return answers

    def _run_alone(self, pending: Pending) -> list[np.ndarray] | Exception:
        try:
            return self.run(pending.feed)
        except Exception as error:  # noqa: BLE001 - handed to the request's future
            return error

    def _finish(self, batch: list[Pending], answers: list) -> None:
        self.last_batch_requests = len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch))
        for pending, answer in zip(batch, answers):
            if pending.future.done():  # the client went away meanwhile
                continue
            if isinstance(answer, Exception):
                pending.future.set_exception(answer)
            else:
                pending.future.set_result(answer)
