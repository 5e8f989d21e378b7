"""``toolkit serve`` as a real process on a loopback port, spoken to with a real HTTP client."""

import asyncio
import json
import math
import signal
import socket
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_wine, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tests._server import metric, start_server, stop_server
from toolkit.generative import DDPM, VAE
from toolkit.mixture import GaussianMixture
from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export
from toolkit.timeseries import ARForecaster

MAX_ROWS, MAX_BODY = 300, 200_000


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One fitted model per family, exported under one directory (plus a symlink pointing out of it)."""
    root = tmp_path_factory.mktemp("exports")
    cancer = load_breast_cancer(as_frame=True)
    frame = cancer.data.iloc[:, :6]
    moons = make_moons(200, noise=0.05, random_state=0)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models = {
            "cancer_mlp": (
                make_pipeline(StandardScaler(), MLPClassifier((16,), max_epochs=5, random_state=0)).fit(
                    frame, cancer.target
                ),
                frame,
            ),
            "wine_gmm": (GaussianMixture(3, random_state=0).fit(load_wine().data), load_wine().data),
            "moons_vae": (VAE(2, hidden=(16,), max_epochs=3, random_state=0).fit(moons), moons),
            "moons_ddpm": (DDPM(n_steps=20, hidden=16, n_blocks=1, max_epochs=3, random_state=0).fit(moons), moons),
        }
    wine = load_wine(as_frame=True).data.iloc[:, :3].copy()
    wine["region"] = np.where(wine["alcohol"] > 13, "north", "south")
    prep = ColumnTransformer(
        [("num", StandardScaler(), ["alcohol", "malic_acid", "ash"]), ("cat", OneHotEncoder(), ["region"])]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models["wine_columns"] = (
            make_pipeline(prep, MLPClassifier((8,), max_epochs=5, random_state=0)).fit(wine, load_wine().target),
            wine,
        )
    series = pd.Series(np.sin(np.arange(300) / 5.0) + np.random.default_rng(0).normal(0, 0.1, 300))
    models["sine_ar"] = (ARForecaster(lags=3).fit(series), None)
    for name, (model, _) in models.items():
        export(model, root / name)
    outside = tmp_path_factory.mktemp("outside")
    export(models["wine_gmm"][0], outside / "secret")
    (root / "escape").symlink_to(outside / "secret", target_is_directory=True)
    (root / "stale").mkdir()  # an export from an older toolkit: skipped with a warning, not fatal
    (root / "stale" / "model.json").write_text('{"inputs": [], "outputs": []}')
    return root, models


@pytest.fixture(scope="module")
def server_log(tmp_path_factory):
    return tmp_path_factory.mktemp("server") / "serve.log"


@pytest.fixture(scope="module")
def server(fitted, server_log):
    process, client = start_server(
        fitted[0], server_log, "--max-rows", str(MAX_ROWS), "--max-body-bytes", str(MAX_BODY)
    )
    yield client
    stop_server(process, client)


def tensor(name, array, datatype="FP32"):
    array = np.asarray(array)
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": array.reshape(-1).tolist()}


def outputs(response):
    assert response.status_code == 200, response.text
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in response.json()["outputs"]}


# ------------------------------------------------------------------- endpoints
def test_health_server_and_model_metadata(server):
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get("/v2/health/ready").json() == {"ready": True}
    models = server.get("/v2").json()["models"]
    assert models == sorted(
        [
            "cancer_mlp",
            "wine_gmm",
            "wine_columns",
            "moons_vae.encoder",
            "moons_vae.decoder",
            "moons_ddpm.denoiser",
            "moons_ddpm.sampler",
            "sine_ar",
        ]
    )
    meta = server.get("/v2/models/wine_gmm").json()
    assert meta["inputs"] == [{"name": "X", "datatype": "FP64", "shape": [-1, 13]}]
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
        ("label", "INT64"),
        ("probabilities", "FP64"),
        ("score_samples", "FP64"),
    ]
    denoiser = server.get("/v2/models/moons_ddpm.denoiser").json()
    assert [(i["name"], i["datatype"]) for i in denoiser["inputs"]] == [("X_t", "FP32"), ("t", "INT64")]
    assert server.get("/v2/models/cancer_mlp/ready").json() == {"name": "cancer_mlp", "ready": True}


# ------------------------------------------------------------------ round trips
def test_served_outputs_equal_each_estimators_own(server, fitted):
    _, models = fitted
    mlp, frame = models["cancer_mlp"]
    got = outputs(
        server.post("/v2/models/cancer_mlp/infer", json={"inputs": [tensor("X", frame.iloc[:20].to_numpy())]})
    )
    np.testing.assert_allclose(got["probabilities"], mlp.predict_proba(frame.iloc[:20]), atol=1e-5)
    np.testing.assert_array_equal(got["label"], mlp.predict(frame.iloc[:20]))

    gmm, X = models["wine_gmm"]
    got = outputs(server.post("/v2/models/wine_gmm/infer", json={"inputs": [tensor("X", X[:30], "FP64")], "id": "r1"}))
    np.testing.assert_allclose(got["probabilities"], gmm.predict_proba(X[:30]), atol=1e-8)
    np.testing.assert_array_equal(got["label"], gmm.predict(X[:30]))

    vae, moons = models["moons_vae"]
    got = outputs(server.post("/v2/models/moons_vae.encoder/infer", json={"inputs": [tensor("X", moons[:10])]}))
    np.testing.assert_allclose(got["mean"], vae.transform(moons[:10]), atol=1e-5)
    got = outputs(
        server.post("/v2/models/moons_vae.decoder/infer", json={"inputs": [tensor("Z", vae.transform(moons[:10]))]})
    )
    np.testing.assert_allclose(got["reconstruction"], vae.inverse_transform(vae.transform(moons[:10])), atol=1e-4)

    ddpm, _ = models["moons_ddpm"]
    initial, steps = ddpm.sampling_noise(4, random_state=0)
    body = {"inputs": [tensor("initial_noise", initial), tensor("step_noise", steps)], "outputs": [{"name": "samples"}]}
    np.testing.assert_allclose(
        outputs(server.post("/v2/models/moons_ddpm.sampler/infer", json=body))["samples"],
        ddpm.sample_from_noise(initial, steps),
        rtol=1e-5,
        atol=1e-4,
    )
    x_t, t = ddpm.diffuse(moons[:5], random_state=0)
    body = {"inputs": [tensor("X_t", x_t), tensor("t", t, "INT64")]}
    np.testing.assert_allclose(
        outputs(server.post("/v2/models/moons_ddpm.denoiser/infer", json=body))["eps"],
        ddpm.predict_noise(x_t, t),
        atol=1e-5,
    )

    ar, _ = models["sine_ar"]
    windows = np.lib.stride_tricks.sliding_window_view(np.sin(np.arange(40) / 5.0), 3)[:8]
    got = outputs(server.post("/v2/models/sine_ar/infer", json={"inputs": [tensor("X", windows, "FP64")]}))
    np.testing.assert_allclose(got["forecast"], ar.predict_from_windows(windows, horizon=10), rtol=1e-10)


def test_predict_takes_records_by_column_name(server, fitted):
    mlp, frame = fitted[1]["cancer_mlp"]
    records = frame.iloc[:5].sample(frac=1, axis=1, random_state=0).to_dict(orient="records")  # columns in any order
    response = server.post("/v2/models/cancer_mlp/predict", json={"records": records})
    assert response.status_code == 200, response.text
    body = response.json()
    np.testing.assert_allclose(body["outputs"]["probabilities"], mlp.predict_proba(frame.iloc[:5]), atol=1e-5)
    assert body["classes"] == [0, 1]
    single = server.post("/v2/models/cancer_mlp/predict", json={"records": records[:1]})
    assert single.status_code == 200, single.text
    np.testing.assert_allclose(single.json()["outputs"]["probabilities"], mlp.predict_proba(frame.iloc[:1]), atol=1e-5)


# ---------------------------------------------------------------- bad requests
def test_bad_requests_get_4xx_with_the_problem_named(server, fitted):
    frame = fitted[1]["cancer_mlp"][1]
    good = tensor("X", frame.iloc[:2].to_numpy())
    cases = [
        ("post", "/v2/models/nope/infer", {"json": {"inputs": [good]}}, 404, "unknown model 'nope'"),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "malformed JSON",
        ),
        ("post", "/v2/models/cancer_mlp/infer", {"json": [1, 2]}, 400, "must be a JSON object"),
        ("post", "/v2/models/cancer_mlp/infer", {"json": {"inputs": [dict(good, name="x")]}}, 400, "unknown ['x']"),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"json": {"inputs": [dict(good, datatype="INT64")]}},
            400,
            "datatype 'INT64'; the model takes FP32",
        ),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"json": {"inputs": [{k: v for k, v in good.items() if k != "datatype"}]}},
            400,
            "missing the field(s) ['datatype']",
        ),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"json": {"inputs": [{"name": "X"}]}},
            400,
            "missing the field(s) ['datatype', 'shape', 'data']",
        ),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"json": {"inputs": [dict(good, shape=[3, 6])]}},
            400,
            "holds 18 values but data has 12",
        ),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"json": {"inputs": [dict(good, shape=[3, 4], data=[0.0] * 12)]}},
            400,
            "has shape [3, 4]; the model expects [-1, 6] (-1: any size)",
        ),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"content": json.dumps({"inputs": [dict(good, data=[math.nan] + good["data"][1:])]})},
            400,
            "NaN",
        ),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"json": {"inputs": [dict(good, data=[None] + good["data"][1:])]}},
            400,
            "NaN, infinity or null",
        ),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"json": {"inputs": [tensor("X", np.zeros((MAX_ROWS + 1, 6)))]}},
            400,
            f"at most {MAX_ROWS}",
        ),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"json": {"inputs": [tensor("X", np.full((MAX_ROWS, 60), 0.123456789))]}},
            413,
            "over this server's limit",
        ),
        (
            "post",
            "/v2/models/cancer_mlp/infer",
            {"json": {"inputs": [good], "outputs": [{"name": "nope"}]}},
            400,
            "outputs ['nope']",
        ),
        ("post", "/v2/models/cancer_mlp/predict", {"json": {"records": [{"mean radius": 1.0}]}}, 400, "missing ["),
        ("post", "/v2/models/cancer_mlp/predict", {"json": {"rows": []}}, 400, '"records"'),
        (
            "post",
            "/v2/models/wine_gmm/predict",
            {"json": {"records": [{"alcohol": 13.0}]}},
            400,
            "'wine_gmm' does not take records",
        ),
        ("get", "/v2/models/escape", {}, 404, "unknown model 'escape'"),
        ("get", "/v2/models/stale", {}, 404, "unknown model 'stale'"),
        ("get", "/v2/models/..%2F..%2Fetc%2Fpasswd", {}, 404, "/etc/passwd"),
        ("get", "/v2/models/%2E%2E", {}, 404, "unknown model"),
        ("get", "/v2/models/%2Fetc%2Fpasswd/ready", {}, 404, ""),
        ("get", "/v2/nothing/here", {}, 404, "no route"),
    ]
    for method, url, kwargs, status, message in cases:
        response = getattr(server, method)(url, **kwargs)
        assert response.status_code == status, (url, kwargs.get("json"), response.text)
        assert message in response.json()["error"], (url, response.json())
    assert server.get("/v2/health/live").status_code == 200  # still alive


def test_a_get_on_a_post_route_says_use_post(server):
    response = server.get("/v2/models/cancer_mlp/infer")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "GET is not allowed on /v2/models/cancer_mlp/infer; use POST" in response.json()["error"]


def test_only_models_fed_by_one_row_of_named_columns_take_records(fitted, tmp_path):
    """A panel forecaster has named window columns, but its input is (n, series, window): no records."""
    from toolkit.serving._repository import discover_models

    panel = pd.DataFrame({"a": np.sin(np.arange(100) / 5.0), "b": np.cos(np.arange(100) / 7.0)})
    export(ARForecaster(lags=2).fit(panel), tmp_path / "panel")
    served = {**discover_models(fitted[0]), **discover_models(tmp_path)}
    assert {name: model.takes_records for name, model in served.items()} == {
        "cancer_mlp": True,
        "wine_columns": True,
        "sine_ar": True,
        "wine_gmm": False,
        "moons_vae.encoder": False,
        "moons_vae.decoder": False,
        "moons_ddpm.denoiser": False,
        "moons_ddpm.sampler": False,
        "panel": False,
    }


# --------------------------------------------------------------------- logging
def test_startup_listing_and_one_access_line_per_request(server, server_log):
    server.get("/v2/models/wine_gmm/ready")
    server.post("/v2/models/cancer_mlp/infer", content=b"{")
    deadline = time.time() + 10
    while "POST /v2/models/cancer_mlp/infer" not in server_log.read_text() and time.time() < deadline:
        time.sleep(0.1)
    log = server_log.read_text()
    assert f"toolkit serve: 8 model(s) at {server.base_url}" in log
    assert (
        "  wine_gmm: X FP64 [-1, 13] -> label INT64 [-1], probabilities FP64 [-1, 3], score_samples FP64 [-1, 1]" in log
    )
    assert (
        "  cancer_mlp: X FP32 [-1, 6] (6 named columns: /predict takes records) -> label INT64 [-1], "
        "probabilities FP32 [-1, 2]" in log
    )
    assert '"GET /v2/models/wine_gmm/ready HTTP/1.1" 200' in log
    assert '"POST /v2/models/cancer_mlp/infer HTTP/1.1" 400' in log


def test_quiet_prints_neither_listing_nor_access_lines(fitted, tmp_path):
    process, client = start_server(fitted[0], tmp_path / "quiet.log", "--quiet")
    assert client.get("/v2/models/wine_gmm/ready").status_code == 200
    stop_server(process, client)
    log = (tmp_path / "quiet.log").read_text()
    assert "toolkit serve:" not in log and "/v2/models/wine_gmm/ready" not in log


def test_metrics_count_requests_latency_and_errors(server, fitted):
    frame = fitted[1]["cancer_mlp"][1]
    server.post("/v2/models/cancer_mlp/infer", json={"inputs": [tensor("X", frame.iloc[:2].to_numpy())]})
    server.post("/v2/models/cancer_mlp/infer", content=b"{")
    text = server.get("/metrics").text
    assert 'toolkit_requests_total{code="200",endpoint="infer",model="cancer_mlp"}' in text
    assert 'toolkit_request_errors_total{endpoint="infer",model="cancer_mlp"}' in text
    assert 'toolkit_request_seconds_bucket{endpoint="infer",le="0.005",model="cancer_mlp"}' in text


def test_concurrent_answers_equal_serial_ones(server, fitted):
    """Sessions are shared across requests (onnxruntime#22967 reports wrong results under a shared
    session): 8 threads x 25 requests of different rows, each answer equal to the serial one."""
    from concurrent.futures import ThreadPoolExecutor

    _, models = fitted
    _, X = models["wine_gmm"]
    serial = [
        outputs(server.post("/v2/models/wine_gmm/infer", json={"inputs": [tensor("X", X[i : i + 3], "FP64")]}))
        for i in range(100)
    ]

    def worker(offset):
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            return [
                (
                    i,
                    outputs(
                        client.post("/v2/models/wine_gmm/infer", json={"inputs": [tensor("X", X[i : i + 3], "FP64")]})
                    ),
                )
                for i in range(offset, 100, 4)
            ]

    with ThreadPoolExecutor(8) as pool:
        answers = [a for batch in pool.map(worker, [0, 1, 2, 3, 0, 1, 2, 3]) for a in batch]
    assert len(answers) == 200
    for i, got in answers:
        np.testing.assert_array_equal(got["probabilities"], serial[i]["probabilities"])
        np.testing.assert_array_equal(got["label"], serial[i]["label"])


def test_string_and_numeric_columns_as_typed_inputs(server, fitted):
    """A ColumnTransformer pipeline: one input per column, BYTES for the string column."""
    pipeline, frame = fitted[1]["wine_columns"]
    meta = server.get("/v2/models/wine_columns").json()
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("alcohol", "FP32", [-1, 1]),
        ("malic_acid", "FP32", [-1, 1]),
        ("ash", "FP32", [-1, 1]),
        ("region", "BYTES", [-1, 1]),
    ]
    rows = frame.iloc[:6]
    inputs = [tensor(c, rows[[c]].to_numpy()) for c in ["alcohol", "malic_acid", "ash"]]
    inputs.append({"name": "region", "shape": [6, 1], "datatype": "BYTES", "data": rows["region"].tolist()})
    got = outputs(server.post("/v2/models/wine_columns/infer", json={"inputs": inputs}))
    np.testing.assert_allclose(got["probabilities"], pipeline.predict_proba(rows), atol=1e-5)
    body = server.post("/v2/models/wine_columns/predict", json={"records": rows.to_dict(orient="records")}).json()
    np.testing.assert_array_equal(body["outputs"]["label"], pipeline.predict(rows))
    wrong = dict(inputs[3], datatype="FP32", data=[1.0] * 6)
    assert server.post("/v2/models/wine_columns/infer", json={"inputs": inputs[:3] + [wrong]}).status_code == 400


# -------------------------------------------- what MLServer and KServe do
def test_widths_cast_as_mlserver_and_kserve_do_and_values_that_do_not_fit_are_named(server, fitted):
    _, models = fitted
    _, frame = models["cancer_mlp"]
    rows = frame.iloc[:3].to_numpy()
    as_fp32 = server.post("/v2/models/cancer_mlp/infer", json={"inputs": [tensor("X", rows)]})
    as_fp64 = server.post("/v2/models/cancer_mlp/infer", json={"inputs": [tensor("X", rows, "FP64")]})
    assert outputs(as_fp64).keys() == outputs(as_fp32).keys()
    for name, value in outputs(as_fp32).items():
        np.testing.assert_array_equal(outputs(as_fp64)[name], value)

    def error(inputs):
        response = server.post("/v2/models/cancer_mlp/infer", json={"inputs": inputs})
        assert response.status_code == 400, response.text
        return response.json()["error"]

    huge = tensor("X", rows, "FP64")
    huge["data"][4] = 1e39
    assert "the value 1e+39 overflows FP32" in error([huge])
    truthy = tensor("X", rows)
    truthy["data"][0] = True
    assert "JSON booleans (true / false) are not numbers" in error([truthy])
    assert "datatype 'BYTES'; the model takes FP32" in error([dict(tensor("X", rows), datatype="BYTES")])

    denoiser = {"X_t": tensor("X_t", np.zeros((2, 2))), "t": tensor("t", [3, 7], "INT32")}
    response = server.post("/v2/models/moons_ddpm.denoiser/infer", json={"inputs": list(denoiser.values())})
    assert response.status_code == 200, response.text  # INT32 for an INT64 input: cast, it fits
    denoiser["t"] = tensor("t", [3, 2**64], "INT64")
    response = server.post("/v2/models/moons_ddpm.denoiser/infer", json={"inputs": list(denoiser.values())})
    assert response.status_code == 400 and "does not fit INT64" in response.json()["error"]


def test_a_response_always_has_an_id(server, fitted):
    _, models = fitted
    _, frame = models["cancer_mlp"]
    request = {"inputs": [tensor("X", frame.iloc[:1].to_numpy())]}
    given = server.post("/v2/models/cancer_mlp/infer", json={**request, "id": "r7"}).json()["id"]
    first, second = (server.post("/v2/models/cancer_mlp/infer", json=request).json()["id"] for _ in range(2))
    assert given == "r7" and first and second and first != second


def test_tritonclient_http_drives_the_server(server, fitted):
    """NVIDIA's own V2 client, with its defaults (binary tensors in and out) and with JSON."""
    httpclient = pytest.importorskip("tritonclient.http")
    _, models = fitted
    triton = httpclient.InferenceServerClient(server.base_url.netloc.decode())
    assert triton.is_server_live() and triton.is_server_ready() and triton.is_model_ready("cancer_mlp")
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]
    assert triton.get_model_metadata("wine_gmm")["inputs"] == [{"name": "X", "datatype": "FP64", "shape": [-1, 13]}]

    mlp, frame = models["cancer_mlp"]
    rows = frame.iloc[:7]
    fp32 = httpclient.InferInput("X", list(rows.shape), "FP32")
    fp32.set_data_from_numpy(rows.to_numpy(np.float32))  # binary by default; outputs binary by default
    result = triton.infer("cancer_mlp", [fp32], request_id="t1")
    assert result.get_response()["id"] == "t1"
    np.testing.assert_allclose(result.as_numpy("probabilities"), mlp.predict_proba(rows), atol=1e-5)
    np.testing.assert_array_equal(result.as_numpy("label"), mlp.predict(rows))

    fp32.set_data_from_numpy(rows.to_numpy(np.float32), binary_data=False)
    only_label = [httpclient.InferRequestedOutput("label", binary_data=False)]
    result = triton.infer("cancer_mlp", [fp32], outputs=only_label)
    np.testing.assert_array_equal(result.as_numpy("label"), mlp.predict(rows))
    assert result.as_numpy("probabilities") is None

    gmm, X = models["wine_gmm"]
    fp64 = httpclient.InferInput("X", [5, 13], "FP64")
    fp64.set_data_from_numpy(X[:5].astype(np.float64))
    np.testing.assert_allclose(triton.infer("wine_gmm", [fp64]).as_numpy("probabilities"), gmm.predict_proba(X[:5]))

    ddpm_inputs = [httpclient.InferInput("X_t", [3, 2], "FP32"), httpclient.InferInput("t", [3], "INT64")]
    ddpm_inputs[0].set_data_from_numpy(np.zeros((3, 2), np.float32))
    ddpm_inputs[1].set_data_from_numpy(np.array([1, 50, 99], np.int64))
    assert triton.infer("moons_ddpm.denoiser", ddpm_inputs).as_numpy("eps").shape == (3, 2)

    pipeline, wine = models["wine_columns"]
    part = wine.iloc[:4]
    typed = []
    for column in ["alcohol", "malic_acid", "ash"]:
        typed.append(httpclient.InferInput(column, [4, 1], "FP32"))
        typed[-1].set_data_from_numpy(part[[column]].to_numpy(np.float32))
    typed.append(httpclient.InferInput("region", [4, 1], "BYTES"))
    typed[-1].set_data_from_numpy(part[["region"]].to_numpy(object))
    got = triton.infer("wine_columns", typed).as_numpy("probabilities")
    np.testing.assert_allclose(got, pipeline.predict_proba(part), atol=1e-5)
    triton.close()


