"""The request series of one server process (toolkit/serving/_metrics.py's RequestCounts, plain
Python read at each scrape) are exposed exactly as prometheus_client's Counter and Histogram expose
them (SharedRequestCounts, which the workers of a multi-process server write)."""

import re

from prometheus_client import CollectorRegistry, generate_latest

from toolkit.serving._metrics import LATENCY_BOUNDS, RequestCounts, SharedRequestCounts

# (model, endpoint, code, seconds): bucket bounds hit exactly, beyond the last bound, errors of
# several codes for one (model, endpoint), series of another model and of no model
OBSERVATIONS = [
    ("m", "infer", 200, 0.002),
    ("m", "infer", 400, 0.02),
    ("m", "infer", 200, 11.0),
    ("m", "infer", 404, LATENCY_BOUNDS[0]),
    ("m", "infer", 200, LATENCY_BOUNDS[3] + 1e-9),
    ("x", "ready", 503, LATENCY_BOUNDS[-1]),
    ("", "server", 200, 0.1),
    ("m", "infer", 400, 0.0),
]


def exposition(kind) -> str:
    registry = CollectorRegistry()
    series = kind(registry)
    for observation in OBSERVATIONS:
        series.observe(*observation)
    text = generate_latest(registry).decode()
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 <time>", text)  # when each series began differs


def test_one_process_exposes_what_prometheus_clients_counter_and_histogram_expose():
    ours = exposition(RequestCounts)
    assert ours == exposition(SharedRequestCounts)
    assert 'toolkit_request_errors_total{endpoint="infer",model="m"} 3.0' in ours
    assert 'toolkit_request_seconds_bucket{endpoint="infer",le="0.005",model="m"} 3.0' in ours
    assert 'toolkit_request_seconds_bucket{endpoint="infer",le="+Inf",model="m"} 6.0' in ours
