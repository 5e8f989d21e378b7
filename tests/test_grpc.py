"""``toolkit serve --grpc-port``: the protocol over gRPC, driven by tritonclient.grpc (its defaults:
raw contents) and by typed contents, each answer compared with HTTP's for the same request."""

import functools
import signal
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from onnx import TensorProto, helper
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from tests._server import free_port, metric, start_server, stop_server
from toolkit.mixture import GaussianMixture
from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export

# Every element type the server feeds: (V2 datatype, ONNX type, numpy dtype).
TYPES = [
    ("FP16", TensorProto.FLOAT16, np.float16),
    ("FP32", TensorProto.FLOAT, np.float32),
    ("FP64", TensorProto.DOUBLE, np.float64),
    *[(f"INT{b}", getattr(TensorProto, f"INT{b}"), np.dtype(f"int{b}")) for b in (8, 16, 32, 64)],
    *[(f"UINT{b}", getattr(TensorProto, f"UINT{b}"), np.dtype(f"uint{b}")) for b in (8, 16, 32, 64)],
    ("BOOL", TensorProto.BOOL, np.bool_),
    ("BYTES", TensorProto.STRING, np.object_),
]
TYPED_FIELD = {  # where typed contents carry each datatype
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "BOOL": "bool_contents",
    "BYTES": "bytes_contents",
}


