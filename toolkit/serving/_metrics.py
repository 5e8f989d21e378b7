"""The server's Prometheus series: requests, errors and latency by model, endpoint and code, and
the adaptive batcher's batches and queue (``GET /metrics``)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Prometheus series of one app (its own registry, so apps in one process do not clash)."""

    def __init__(self) -> None:
        self._series: dict[tuple, tuple] = {}
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

        self.batches = Counter("toolkit_batches", "Adaptive batches run, by model", ["model"], registry=self.registry)
        self.queued = Gauge(
            "toolkit_queued_requests", "Requests waiting in a model's batching queue", ["model"], registry=self.registry
        )
        self.batch_requests = Histogram(
            "toolkit_batch_requests",
            "Requests per adaptive batch, by model",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )

    def watch_batcher(self, model: str, batcher) -> None:
        """Count a model's batches and expose its queue's length."""
        batcher.on_batch = lambda n_requests: self.record_batch(model, n_requests)
        self.queued.labels(model).set_function(lambda: len(batcher.pending))

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of ``GET /metrics``: Prometheus' text format."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def record_batch(self, model: str, n_requests: int) -> None:
        self.batches.labels(model).inc()
        self.batch_requests.labels(model).observe(n_requests)

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
