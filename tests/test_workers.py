"""``toolkit serve --workers N``: each worker its own sessions and batcher, and one set of metrics
that adds up whichever worker a scrape reaches (prometheus_client's multiprocess mode)."""

import re
import warnings

import httpx
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning

from tests._server import metric, start_server, stop_server
from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export

REQUESTS = 60


def test_metrics_of_two_workers_add_up_whichever_worker_a_scrape_reaches(tmp_path, monkeypatch):
    data = load_breast_cancer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier((8,), max_epochs=2, random_state=0).fit(data.data, data.target)
    export(model, tmp_path / "models" / "cancer")
    folder = tmp_path / "metrics"
    folder.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))  # toolkit serve keeps a folder it is given
    process, client = start_server(tmp_path / "models", tmp_path / "serve.log", "--workers", "2", "--quiet")
    rows = data.data[:1].astype(np.float32)
    body = {"inputs": [{"name": "X", "shape": [1, 30], "datatype": "FP32", "data": rows.ravel().tolist()}]}
    try:
        for _ in range(REQUESTS):  # a connection each: the kernel hands them to either worker
            with httpx.Client(base_url=client.base_url, timeout=30) as own:
                assert own.post("/v2/models/cancer/infer", json=body).status_code == 200
        pids = {re.fullmatch(r"counter_(\d+)\.db", path.name).group(1) for path in folder.glob("counter_*.db")}
        assert len(pids) == 2, f"one worker answered every request ({pids}): the test proves nothing"
        for _ in range(6):  # each scrape on its own connection, so both workers answer some
            with httpx.Client(base_url=client.base_url, timeout=30) as own:
                text = own.get("/metrics").text
            assert metric(text, 'toolkit_requests_total{code="200",endpoint="infer",model="cancer"}') == REQUESTS
            assert metric(text, 'toolkit_request_seconds_count{endpoint="infer",model="cancer"}') == REQUESTS
            assert metric(text, 'toolkit_batch_requests_sum{model="cancer"}') == REQUESTS  # every request in a batch
            assert metric(text, 'toolkit_queued_requests{model="cancer"}') == 0
    finally:
        stop_server(process, client)
