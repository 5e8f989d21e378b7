"""The adaptive batcher on its own: how requests group into runs, what each gets back, and
how a failing request, a full batch, a delay and a full queue are handled."""

import asyncio
import threading
import time

import numpy as np
import pytest

from toolkit.serving._batching import Batcher, QueueFull


class Graph:
    """A stand-in for a session: doubles X, records the rows of every run, refuses rows of -1.
    With ``hold``, each run signals ``running`` and waits until ``release`` is set."""

    def __init__(self, hold: bool = False) -> None:
        self.runs: list[int] = []
        self.hold = hold
        self.running, self.release = threading.Event(), threading.Event()

    def __call__(self, feed):
        X = feed["X"]
        self.runs.append(len(X))
        if self.hold:
            self.running.set()
            assert self.release.wait(30), "the test never released the run"
        if (X == -1).any():
            raise ValueError("a row of -1")
        return [X * 2, X.sum(axis=tuple(range(1, X.ndim)))]


def ask_all(batcher: Batcher, feeds: list[dict]) -> list:
    async def go():
        return await asyncio.gather(*(batcher.submit(feed) for feed in feeds), return_exceptions=True)

    return asyncio.run(go())


def rows(*values, width=3):
    return [{"X": np.full((1, width), v, dtype=np.float32)} for v in values]


def test_concurrent_requests_share_runs_of_at_most_max_batch_size_and_each_gets_its_rows():
    graph = Graph()
    feeds = rows(*range(20)) + [{"X": np.arange(12, dtype=np.float32).reshape(4, 3)}]
    answers = ask_all(Batcher(graph, max_batch_size=8, max_queue_delay_us=0, max_queue_size=100), feeds)
    for feed, (doubled, sums) in zip(feeds, answers):
        np.testing.assert_array_equal(doubled, feed["X"] * 2)
        np.testing.assert_array_equal(sums, feed["X"].sum(axis=1))
    assert sum(graph.runs) == 24 and max(graph.runs) <= 8 and len(graph.runs) < len(feeds)


def test_a_request_the_graph_refuses_fails_alone_and_its_batch_mates_are_answered():
    graph = Graph()
    feeds = rows(1, 2, -1, 4)
    answers = ask_all(Batcher(graph, max_batch_size=8, max_queue_delay_us=1000, max_queue_size=100), feeds)
    assert isinstance(answers[2], ValueError) and "a row of -1" in str(answers[2])
    for index in (0, 1, 3):
        np.testing.assert_array_equal(answers[index][0], feeds[index]["X"] * 2)
    assert graph.runs[0] == 4  # tried together first, then one by one
    assert graph.runs[1:] == [1, 1, 1, 1]


def test_without_delay_a_lone_request_runs_at_once_and_concurrent_ones_after_it_batch():
    graph = Graph()
    batcher = Batcher(graph, max_batch_size=8, max_queue_delay_us=0, max_queue_size=100)

    async def one_by_one():  # each in a turn of the loop of its own, as a server's requests under light load
        for feed in rows(1, 2, 3):
            await asyncio.sleep(0)
            ask = asyncio.ensure_future(batcher.submit(feed))
            await asyncio.sleep(0)
            assert ask.done() and batcher.scheduled is None  # answered in its first step: nothing scheduled

    asyncio.run(one_by_one())
    assert graph.runs == [1, 1, 1]
    answers = ask_all(batcher, rows(*range(8)))
    assert [float(a[0][0, 0]) for a in answers] == [2.0 * v for v in range(8)]
    assert graph.runs[3:] == [1, 7]  # the first at once, the seven after it in that turn together


def test_requests_whose_other_axes_differ_are_run_one_by_one():
    graph = Graph()
    feeds = rows(1, 2, width=3) + rows(3, width=5)
    answers = ask_all(Batcher(graph, max_batch_size=8, max_queue_delay_us=0, max_queue_size=100), feeds)
    for feed, (doubled, _) in zip(feeds, answers):
        np.testing.assert_array_equal(doubled, feed["X"] * 2)


