"""The server's Prometheus series: requests, errors and latency by model, endpoint and code, and
the adaptive batcher's batches and queue (``GET /metrics``).

With several worker processes (``toolkit serve --workers N``) a scrape reaches one of them, so
each writes its values where all can read them: prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set by ``toolkit serve`` for its workers), and ``/metrics``
answers the sums over every worker, live or gone (counters and histograms) and over the live
ones (the queue gauge).
"""

from __future__ import annotations

import os
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

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """Prometheus series of one app (its own registry, so apps in one process do not clash; in
    multiprocess mode, the values of every process writing to ``PROMETHEUS_MULTIPROC_DIR``)."""

    def __init__(self) -> None:
        self._series: dict[tuple, tuple] = {}  # label children, looked up once per (model, endpoint, code)
        self._batch_series: dict[str, tuple] = {}  # and per batching model
        self.multiprocess = MULTIPROCESS_VARIABLE in os.environ
        self._batchers: dict[str, object] = {}  # multiprocess: queues whose lengths are written as they change
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "toolkit_requests",
            "Requests by model, endpoint and status code",
            ["model", "endpoint", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "toolkit_request_errors",
            "Requests answered with an error, by model and endpoint",
            ["model", "endpoint"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "toolkit_request_seconds",
            "Request latency by model and endpoint",
            ["model", "endpoint"],
            registry=self.registry,
        )

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
        series = self._series.get((model, endpoint, code))
        if series is None:  # labels() validates and looks up on every call: done once per series
            series = self._series[(model, endpoint, code)] = (
                self.requests.labels(model, endpoint, str(code)),
                self.latency.labels(model, endpoint),
                self.errors.labels(model, endpoint) if code >= 400 else None,
            )
        series[0].inc()
        series[1].observe(seconds)
        if series[2] is not None:
            series[2].inc()
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
