"""Adaptive batching, like Triton's dynamic batcher: concurrent requests for one model are
stacked along the batch axis into one onnxruntime run, and the outputs split back.

A request waits at most ``max_queue_delay_us`` for others to join it (0: only those already
queued join), and a batch holds at most ``max_batch_size`` rows; while a batch runs on its
thread, the next one gathers. Requests are validated and cast one by one before they queue
(a bad request fails alone); the batch is the concatenation of their prepared arrays. Some of
onnxruntime's kernels round differently at another batch size (float64 GEMMs: the mixture
graph), so the server batches a graph only when a start-up probe finds its answers bit for bit
alike at batch sizes 1 to 8 (``ServedModel.answers_alike_at_any_batch_size``): batching never
changes an answer. More than ``max_queue_size`` requests waiting makes the next one fail fast with
``QueueFull`` (the server answers 503 with Retry-After, as Triton does) instead of growing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np


class QueueFull(Exception):
    """The model's batching queue holds ``max_queue_size`` requests already."""


@dataclass
class Pending:
    feed: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future


@dataclass
class Batcher:
    """One model's queue and the task that runs its batches.

    Parameters
    ----------
    run : callable (feed) -> list of arrays
        Runs the graph on a prepared feed (all outputs, in ``output_names`` order); called on
        a worker thread.
    max_batch_size : int
        Rows per batch at most.
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
    inline_elements: int = 4096
    queue: asyncio.Queue | None = None
    task: asyncio.Task | None = None
    waiting: list = field(default_factory=list)

    async def submit(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Queue one prepared request; its outputs (all of the graph's) once its batch ran."""
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self._serve())
        if self.queue.qsize() >= self.max_queue_size:
            raise QueueFull(f"{self.queue.qsize()} requests are waiting (max_queue_size {self.max_queue_size})")
        rows = len(next(iter(feed.values())))
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(Pending(feed, rows, future))
        return await future

    async def _next_batch(self) -> list[Pending]:
        """The first waiting request, then others until the rows or the delay run out; one that
        would overflow the batch starts the next."""
        loop = asyncio.get_running_loop()
        first = self.waiting.pop() if self.waiting else await self.queue.get()
        batch, rows = [first], first.rows
        deadline = loop.time() + self.max_queue_delay_us / 1e6
        while rows < self.max_batch_size:
            try:
                nxt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            if rows + nxt.rows > self.max_batch_size:
                self.waiting.append(nxt)
                break
            batch.append(nxt)
            rows += nxt.rows
        return batch

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [p for p in await self._next_batch() if not p.future.cancelled()]  # gone clients cost nothing
            if not batch:
                continue
            stacked = {name: np.concatenate([p.feed[name] for p in batch]) for name in batch[0].feed}
            try:
                if sum(value.size for value in stacked.values()) <= self.inline_elements:
                    outputs = self.run(stacked)  # small: the hop to a thread costs more than the run
                else:
                    outputs = await loop.run_in_executor(None, self.run, stacked)
            except Exception as error:  # noqa: BLE001 - every request of the batch gets its error
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            if self.on_batch is not None:
                self.on_batch(len(batch))
            start = 0
            for pending in batch:
                stop = start + pending.rows
                if not pending.future.done():
                    pending.future.set_result([value[start:stop] for value in outputs])
                start = stop
