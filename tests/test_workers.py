"""``toolkit serve --workers N``: each worker its own sessions and batcher, one set of metrics that
adds up whichever worker a scrape reaches (prometheus_client's multiprocess mode), and one
repository state: a load or unload holds on every worker once it is answered, and a worker that
dies comes back serving the current models."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import psutil
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning

from tests._server import metric, start_server, stop_server
from toolkit.mixture import GaussianMixture
from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export
from toolkit.serving import OnnxModel
from toolkit.serving._repository import RECHECK_SECONDS

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
        workers = answers_by_worker(folder, "infer", "cancer")
        assert len(workers) == 2, f"one worker answered every request ({workers}): the test proves nothing"
        for _ in range(6):  # each scrape on its own connection, so both workers answer some
            with httpx.Client(base_url=client.base_url, timeout=30) as own:
                text = own.get("/metrics").text
            assert metric(text, 'toolkit_requests_total{code="200",endpoint="infer",model="cancer"}') == REQUESTS
            assert metric(text, 'toolkit_request_seconds_count{endpoint="infer",model="cancer"}') == REQUESTS
            assert metric(text, 'toolkit_batch_requests_sum{model="cancer"}') == REQUESTS  # every request in a batch
            assert metric(text, 'toolkit_queued_requests{model="cancer"}') == 0
    finally:
        stop_server(process, client)


# ---------------------------------------------------------------- one repository state (issue: workers)
PROBES = 100


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Two exports of breast-cancer MLPs (answers that differ) and a wine mixture, made once."""
    root = tmp_path_factory.mktemp("worker_exports")
    data = load_breast_cancer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for seed in (0, 1):
            model = MLPClassifier((8,), max_epochs=2, random_state=seed).fit(data.data, data.target)
            export(model, root / f"cancer_{seed}")
    export(GaussianMixture(2, random_state=0).fit(load_wine().data), root / "wine")
    return root


def serve_two_workers(exports, tmp_path, monkeypatch, *options):
    """``toolkit serve --workers 2`` on a repository of cancer (seed 0) and wine; (process,
    client, repository folder, metrics folder)."""
    repository = tmp_path / "models"
    repository.mkdir()
    shutil.copytree(exports / "cancer_0", repository / "cancer")
    shutil.copytree(exports / "wine", repository / "wine")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics))
    process, client = start_server(repository, tmp_path / "serve.log", "--workers", "2", "--quiet", *options)
    # start_server returns once one worker answers; the other may still be starting (a test that
    # killed it then would wait for a third start that never comes)
    deadline = time.time() + 60
    while metric(client.get("/metrics").text, "toolkit_worker_starts_total", 0.0) < 2:
        assert time.time() < deadline, "the second worker did not start"
        time.sleep(0.1)
    return process, client, repository, metrics


def concurrently(client, method: str, path: str, n: int = PROBES, **kwargs) -> list[httpx.Response]:
    """``n`` requests at once, each on a connection of its own (the kernel hands them to either worker)."""

    def one(_):
        with httpx.Client(base_url=client.base_url, timeout=60) as own:
            return own.request(method, path, **kwargs)

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(n)))


def answers_by_worker(metrics_folder, endpoint: str, model: str) -> dict[str, float]:
    """{pid: requests to ``endpoint`` for ``model`` that process answered (when it answered
    any)}, read from each process's own multiprocess file: proof that both workers took part."""
    counts = {}
    for path in metrics_folder.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, alone)
            text = generate_latest(registry).decode()
        series = f'toolkit_requests_total{{code="200",endpoint="{endpoint}",model="{model}"}}'
        series_503 = series.replace('code="200"', 'code="503"')
        counts[path.stem.split("_")[1]] = metric(text, series, 0.0) + metric(text, series_503, 0.0)
    return {pid: n for pid, n in counts.items() if n}


def infer_body(rows: np.ndarray) -> dict:
    return {"inputs": [{"name": "X", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}]}