def identity_graph(onnx_type) -> bytes:
    """x -> y of one element type, batch axis free: a graph made elsewhere (no model.json)."""
    x = helper.make_tensor_value_info("x", onnx_type, ["batch", 3])
    y = helper.make_tensor_value_info("y", onnx_type, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()


def slow_graph(width: int = 4096, steps: int = 400) -> bytes:
    """x -> y, ``steps`` elementwise Sin over ``width`` FP32 values a row: about 5 ms a row, the same
    answer at any batch size (so the server batches it)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])
    names = ["x", *(f"s{i}" for i in range(steps - 1)), "y"]
    nodes = [helper.make_node("Sin", [a], [b]) for a, b in zip(names, names[1:])]
    graph = helper.make_graph(nodes, "slow", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()


def sample(datatype: str, dtype) -> np.ndarray:
    """Two rows of values that use the type's range (its extremes for integers)."""
    if datatype == "BYTES":
        return np.array([["a", "bé", ""], ["x y", "7", "z"]], dtype=object)
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    if datatype.startswith(("INT", "UINT")):
        info = np.iinfo(dtype)
        return np.array([[info.min, 0, info.max], [1, 2, info.max - 1]], dtype=dtype)
    return np.array([[-1.5, 0.0, 3.25], [1e-3, 7.0, -0.1]], dtype=dtype)


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    """Exports (FP32, FP64 and BYTES inputs, versions) and graphs made elsewhere of every type."""
    root = tmp_path_factory.mktemp("grpc_models")
    cancer = load_breast_cancer(as_frame=True)
    frame = cancer.data.iloc[:, :6]
    wine = load_wine(as_frame=True).data.iloc[:, :3].copy()
    wine["region"] = np.where(wine["alcohol"] > 13, "north", "south")
    columns = ColumnTransformer(
        [("num", StandardScaler(), ["alcohol", "malic_acid", "ash"]), ("cat", OneHotEncoder(), ["region"])]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for version in (1, 2):
            mlp = MLPClassifier((8,), max_epochs=3, random_state=version)
            export(make_pipeline(StandardScaler(), mlp).fit(frame, cancer.target), root / "cancer" / str(version))
        wine_mlp = MLPClassifier((8,), max_epochs=3, random_state=0)
        export(make_pipeline(columns, wine_mlp).fit(wine, load_wine().target), root / "wine_columns")
    export(GaussianMixture(3, random_state=0).fit(load_wine().data), root / "wine_gmm")
    for datatype, onnx_type, _ in TYPES:
        (root / f"identity_{datatype.lower()}").mkdir()
        (root / f"identity_{datatype.lower()}" / "model.onnx").write_bytes(identity_graph(onnx_type))
    (root / "slow").mkdir()
    (root / "slow" / "model.onnx").write_bytes(slow_graph())
    (root / "broken").mkdir()
    (root / "broken" / "model.onnx").write_bytes(b"not an onnx graph")
    return root, frame, wine


@pytest.fixture(scope="module")
def servers(repository, tmp_path_factory):
    """(HTTP client, tritonclient.grpc client, a raw stub of tritonclient's generated service)."""
    port = free_port()
    log = tmp_path_factory.mktemp("grpc_server") / "serve.log"
    # calls wait up to 3 ms for others to join their batch: see the batching test
    options = ("--grpc-port", str(port), "--model-control-mode", "explicit", "--max-queue-delay-us", "3000")
    process, http = start_server(repository[0], log, *options)
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{port}")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield http, client, service_pb2_grpc.GRPCInferenceServiceStub(channel)
    channel.close()
    client.close()
    stop_server(process, http)


def http_infer(http, model: str, inputs: dict, **fields):
    body = {
        "inputs": [
            {
                "name": name,
                "shape": list(value.shape),
                "datatype": datatype,
                "data": value.reshape(-1).tolist(),
            }
            for name, (datatype, value) in inputs.items()
        ],
        **fields,
    }
    return http.post(f"/v2/models/{model}/infer", json=body)


def http_outputs(answer, dtype=None) -> dict:
    """{name: (datatype, array)} of an HTTP answer (JSON numbers read as ``dtype``: exact for 64-bit extremes)."""
    assert answer.status_code == 200, answer.text
    return {
        o["name"]: (o["datatype"], np.array(o["data"], dtype=dtype).reshape(o["shape"]))
        for o in answer.json()["outputs"]
    }


def grpc_inputs(inputs: dict) -> list:
    made = []
    for name, (datatype, value) in inputs.items():
        tensor = triton_grpc.InferInput(name, list(value.shape), datatype)
        tensor.set_data_from_numpy(value)
        made.append(tensor)
    return made


def typed_request(model: str, inputs: dict, **fields) -> service_pb2.ModelInferRequest:
    """A request with typed contents (each datatype's field), as KServe's clients send them."""
    request = service_pb2.ModelInferRequest(model_name=model, **fields)
    for name, (datatype, value) in inputs.items():
        tensor = request.inputs.add(name=name, datatype=datatype, shape=value.shape)
        flat = value.reshape(-1).tolist()
        if datatype == "BYTES":
            flat = [v.encode() for v in flat]
        getattr(tensor.contents, TYPED_FIELD[datatype]).extend(flat)
    return request


def typed_outputs(response, dtype=None) -> dict:
    """{name: array} of a response with typed contents (raw ones decoded as tritonclient does)."""
    if response.raw_output_contents:
        result = triton_grpc.InferResult(response)
        return {o.name: result.as_numpy(o.name) for o in response.outputs}
    values = {}
    for output in response.outputs:
        data = list(getattr(output.contents, TYPED_FIELD[output.datatype]))
        values[output.name] = np.array(data, dtype=dtype).reshape(list(output.shape))
    return values


def grpc_error(call) -> tuple[str, str]:
    """(status code name, message) of a call that must fail."""
    with pytest.raises(InferenceServerException) as raised:
        call()
    return raised.value.status().removeprefix("StatusCode."), raised.value.message()


# ------------------------------------------------------------------------ health and metadata
def test_health_and_metadata_over_grpc_equal_http(servers):
    http, client, _ = servers
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("cancer") and client.is_model_ready("cancer", "1")
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "toolkit" and "model_repository" in server["extensions"]
    for model in ("cancer", "wine_columns", "wine_gmm", "identity_bytes"):
        over_grpc = client.get_model_metadata(model, as_json=True)
        over_http = http.get(f"/v2/models/{model}").json()
        assert over_grpc["name"] == over_http["name"] and over_grpc["versions"] == over_http["versions"]
        assert over_grpc["platform"] == over_http["platform"]
        for key in ("inputs", "outputs"):  # protobuf's JSON writes int64 shapes as strings
            assert [{**t, "shape": [int(d) for d in t["shape"]]} for t in over_grpc[key]] == over_http[key]
    index = {(m["name"], m.get("version", "")): m for m in client.get_model_repository_index(as_json=True)["models"]}
    assert index[("cancer", "2")]["state"] == "READY"
    broken = index[("broken", "1")]
    assert broken["state"] == "UNAVAILABLE" and "could not be loaded" in broken["reason"]
    assert not client.is_model_ready("broken")


# ------------------------------------------------------------------------ inference
@pytest.mark.parametrize(("datatype", "dtype"), [(t[0], t[2]) for t in TYPES], ids=[t[0] for t in TYPES])
def test_every_tensor_type_raw_and_typed_answers_as_http(servers, datatype, dtype):
    http, client, stub = servers
    model, value = f"identity_{datatype.lower()}", sample(datatype, dtype)
    inputs = {"x": (datatype, value)}
    raw = client.infer(model, grpc_inputs(inputs)).as_numpy("y")
    if datatype == "BYTES":  # tritonclient gives bytes; the graph's strings went through UTF-8
        raw = np.vectorize(lambda b: b.decode())(raw).astype(object)
    np.testing.assert_array_equal(raw, value)
    assert raw.dtype == value.dtype
    http_datatype, over_http = http_outputs(http_infer(http, model, inputs), value.dtype)["y"]
    assert http_datatype == datatype
    np.testing.assert_array_equal(over_http, value)
    if datatype == "FP16":  # no typed field carries FP16: the request is refused, saying where it goes
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelInfer(service_pb2.ModelInferRequest(model_name=model, inputs=[{"name": "x", "datatype": "FP16"}]))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "send it in raw_input_contents" in raised.value.details()
        return
    response = stub.ModelInfer(typed_request(model, inputs))
    assert not response.raw_output_contents  # typed in, typed out
    typed = typed_outputs(response, value.dtype)["y"]
    if datatype == "BYTES":
        typed = np.vectorize(lambda b: b.decode())(typed).astype(object)
    np.testing.assert_array_equal(typed, value)


def test_models_answer_over_grpc_as_over_http(servers, repository):
    http, client, stub = servers
    _, frame, wine = repository
    rows = frame.iloc[:5].to_numpy(np.float32)
    for version in ("1", "2", ""):
        result = client.infer("cancer", grpc_inputs({"X": ("FP32", rows)}), model_version=version, request_id="r7")
        url_model = f"cancer/versions/{version}" if version else "cancer"
        expected = http_outputs(http_infer(http, url_model, {"X": ("FP32", rows)}))
        np.testing.assert_array_equal(result.as_numpy("label"), expected["label"][1])
        np.testing.assert_array_equal(result.as_numpy("probabilities"), expected["probabilities"][1].astype(np.float32))
        response = result.get_response()
        assert response.id == "r7" and response.model_version == (version or "2")
    only = client.infer(
        "cancer", grpc_inputs({"X": ("FP32", rows)}), outputs=[triton_grpc.InferRequestedOutput("probabilities")]
    )
    assert [o.name for o in only.get_response().outputs] == ["probabilities"]

    measurements = load_wine().data[:4]
    gmm = client.infer("wine_gmm", grpc_inputs({"X": ("FP64", measurements)}))
    expected = http_outputs(http_infer(http, "wine_gmm", {"X": ("FP64", measurements)}))
    np.testing.assert_array_equal(gmm.as_numpy("probabilities"), expected["probabilities"][1])

    columns = {name: ("FP32", wine[[name]].to_numpy(np.float32)) for name in wine.columns[:3]}
    columns["region"] = ("BYTES", wine[["region"]].to_numpy(object))
    by_columns = client.infer("wine_columns", grpc_inputs(columns)).as_numpy("label")
    typed = typed_outputs(stub.ModelInfer(typed_request("wine_columns", columns)))["label"]
    expected = http_outputs(http_infer(http, "wine_columns", columns))["label"][1]
    np.testing.assert_array_equal(by_columns, expected)
    np.testing.assert_array_equal(typed, expected)
    assert len(expected) == len(wine)


def test_concurrent_calls_on_one_channel_are_batched_and_each_gets_its_own_answer(servers):
    """Calls sent together on one channel meet in the batcher, and batching changes no answer.

    grpc.aio hands the server one call per turn of its loop. With no queue delay (the default)
    whether calls meet depends on timing: a call that finds others in flight waits for its batch on
    a thread, and the calls accepted meanwhile join the next; but on a loaded machine (beside
    another xdist worker's server tests) all 48 calls of five bursts in a row ran one by one, each
    accepted only after the one before had ended, 50 to 140 us apart: as far apart as a lone
    client's calls (65 us and up here), so nothing tells them apart. This server waits up to 3 ms
    for a batch to fill (``--max-queue-delay-us``), far longer than those gaps; the in-flight hint
    has its own test in test_batching.py. Up to five bursts are sent, and one must batch."""
    http, client, _ = servers
    rows = np.random.default_rng(0).normal(size=(48, 4096)).astype(np.float32)
    expected = http_outputs(http_infer(http, "slow", {"x": ("FP32", rows)}), np.float32)["y"][1]

    def batches() -> tuple[float, float]:
        text = http.get("/metrics").text
        return tuple(metric(text, f'toolkit_batch_requests_{part}{{model="slow"}}', 0.0) for part in ("count", "sum"))

    def burst() -> tuple[float, float]:
        """(batches, requests) of 48 one-row calls sent at once, each answer checked."""
        before = batches()
        answers, done = {}, threading.Event()

        def answered(index, result, error):
            answers[index] = error or result.as_numpy("y")
            if len(answers) == len(rows):
                done.set()

        for index in range(len(rows)):
            call = functools.partial(answered, index)
            client.async_infer("slow", grpc_inputs({"x": ("FP32", rows[index : index + 1])}), callback=call)
        assert done.wait(60), f"{len(answers)} of {len(rows)} calls answered"
        for index in range(len(rows)):
            np.testing.assert_array_equal(answers[index], expected[index : index + 1])
        after = batches()
        return after[0] - before[0], after[1] - before[1]

    seen = []
    for _ in range(5):
        n_batches, n_requests = burst()
        assert n_requests == len(rows), n_requests
        seen.append(n_batches)
        if n_batches < n_requests:
            break
    assert min(seen) < len(rows), seen


def test_bad_requests_get_status_codes_with_the_messages_http_gives(servers, repository):
    http, client, stub = servers
    _, frame, _ = repository
    rows = frame.iloc[:2].to_numpy(np.float32)

    cases = [  # (model, version, inputs, gRPC status, HTTP status)
        ("nope", "", {"X": ("FP32", rows)}, "NOT_FOUND", 404),
        ("cancer", "9", {"X": ("FP32", rows)}, "NOT_FOUND", 404),
        ("cancer", "", {"X": ("FP32", rows[:, :5])}, "INVALID_ARGUMENT", 400),
        ("cancer", "", {"X": ("BOOL", rows > 0)}, "INVALID_ARGUMENT", 400),
        ("cancer", "", {"Z": ("FP32", rows)}, "INVALID_ARGUMENT", 400),
        ("broken", "", {"x": ("FP32", rows)}, "UNAVAILABLE", 503),
    ]
    for model, version, inputs, status, code in cases:
        got_status, message = grpc_error(lambda: client.infer(model, grpc_inputs(inputs), model_version=version))
        over_http = http_infer(http, f"{model}/versions/{version}" if version else model, inputs)
        assert (got_status, over_http.status_code) == (status, code), (model, version, inputs)
        assert message == over_http.json()["error"]
    nan = rows.copy()
    nan[0, 0] = np.nan
    status, message = grpc_error(lambda: client.infer("cancer", grpc_inputs({"X": ("FP32", nan)})))
    assert (status, message) == ("INVALID_ARGUMENT", "input 'X' contains NaN, infinity or null")

    request = typed_request("cancer", {"X": ("FP32", rows)})
    request.raw_input_contents.append(rows.tobytes())
    request.raw_input_contents.append(rows.tobytes())
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "raw_input_contents has 2 entries for 1 inputs" in raised.value.details()
    misplaced = service_pb2.ModelInferRequest(model_name="cancer")
    tensor = misplaced.inputs.add(name="X", datatype="FP32", shape=[2, 6])
    tensor.contents.fp64_contents.extend(rows.reshape(-1).tolist())
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(misplaced)
    assert "its values belong in fp32_contents, not ['fp64_contents']" in raised.value.details()


def test_explicit_model_control_loads_and_unloads_over_grpc_and_metrics_count_grpc_calls(servers, repository):
    http, client, _ = servers
    rows = repository[1].iloc[:1].to_numpy(np.float32)
    client.unload_model("wine_gmm")
    assert not client.is_model_ready("wine_gmm")
    status, message = grpc_error(lambda: client.infer("wine_gmm", grpc_inputs({"X": ("FP64", load_wine().data[:1])})))
    assert status == "UNAVAILABLE" and "unloaded" in message
    client.load_model("wine_gmm")
    assert client.is_model_ready("wine_gmm")
    client.infer("cancer", grpc_inputs({"X": ("FP32", rows)}))
    assert grpc_error(lambda: client.infer("nope", grpc_inputs({"X": ("FP32", rows)})))[0] == "NOT_FOUND"
    metrics = http.get("/metrics").text
    assert 'toolkit_requests_total{code="200",endpoint="grpc_ModelInfer",model="cancer"}' in metrics
    assert 'toolkit_requests_total{code="404",endpoint="grpc_ModelInfer",model="unknown"}' in metrics


def test_unload_is_refused_over_grpc_unless_model_control_is_explicit(repository, tmp_path):
    port = free_port()
    process, http = start_server(repository[0], tmp_path / "serve.log", "--grpc-port", str(port))
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        status, message = grpc_error(lambda: client.unload_model("cancer"))
        assert status == "FAILED_PRECONDITION"
        assert message == http.post("/v2/repository/models/cancer/unload").json()["error"]
        assert client.is_model_ready("cancer")
    finally:
        client.close()
        stop_server(process, http)


def test_a_full_queue_is_resource_exhausted_and_sigterm_drains_the_calls_in_flight(repository, tmp_path):
    """Requests wait in the batcher 2 s; a queue of 4 holds four of six concurrent calls (the other
    two: RESOURCE_EXHAUSTED); SIGTERM while they wait: each is answered, then the server exits 0."""
    port = free_port()
    process, http = start_server(
        repository[0],
        tmp_path / "serve.log",
        *("--grpc-port", str(port), "--max-batch-size", "64", "--max-queue-delay-us", "2000000"),
        *("--max-queue-size", "4", "--log-level", "warning"),
    )
    rows = repository[1].iloc[:1].to_numpy(np.float32)

    def ask(_):
        with triton_grpc.InferenceServerClient(f"127.0.0.1:{port}") as own:
            try:
                own.infer("cancer", grpc_inputs({"X": ("FP32", rows)}))
                return "OK"
            except InferenceServerException as error:
                return error.status().removeprefix("StatusCode.")

    def queued() -> float:
        return metric(http.get("/metrics").text, 'toolkit_queued_requests{model="cancer"}')

    try:
        with ThreadPoolExecutor(6) as pool:
            answers = pool.map(ask, range(6))
            deadline = time.time() + 10
            while queued() < 4 and time.time() < deadline:
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            assert sorted(answers) == ["OK"] * 4 + ["RESOURCE_EXHAUSTED"] * 2
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        http.close()


def test_graph_messages_need_no_generated_code_and_live_beside_tritonclients_stubs():
    """The service is compiled from the proto into a pool of its own: importing it beside
    tritonclient.grpc (the same names in protobuf's default pool) clashes with nothing."""
    from toolkit.serving._grpc_v2 import PROTO, protocol

    compiled = protocol()
    assert [m.name for m in compiled.service.methods] == [
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
        "RepositoryIndex",
        "RepositoryModelLoad",
        "RepositoryModelUnload",
    ]
    ours = compiled["ModelInferRequest"].DESCRIPTOR
    theirs = service_pb2.ModelInferRequest.DESCRIPTOR
    assert [(f.name, f.number, f.type) for f in ours.fields] == [(f.name, f.number, f.type) for f in theirs.fields]
    assert not list(PROTO.parent.glob("*_pb2*.py"))
