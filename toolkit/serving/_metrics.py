"""The server's Prometheus series: requests, errors and latency by model, endpoint and code, and
the adaptive batcher's batches and queue (``GET /metrics``).

With several worker processes (``toolkit serve --workers N``) a scrape reaches one of them, so
each writes its values where all can read them: prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set by ``toolkit serve`` for its workers), and ``/metrics``
answers the sums over every worker, live or gone (counters and histograms) and over the live
ones (the queue gauge).
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# The request series, (name, help, label names): kept by RequestCounts in one process, by
# prometheus_client's multiprocess values (SharedRequestCounts) across workers.
REQUESTS = ("toolkit_requests", "Requests by model, endpoint and status code", ("model", "endpoint", "code"))
ERRORS = ("toolkit_request_errors", "Requests answered with an error, by model and endpoint", ("model", "endpoint"))
LATENCY = ("toolkit_request_seconds", "Request latency by model and endpoint", ("model", "endpoint"))
LATENCY_BOUNDS = Histogram.DEFAULT_BUCKETS[:-1]  # the finite ones; +Inf counts every request


class RequestCounts:
    """The request series of one process, counted in plain Python and read at each scrape (a
    prometheus_client collector, registered in ``registry``).

    Every request is counted, on the event loop's thread (the only one that counts): 0.3 us a
    request, where prometheus_client's Counter and Histogram take 1.2 us, their values each taking
    a lock as they change. The exposition is theirs, sample for sample (``_total``, ``_bucket``,
    ``_count``, ``_sum`` and ``_created``).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counts: dict[tuple, list] = {}  # (model, endpoint, code) -> [requests, created]
        self.latency: dict[tuple, list] = {}  # (model, endpoint) -> [count in each bucket..., sum, created]
        registry.register(self)

    def observe(self, model: str, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        count = self.counts.get((model, endpoint, code))
        if count is None:
            count = self.counts[(model, endpoint, code)] = [0, time.time()]
        count[0] += 1
        histogram = self.latency.get((model, endpoint))
        if histogram is None:
            histogram = self.latency[(model, endpoint)] = [0] * (len(LATENCY_BOUNDS) + 1) + [0.0, time.time()]
        histogram[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1  # the first bucket whose bound is >= seconds
        histogram[-2] += seconds

    def collect(self) -> Iterator[Metric]:
        """The three families as prometheus_client's Counter and Histogram write them."""
        requests = CounterMetricFamily(*REQUESTS[:2], labels=REQUESTS[2])
        errors, error_counts = CounterMetricFamily(*ERRORS[:2], labels=ERRORS[2]), {}
        for (model, endpoint, code), (count, created) in list(self.counts.items()):
            requests.add_metric((model, endpoint, str(code)), count, created=created)
            if code >= 400:
                total, first = error_counts.get((model, endpoint), (0, created))
                error_counts[(model, endpoint)] = (total + count, min(first, created))
        for labels, (count, created) in error_counts.items():
            errors.add_metric(labels, count, created=created)
        latency = HistogramMetricFamily(*LATENCY[:2], labels=LATENCY[2])
        bounds = [floatToGoString(bound) for bound in (*LATENCY_BOUNDS, math.inf)]
        for labels, histogram in list(self.latency.items()):
            latency.add_metric(labels, list(zip(bounds, itertools.accumulate(histogram[:-2]))), histogram[-2])
            latency.samples.append(Sample(f"{LATENCY[0]}_created", dict(zip(LATENCY[2], labels)), histogram[-1]))
        yield from (requests, errors, latency)


class SharedRequestCounts:
    """The request series in prometheus_client's Counter and Histogram, whose multiprocess mode
    sums them over the workers at each scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(*REQUESTS, registry=registry)
        self.errors = Counter(*ERRORS, registry=registry)
        self.latency = Histogram(*LATENCY, registry=registry)
        self.series: dict[tuple, tuple] = {}  # label children, looked up once per (model, endpoint, code)

    def observe(self, model: str, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        series = self.series.get((model, endpoint, code))
        if series is None:  # labels() validates and looks up on every call: done once per series
            series = self.series[(model, endpoint, code)] = (
                self.requests.labels(model, endpoint, str(code)),
                self.latency.labels(model, endpoint),
                self.errors.labels(model, endpoint) if code >= 400 else None,
            )
        series[0].inc()
        series[1].observe(seconds)
        if series[2] is not None:
            series[2].inc()


class Metrics:
    """Prometheus series of one app (its own registry, so apps in one process do not clash; in
    multiprocess mode, the values of every process writing to ``PROMETHEUS_MULTIPROC_DIR``)."""

    def __init__(self) -> None:
        self._batch_series: dict[str, tuple] = {}  # label children, looked up once per batching model
        self.multiprocess = MULTIPROCESS_VARIABLE in os.environ
        self._batchers: dict[str, object] = {}  # multiprocess: queues whose lengths are written as they change
        self.registry = CollectorRegistry()
        self.requests = SharedRequestCounts(self.registry) if self.multiprocess else RequestCounts(self.registry)
        self.worker_starts = Counter(
            "toolkit_worker_starts",
            "Server processes started: one per worker, and one more each time a worker that died is replaced",
            registry=self.registry,
        )
        self.batches = Counter("toolkit_batches", "Adaptive batches run, by model", ["model"], registry=self.registry)
        self.queued = Gauge(
            "toolkit_queued_requests",
            "Requests waiting in a model's batching queue",
            ["model"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.batch_requests = Histogram(
            "toolkit_batch_requests",
            "Requests per adaptive batch, by model",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )

    def watch_batcher(self, model: str, batcher) -> None:
        """Count a model's batches and expose its queue's length (read at each scrape; in
        multiprocess mode written at each batch and each answer, as no scrape reaches the others)."""
        batcher.on_batch = lambda n_requests: self.record_batch(model, n_requests)
        if self.multiprocess:
            self._batchers[model] = batcher
        else:
            self.queued.labels(model).set_function(lambda: len(batcher.pending))

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of ``GET /metrics``: Prometheus' text format (every worker's sums
        in multiprocess mode)."""
        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def started(self) -> None:
        """This process starts serving: counted, and in multiprocess mode the live gauges of
        workers that died without closing (killed) leave the sums."""
        self.worker_starts.inc()
        if self.multiprocess:
            folder = os.environ[MULTIPROCESS_VARIABLE]
            for path in Path(folder).glob("gauge_live*_*.db"):
                pid = int(path.stem.rsplit("_", 1)[1])
                if not _alive(pid):
                    multiprocess.mark_process_dead(pid, folder)

    def close(self) -> None:
        """This process stops serving: its live gauges leave the multiprocess sums."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())

    def _write_queue(self, model: str) -> None:
        batcher = self._batchers.get(model)
        if batcher is not None:
            self.queued.labels(model).set(len(batcher.pending))

    def record_batch(self, model: str, n_requests: int) -> None:
        series = self._batch_series.get(model)
        if series is None:  # as in observe: the label lookups once per model
            series = self._batch_series[model] = (self.batches.labels(model), self.batch_requests.labels(model))
        series[0].inc()
        series[1].observe(n_requests)
        if self.multiprocess:
            self._write_queue(model)

    def observe(self, model: str, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.observe(model, endpoint, code, seconds)
        if self.multiprocess:
            self._write_queue(model)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