def test_load_and_unload_hold_on_every_worker_before_they_are_answered(exports, tmp_path, monkeypatch):
    process, client, repository, metrics = serve_two_workers(
        exports, tmp_path, monkeypatch, "--model-control-mode", "explicit"
    )
    try:
        assert [r.status_code for r in concurrently(client, "GET", "/v2/models/cancer/ready")] == [200] * PROBES
        assert client.post("/v2/repository/models/cancer/unload").status_code == 200
        probes = concurrently(client, "GET", "/v2/models/cancer/ready")
        assert [r.status_code for r in probes] == [503] * PROBES, "a worker still serves the unloaded model"
        assert {r.json()["error"] for r in probes} == {
            "model 'cancer' is not ready: unloaded (POST .../load to serve it again)"
        }
        indexes = concurrently(client, "POST", "/v2/repository/index", n=20)
        assert all({m["name"]: m["state"] for m in r.json()}["cancer"] == "UNAVAILABLE" for r in indexes)
        assert [r.status_code for r in concurrently(client, "GET", "/v2/models/wine/ready")] == [200] * PROBES

        shutil.rmtree(repository / "cancer")  # another export swapped in: a load reads it on every worker
        shutil.copytree(exports / "cancer_1", repository / "cancer")
        assert client.post("/v2/repository/models/cancer/load").status_code == 200
        assert [r.status_code for r in concurrently(client, "GET", "/v2/models/cancer/ready")] == [200] * PROBES
        rows = load_breast_cancer().data[:3].astype(np.float32)
        expected = OnnxModel(exports / "cancer_1").run(rows)["probabilities"]
        answers = concurrently(client, "POST", "/v2/models/cancer/infer", n=40, json=infer_body(rows))
        for answer in answers:
            got = {o["name"]: o["data"] for o in answer.json()["outputs"]}["probabilities"]
            np.testing.assert_allclose(np.reshape(got, expected.shape), expected, rtol=1e-6)
        workers = answers_by_worker(metrics, "ready", "cancer")
        assert len(workers) == 2, f"one worker answered every probe ({workers}): the test proves nothing"
    finally:
        stop_server(process, client)


def test_a_model_added_on_disk_is_ready_on_every_worker_within_the_polling_period(exports, tmp_path, monkeypatch):
    process, client, repository, metrics = serve_two_workers(exports, tmp_path, monkeypatch)
    try:
        assert {r.status_code for r in concurrently(client, "GET", "/v2/models/added/ready", n=20)} == {404}
        shutil.copytree(exports / "cancer_1", repository / "added")
        time.sleep(RECHECK_SECONDS * 1.5)
        assert [r.status_code for r in concurrently(client, "GET", "/v2/models/added/ready")] == [200] * PROBES
        workers = answers_by_worker(metrics, "ready", "added")
        assert len(workers) == 2, f"one worker answered every probe ({workers}): the test proves nothing"
    finally:
        stop_server(process, client)


def test_a_killed_worker_comes_back_serving_the_current_models_and_the_metrics_say_so(exports, tmp_path, monkeypatch):
    process, client, _, metrics = serve_two_workers(exports, tmp_path, monkeypatch, "--model-control-mode", "explicit")
    try:
        assert client.post("/v2/repository/models/cancer/unload").status_code == 200
        workers = [
            child
            for child in psutil.Process(process.pid).children()
            if "resource_tracker" not in " ".join(child.cmdline())
        ]
        assert len(workers) == 2, workers
        workers[0].kill()  # SIGKILL: no shutdown of its own; uvicorn's parent starts another

        def scrape() -> str:  # a connection of its own: the client's may have been the killed worker's
            return concurrently(client, "GET", "/metrics", n=1)[0].text

        deadline = time.time() + 120  # uvicorn's parent looks every 0.5 s; a worker starts in seconds
        while metric(scrape(), "toolkit_worker_starts_total", 0.0) < 3:
            log = (tmp_path / "serve.log").read_text()[-3000:]
            assert time.time() < deadline, f"the killed worker was not replaced; the server's log ends:\n{log}"
            time.sleep(0.2)
        assert [r.status_code for r in concurrently(client, "GET", "/v2/models/cancer/ready")] == [503] * PROBES
        assert [r.status_code for r in concurrently(client, "GET", "/v2/models/wine/ready")] == [200] * PROBES
        text = scrape()
        assert metric(text, 'toolkit_requests_total{code="503",endpoint="ready",model="cancer"}') == PROBES
        assert metric(text, 'toolkit_requests_total{code="200",endpoint="ready",model="wine"}') == PROBES
        answered = answers_by_worker(metrics, "ready", "cancer")
        assert len(answered) == 2, f"the new worker answered no probe ({answered})"
    finally:
        stop_server(process, client)


def test_a_killed_workers_live_gauges_leave_the_sums_when_a_worker_starts(tmp_path):
    """A worker killed with requests queued leaves its queue gauge behind in the multiprocess
    folder (it never closed); the next worker to start takes it out of the sums."""
    script = """
import os, shutil, sys
from pathlib import Path
from types import SimpleNamespace
from toolkit.serving._metrics import Metrics
metrics = Metrics()
metrics.watch_batcher("m", SimpleNamespace(pending=[1, 2, 3]))
metrics.record_batch("m", 1)  # writes this process's queue length: 3
own = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]) / f"gauge_livesum_{os.getpid()}.db"
shutil.copy(own, own.with_name("gauge_livesum_4194999.db"))  # a worker that died queued 3 (no such pid)
before = metrics.exposition()[0].decode()
metrics.started()
print(before, "----", metrics.exposition()[0].decode())
"""
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    before, after = out.stdout.split("----")
    assert metric(before, 'toolkit_queued_requests{model="m"}') == 6
    assert metric(after, 'toolkit_queued_requests{model="m"}') == 3
    assert metric(after, "toolkit_worker_starts_total") == 1