# ------------------------------------------------------------- adaptive batching
def test_adaptive_batching_answers_64_concurrent_clients_as_each_alone(fitted, tmp_path):
    """64 clients at once against a batching server: every answer equals, bit for bit, an
    unbatched server's answer to the same request sent alone; the metrics show batches for the
    graph whose answers do not depend on the batch size, and none for the one whose do."""
    _, models = fitted
    _, frame = models["cancer_mlp"]
    _, X = models["wine_gmm"]
    requests = [
        ("cancer_mlp", {"inputs": [tensor("X", frame.iloc[[i % len(frame)]].to_numpy())]}) for i in range(48)
    ] + [("wine_gmm", {"inputs": [tensor("X", X[i : i + 1 + i % 3], "FP64")]}) for i in range(16)]
    process, unbatched = start_server(fitted[0], tmp_path / "unbatched.log", "--max-batch-size", "0", "--quiet")
    try:
        serial = [unbatched.post(f"/v2/models/{name}/infer", json=body).json()["outputs"] for name, body in requests]
    finally:
        stop_server(process, unbatched)
    process, client = start_server(
        fitted[0], tmp_path / "batching.log", "--max-batch-size", "64", "--max-queue-delay-us", "20000", "--quiet"
    )
    try:
        barrier = threading.Barrier(len(requests))

        def ask(index):
            name, body = requests[index]
            with httpx.Client(base_url=client.base_url, timeout=30) as own:
                barrier.wait()
                return own.post(f"/v2/models/{name}/infer", json=body).json()["outputs"]

        with ThreadPoolExecutor(len(requests)) as pool:
            batched = list(pool.map(ask, range(len(requests))))
        differ = [(i, a, b) for i, (a, b) in enumerate(zip(batched, serial)) if a != b]
        assert not differ, differ[0]
        metrics = client.get("/metrics").text
        runs = {
            line.split('model="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("toolkit_batches_total{")
        }
        assert 0 < runs["cancer_mlp"] < 48  # requests did share runs
        # The float64 mixture graph rounds differently at other batch sizes: served unbatched, and said so.
        assert "wine_gmm" not in runs
        assert "wine_gmm is served unbatched" in (tmp_path / "batching.log").read_text()
    finally:
        stop_server(process, client)


# ------------------------------------------------------ the model repository
def test_repository_index_load_unload_and_a_corrupt_graph(fitted, tmp_path):
    import shutil

    exports, models = fitted
    root = tmp_path / "models"
    root.mkdir()
    for name in ("cancer_mlp", "wine_gmm"):
        shutil.copytree(exports / name, root / name)
    shutil.copytree(exports / "cancer_mlp", root / "broken")
    graph = root / "broken" / "model.onnx"
    graph.write_bytes(graph.read_bytes()[: len(graph.read_bytes()) // 2])  # truncated
    process, client = start_server(root, tmp_path / "repository.log", "--quiet", "--model-control-mode", "explicit")
    try:
        ready = client.get("/v2/models/broken/ready")
        assert ready.status_code == 503 and "could not be loaded" in ready.json()["error"]
        _, frame = models["cancer_mlp"]
        request = {"inputs": [tensor("X", frame.iloc[:2].to_numpy())]}
        assert client.post("/v2/models/broken/infer", json=request).status_code == 503
        assert client.post("/v2/models/cancer_mlp/infer", json=request).status_code == 200  # the others serve
        index = {entry["name"]: entry for entry in client.post("/v2/repository/index").json()}
        assert index["broken"]["state"] == "UNAVAILABLE" and "could not be loaded" in index["broken"]["reason"]
        assert index["cancer_mlp"]["state"] == index["wine_gmm"]["state"] == "READY"

        assert client.post("/v2/repository/models/wine_gmm/unload").status_code == 200
        assert client.get("/v2/models/wine_gmm/ready").status_code == 503
        assert "unloaded" in client.post("/v2/models/wine_gmm/infer", json=request).json()["error"]
        assert client.post("/v2/repository/models/wine_gmm/load").json()["loaded"] == ["wine_gmm"]
        assert client.get("/v2/models/wine_gmm/ready").json() == {"name": "wine_gmm", "ready": True}
        assert client.post("/v2/repository/models/nothing/load").status_code == 404
        assert client.post("/v2/repository/models/..%2Fescape/load").status_code == 404
    finally:
        stop_server(process, client)


def test_folders_that_keep_versions_serve_each_version_and_the_highest_by_default(fitted, tmp_path):
    import shutil

    import tritonclient.http as triton_http

    exports, models = fitted
    root = tmp_path / "models"
    shutil.copytree(exports / "cancer_mlp", root / "plain")
    shutil.copytree(exports / "cancer_mlp", root / "versioned" / "1")
    shutil.copytree(exports / "wine_gmm", root / "versioned" / "2")
    _, frame = models["cancer_mlp"]
    _, X = models["wine_gmm"]
    cancer = {"inputs": [tensor("X", frame.iloc[:2].to_numpy())]}
    wine = {"inputs": [tensor("X", X[:2], "FP64")]}
    process, client = start_server(root, tmp_path / "versions.log", "--quiet")
    try:
        latest = client.get("/v2/models/versioned").json()
        assert latest["versions"] == ["1", "2"] and latest["inputs"][0]["shape"] == [-1, 13]
        assert client.get("/v2/models/versioned/versions/1").json()["inputs"][0]["shape"] == [-1, frame.shape[1]]
        assert client.get("/v2/models/versioned/versions/1/ready").json()["ready"] is True
        answer = client.post("/v2/models/versioned/versions/1/infer", json=cancer).json()
        assert answer["model_version"] == "1"
        np.testing.assert_array_equal(
            outputs(client.post("/v2/models/plain/infer", json=cancer))["label"],
            np.asarray(answer["outputs"][0]["data"]),
        )
        assert client.post("/v2/models/versioned/infer", json=wine).json()["model_version"] == "2"
        missing = client.get("/v2/models/versioned/versions/3")
        assert missing.status_code == 404 and "has no version '3'; it has ['1', '2']" in missing.json()["error"]
        assert client.post("/v2/models/versioned/versions/3/infer", json=wine).status_code == 404
        assert client.get("/v2/models/plain/versions/1").json()["versions"] == ["1"]
        assert client.get("/v2/models/plain/versions/2").status_code == 404
        index = [(e["name"], e["version"], e["state"]) for e in client.post("/v2/repository/index").json()]
        assert index == [("plain", "1", "READY"), ("versioned", "1", "READY"), ("versioned", "2", "READY")]

        triton = triton_http.InferenceServerClient(client.base_url.netloc.decode())
        assert triton.get_model_metadata("versioned", model_version="1")["inputs"][0]["datatype"] == "FP32"
        row = triton_http.InferInput("X", [2, frame.shape[1]], "FP32")
        row.set_data_from_numpy(frame.iloc[:2].to_numpy(np.float32))
        result = triton.infer("versioned", [row], model_version="1")
        np.testing.assert_array_equal(result.as_numpy("label"), np.asarray(answer["outputs"][0]["data"]))
    finally:
        stop_server(process, client)


def asgi_requests(app, *calls) -> list:
    """The answers of ``calls`` ((method, url, httpx options), in order) to the app in this process."""

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await getattr(client, method)(url, **options) for method, url, options in calls]

    return asyncio.run(run())


def test_an_export_swapped_in_or_a_version_added_is_served_without_a_restart(fitted, tmp_path, monkeypatch):
    """The app in this process: a folder's model.json is looked at again once RECHECK_SECONDS
    have passed since the last look (patched: never, then always), and a changed one is read."""
    import shutil

    from toolkit.serving import _repository, create_app

    exports, models = fitted
    root = tmp_path / "models"
    export(models["wine_gmm"][0], root / "swap")
    shutil.copytree(exports / "cancer_mlp", root / "versioned" / "1")
    _, frame = models["cancer_mlp"]
    request = {"inputs": [tensor("X", frame.iloc[:2].to_numpy())]}
    monkeypatch.setattr(_repository, "RECHECK_SECONDS", float("inf"))
    app = create_app(root)

    def swap_shape() -> list:
        return asgi_requests(app, ("get", "/v2/models/swap", {}))[0].json()["inputs"][0]["shape"]

    assert swap_shape() == [-1, 13]
    export(models["cancer_mlp"][0], root / "swap")  # another export swapped in, no restart
    export(models["cancer_mlp"][0], root / "versioned" / "2")  # a new version
    assert swap_shape() == [-1, 13]  # not looked at again yet
    monkeypatch.setattr(_repository, "RECHECK_SECONDS", 0.0)
    assert swap_shape() == [-1, frame.shape[1]]
    infer, versions, answer = asgi_requests(
        app,
        ("post", "/v2/models/swap/infer", {"json": request}),
        ("get", "/v2/models/versioned", {}),
        ("post", "/v2/models/versioned/infer", {"json": request}),
    )
    assert infer.status_code == 200 and versions.json()["versions"] == ["1", "2"]
    assert answer.json()["model_version"] == "2"


# ------------------------------------------------------------------- survival
def test_sigterm_drains_the_requests_in_flight_then_exits_0(fitted, tmp_path):
    """Requests held in the batcher's queue (a 3 s delay) when SIGTERM arrives all get their answers."""
    _, models = fitted
    _, frame = models["cancer_mlp"]
    log = tmp_path / "drain.log"
    process, client = start_server(
        fitted[0], log, "--max-batch-size", "64", "--max-queue-delay-us", "3000000", "--log-level", "warning"
    )
    request = {"inputs": [tensor("X", frame.iloc[:1].to_numpy())]}

    def ask(_):
        with httpx.Client(base_url=client.base_url, timeout=30) as own:
            return own.post("/v2/models/cancer_mlp/infer", json=request).status_code

    def queued() -> float:
        return metric(client.get("/metrics").text, 'toolkit_queued_requests{model="cancer_mlp"}')

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = pool.map(ask, range(8))
            deadline = time.time() + 10
            while queued() < 8 and time.time() < deadline:
                time.sleep(0.05)
            assert queued() == 8  # every request is queued, none answered yet
            process.send_signal(signal.SIGTERM)
            assert list(answers) == [200] * 8
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        client.close()


def answered(client, model: str = "cancer_mlp") -> float:
    """The inference requests the server has answered 200 for ``model`` (its metrics)."""
    series = f'toolkit_requests_total{{code="200",endpoint="infer",model="{model}"}}'
    return metric(client.get("/metrics").text, series, default=0.0)


def test_a_client_that_disconnects_mid_request_leaves_the_server_serving(fitted, tmp_path):
    _, models = fitted
    _, frame = models["cancer_mlp"]
    log = tmp_path / "disconnect.log"
    process, client = start_server(fitted[0], log, "--max-batch-size", "8", "--max-queue-delay-us", "300000")
    body = json.dumps({"inputs": [tensor("X", frame.iloc[:1].to_numpy())]}).encode()
    try:
        for _ in range(5):
            with socket.create_connection((client.base_url.host, client.base_url.port)) as raw:
                raw.sendall(
                    b"POST /v2/models/cancer_mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )  # and hang up before the answer
        deadline = time.time() + 30
        while answered(client) < 5 and time.time() < deadline:  # each reached the model and was answered
            time.sleep(0.05)
        assert answered(client) == 5
        answer = client.post("/v2/models/cancer_mlp/infer", content=body)
        assert answer.status_code == 200, answer.text
        assert "Traceback" not in log.read_text()
    finally:
        stop_server(process, client)


def test_a_full_queue_answers_503_with_retry_after_and_the_rest_are_served(fitted):
    """The app in this process, its batcher's runs slowed down (on a thread, 50 ms each) so that
    32 concurrent requests overflow a queue of 4."""
    import asyncio

    from toolkit.serving import ServerSettings, create_app

    _, models = fitted
    _, frame = models["cancer_mlp"]
    settings = ServerSettings(max_batch_size=2, max_queue_size=4)
    app = create_app(fitted[0], settings)
    batcher = app.state.models["cancer_mlp"].batcher
    run = batcher.run
    batcher.run, batcher.inline_elements = (lambda feed: time.sleep(0.05) or run(feed)), 0
    request = {"inputs": [tensor("X", frame.iloc[:1].to_numpy())]}

    async def load():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            url = "/v2/models/cancer_mlp/infer"
            answers = await asyncio.gather(*(client.post(url, json=request) for _ in range(32)))
            return answers, await client.post(url, json=request)

    answers, after = asyncio.run(load())
    busy = [a for a in answers if a.status_code == 503]
    assert busy and all(a.headers["retry-after"] == "1" and "is busy" in a.json()["error"] for a in busy)
    assert all(a.status_code == 200 for a in answers if a not in busy) and len(busy) < 32
    assert after.status_code == 200  # the server stays up


# ------------------------------------------------------------------- model control
def test_model_control_modes(fitted, tmp_path, monkeypatch):
    """Triton's --model-control-mode, in this process: "none" serves what it found at start,
    "poll" (the default) also what changes on disk, "explicit" what load and unload say; load
    and unload answer 403 with how to enable them except in "explicit"."""
    import shutil

    from toolkit.serving import ServerSettings, _repository, create_app

    exports, models = fitted
    _, frame = models["cancer_mlp"]
    request = {"inputs": [tensor("X", frame.iloc[:2].to_numpy())]}
    monkeypatch.setattr(_repository, "RECHECK_SECONDS", 0.0)

    def serve(mode: str):
        root = tmp_path / mode
        shutil.copytree(exports / "wine_gmm", root / "swap")
        app = create_app(root) if mode == "poll" else create_app(root, ServerSettings(model_control_mode=mode))

        def ask(*calls):
            return asgi_requests(app, *calls)

        assert ask(("get", "/v2/models/swap", {}))[0].json()["inputs"][0]["shape"] == [-1, 13]
        export(models["cancer_mlp"][0], root / "swap")  # another export swapped in
        shutil.copytree(exports / "cancer_mlp", root / "added")  # a folder added
        return ask

    for mode in ("none", "poll"):
        ask = serve(mode)
        swapped, added, unload, load = ask(
            ("get", "/v2/models/swap", {}),
            ("post", "/v2/models/added/infer", {"json": request}),
            ("post", "/v2/repository/models/swap/unload", {}),
            ("post", "/v2/repository/models/added/load", {}),
        )
        picked_up = mode == "poll"
        assert swapped.json()["inputs"][0]["shape"] == ([-1, frame.shape[1]] if picked_up else [-1, 13])
        assert added.status_code == (200 if picked_up else 404)
        for answer in (unload, load):
            assert answer.status_code == 403
            assert f"refused in model control mode {mode!r}" in answer.json()["error"]
            assert "--model-control-mode explicit" in answer.json()["error"]
        assert ask(("get", "/v2/models/swap/ready", {}))[0].json()["ready"] is True  # nothing unloaded

    ask = serve("explicit")
    swapped, added = ask(("get", "/v2/models/swap", {}), ("post", "/v2/models/added/infer", {"json": request}))
    assert swapped.json()["inputs"][0]["shape"] == [-1, 13] and added.status_code == 404  # only on request
    loaded, added, swapped = ask(
        ("post", "/v2/repository/models/added/load", {}),
        ("post", "/v2/models/added/infer", {"json": request}),
        ("post", "/v2/repository/models/swap/load", {}),
    )
    assert loaded.json() == {"name": "added", "loaded": ["added"]} and added.status_code == 200
    assert ask(("get", "/v2/models/swap", {}))[0].json()["inputs"][0]["shape"] == [-1, frame.shape[1]]
    unloaded, ready = ask(("post", "/v2/repository/models/swap/unload", {}), ("get", "/v2/models/swap/ready", {}))
    assert unloaded.json() == {"name": "swap", "unloaded": True} and ready.status_code == 503


def test_an_unknown_model_control_mode_is_named():
    from toolkit.serving import ServerSettings

    with pytest.raises(ValueError, match="model_control_mode must be one of"):
        ServerSettings(model_control_mode="auto")
    settings = ServerSettings(model_control_mode="explicit", max_rows=5)
    assert ServerSettings.from_environment(settings.to_environment("."))[0] == settings


def test_polling_reads_a_folder_that_serves_nothing_again_only_once_it_changes(fitted, tmp_path, monkeypatch):
    import shutil

    from toolkit.serving import _repository, create_app

    exports, _ = fitted
    root = tmp_path / "models"
    shutil.copytree(exports / "wine_gmm", root / "wine_gmm")
    monkeypatch.setattr(_repository, "RECHECK_SECONDS", 0.0)
    app = create_app(root)
    (root / "bad").mkdir()
    (root / "bad" / "model.json").write_text("{not json")  # read, skipped with a warning, serves nothing
    reads = []
    load_folder = _repository.ModelRepository.load_folder
    monkeypatch.setattr(
        _repository.ModelRepository, "load_folder", lambda self, name: reads.append(name) or load_folder(self, name)
    )
    for _ in range(3):
        assert [e["name"] for e in asgi_requests(app, ("post", "/v2/repository/index", {}))[0].json()] == ["wine_gmm"]
    assert reads == ["bad"]
    shutil.rmtree(root / "bad")
    shutil.copytree(exports / "wine_gmm", root / "bad")  # mended: read again, and served
    assert asgi_requests(app, ("get", "/v2/models/bad/ready", {}))[0].json() == {"name": "bad", "ready": True}
    assert reads == ["bad", "bad"]