def test_a_lone_request_waits_out_the_delay_and_a_full_batch_does_not():
    async def lone():
        batcher = Batcher(Graph(), max_batch_size=8, max_queue_delay_us=60_000, max_queue_size=100)
        started = time.perf_counter()
        await batcher.submit(rows(1)[0])
        return time.perf_counter() - started

    assert asyncio.run(lone()) >= 0.055

    async def full():
        batcher = Batcher(Graph(), max_batch_size=4, max_queue_delay_us=10_000_000, max_queue_size=100)
        started = time.perf_counter()
        await asyncio.gather(*(batcher.submit(feed) for feed in rows(1, 2, 3, 4)))
        return time.perf_counter() - started

    assert asyncio.run(full()) < 5  # not the 10 s delay


def test_batches_on_worker_threads_gather_the_next_batch_meanwhile():
    graph = Graph(hold=True)
    batcher = Batcher(graph, max_batch_size=64, max_queue_delay_us=0, max_queue_size=100, inline_elements=0)
    seen = []
    batcher.on_batch = seen.append

    async def go():
        first = asyncio.ensure_future(batcher.submit(rows(0)[0]))
        await asyncio.to_thread(graph.running.wait, 30)  # the first batch is running on its thread
        rest = [asyncio.ensure_future(batcher.submit(feed)) for feed in rows(*range(1, 11))]
        await asyncio.sleep(0)  # the ten queue behind the running batch
        graph.release.set()
        return [await first, *(await asyncio.gather(*rest))]

    answers = asyncio.run(go())
    assert [float(a[0][0, 0]) for a in answers] == [2.0 * v for v in range(11)]
    assert seen == [1, 10] and graph.runs == [1, 10]


def test_concurrent_requests_arriving_one_per_turn_gather_while_a_small_batch_runs_on_a_thread():
    # gRPC's case: grpc.aio hands the loop one call per turn, so inline runs would never batch
    graph = Graph(hold=True)
    batcher = Batcher(graph, max_batch_size=64, max_queue_delay_us=0, max_queue_size=100)
    seen = []
    batcher.on_batch = seen.append

    async def go():
        first = asyncio.ensure_future(batcher.submit(rows(0)[0], concurrent=True))
        await asyncio.to_thread(graph.running.wait, 30)  # small, yet on a thread: the loop goes on
        rest = []
        for feed in rows(*range(1, 6)):  # one per turn of the loop
            rest.append(asyncio.ensure_future(batcher.submit(feed, concurrent=True)))
            await asyncio.sleep(0)
        graph.release.set()
        return [await first, *(await asyncio.gather(*rest))]

    answers = asyncio.run(go())
    assert [float(a[0][0, 0]) for a in answers] == [2.0 * v for v in range(6)]
    assert seen == [1, 5] and graph.runs == [1, 5]
    # the same arrivals without the hint run at once, each alone, on the loop
    graph = Graph()
    batcher = Batcher(graph, max_batch_size=64, max_queue_delay_us=0, max_queue_size=100)

    async def one_per_turn():
        for feed in rows(*range(6)):
            await batcher.submit(feed)
            await asyncio.sleep(0)

    asyncio.run(one_per_turn())
    assert graph.runs == [1] * 6


def test_a_full_queue_refuses_at_once():
    async def go():
        batcher = Batcher(Graph(), max_batch_size=64, max_queue_delay_us=1_000_000, max_queue_size=3)
        waiting = [asyncio.ensure_future(batcher.submit(feed)) for feed in rows(1, 2, 3)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull, match="3 requests are waiting"):
            await batcher.submit(rows(4)[0])
        for task in waiting:
            task.cancel()

    asyncio.run(go())


def test_only_graphs_whose_outputs_have_fixed_axes_besides_the_batch_are_batchable():
    from types import SimpleNamespace

    from toolkit.serving._repository import ServedModel

    def served(*output_shapes):
        outputs = [SimpleNamespace(name=f"y{i}", shape=list(shape)) for i, shape in enumerate(output_shapes)]
        session = SimpleNamespace(get_outputs=lambda: outputs)
        inputs = [{"name": "X", "shape": [None, 3], "dtype": "float32"}]
        model = SimpleNamespace(inputs=inputs, outputs={o.name: {} for o in outputs}, session=session)
        return ServedModel("m", model)

    assert served(["N", 10], ["N"]).batchable
    assert not served(["N", "steps"]).batchable  # its length could be the whole batch's
    assert not served([1, 10]).batchable  # no batch axis
