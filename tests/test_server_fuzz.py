"""Property-based fuzz of every V2 endpoint of a running ``toolkit serve``, generated from the
Open Inference Protocol's request schema (hypothesis-jsonschema): well-formed requests, requests
aimed at each model's real inputs with random datatypes, shapes and data, ill-typed fields at
every level, bodies that are not objects or not JSON, and binary-extension headers. Every answer
must be below 500, a 4xx must carry a JSON ``{"error": ...}``, and the server must serve after.
"""

import json
import shutil
import urllib.parse
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tests._server import start_server, stop_server
from toolkit.generative import DDPM
from toolkit.mixture import GaussianMixture
from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export


def fuzz(examples: int) -> settings:
    """``examples`` cases, the same on every run (a failure found once is found again), shrunk
    when one fails; the eight tests send 3,550 requests in all. A request drawn from the whole
    schema by hypothesis-jsonschema costs ~25 ms and more, the others a few: their counts differ so."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
DATATYPES += ["FP16", "FP32", "FP64", "BYTES"]

# The protocol's $inference_request (the Open Inference Protocol's REST definitions: an id, parameters,
# the input tensors with name, shape, datatype, parameters and data, the requested outputs), with the
# tensor data two levels deep (the generator does not follow recursive references).
SCALAR = {"type": ["number", "string", "boolean", "null"]}
PARAMETERS = {  # the parameters the server reads (others are ignored: the loosened schema sends any)
    "type": "object",
    "properties": {
        "binary_data_size": {"type": "integer"},
        "binary_data": {"type": "boolean"},
        "binary_data_output": {"type": "boolean"},
        "content_type": {"type": "string"},
    },
    "additionalProperties": False,
}
TENSOR_DATA = {"type": "array", "items": {"anyOf": [SCALAR, {"type": "array", "items": SCALAR}]}}
INPUT = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string"},
        "parameters": PARAMETERS,
        "data": TENSOR_DATA,
    },
    "required": ["name", "shape", "datatype", "data"],
    "additionalProperties": False,
}
OUTPUT = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "parameters": PARAMETERS},
    "required": ["name"],
    "additionalProperties": False,
}
REQUEST = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "parameters": PARAMETERS,
        "inputs": {"type": "array", "items": INPUT},
        "outputs": {"type": "array", "items": OUTPUT},
    },
    "required": ["inputs"],
    "additionalProperties": False,
}


def loosened(schema: dict) -> dict:
    """The schema with every property's type dropped, at every level: each field may be any
    JSON value (an object where a string belongs, a number where an array does)."""
    properties = {
        name: {"anyOf": [loosened(inner), {}]} if inner.get("type") in ("object", "array") else {}
        for name, inner in schema.get("properties", {}).items()
    }
    if schema.get("type") == "array":
        return {**schema, "items": {"anyOf": [loosened(schema["items"]), {}]}}
    return {**schema, "properties": properties} if properties else schema


def aimed(inputs: list[dict]):
    """Requests for a model with these inputs: the schema's tensors with the model's names (and
    others), any datatype, shapes near the model's, data of any element type (``TENSOR_DATA``)."""
    names = [spec["name"] for spec in inputs] + ["X", "other"]
    tensor = st.fixed_dictionaries(
        {
            "name": st.sampled_from(names),
            "shape": st.lists(st.integers(-2, 6), max_size=4),
            "datatype": st.sampled_from(DATATYPES + ["fp32", ""]),
            "data": from_schema(TENSOR_DATA),
        }
    )
    return st.fixed_dictionaries(
        {"inputs": st.lists(tensor, max_size=len(names))},
        optional={
            "outputs": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["label", "probabilities", "x"])}))
        },
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running server with a model of each kind of input: FP32 rows (in a Pipeline), FP64
    rows, one input per DataFrame column (strings among them), two inputs of two dtypes (a
    diffusion model's denoiser: FP32 and INT64), a folder of versions."""
    root = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"]).assign(kind=np.where(X[:, 3] > 0, "up", "down"))
    columns = ColumnTransformer([("num", StandardScaler(), ["a", "b", "c"]), ("cat", OneHotEncoder(), ["kind"])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models = {
            "rows": make_pipeline(StandardScaler(), MLPClassifier((4,), max_epochs=2, random_state=0)).fit(X, y),
            "mixture": GaussianMixture(2, random_state=0).fit(X.astype(np.float64)),
            "columns": make_pipeline(columns, MLPClassifier((4,), max_epochs=2, random_state=0)).fit(frame, y),
            "diffusion": DDPM(n_steps=5, hidden=8, n_blocks=1, max_epochs=1, random_state=0).fit(X[:, :2]),
        }
    for name, model in models.items():
        export(model, root / name)
    for version in ("1", "2"):
        shutil.copytree(root / "rows", root / "versioned" / version)
    process, client = start_server(root, root / "fuzz.log", "--quiet", "--model-control-mode", "explicit")
    inputs = {name: client.get(f"/v2/models/{name}").json()["inputs"] for name in client.get("/v2").json()["models"]}
    yield client, inputs
    stop_server(process, client)


NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "BYTES": object}


@st.composite
def mutated(draw, inputs: list[dict]):
    """A request the model would answer (its inputs' names, datatypes and shapes, a batch of 1
    to 3 rows, outputs asked for, binary flags), with one to three of its fields, at any level,
    replaced by a JSON value of any type: the fields are the schema's (``REQUEST``)."""
    rows = draw(st.integers(1, 3))
    tensors = []
    for spec in inputs:
        shape = [rows, *(2 if d == -1 else d for d in spec["shape"][1:])]
        size = int(np.prod(shape))
        values = ["up"] * size if spec["datatype"] == "BYTES" else np.arange(size, dtype=float).tolist()
        tensors.append({"name": spec["name"], "shape": shape, "datatype": spec["datatype"], "data": values})
    body = {"id": "r1", "parameters": {"binary_data_output": False}, "inputs": tensors}
    body["outputs"] = [{"name": "label", "parameters": {"binary_data": False}}]
    for _ in range(draw(st.integers(1, 3))):
        paths = list(field_paths(body))
        container, key = draw(st.sampled_from(paths))
        container[key] = draw(JSON_VALUES)
    return body


def field_paths(value):
    """(container, key) of every field and element of a decoded JSON body, at every level."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield value, key
        yield from field_paths(inner)


def check(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), response.text
        assert isinstance(response.json()["error"], str)


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


MODEL_NAMES = st.sampled_from(["rows", "mixture", "columns", "diffusion.denoiser", "diffusion.sampler", "versioned"])
NAMES = st.one_of(MODEL_NAMES, st.text(max_size=12))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@fuzz(150)
@given(name=NAMES, body=from_schema(REQUEST))
def test_well_formed_requests(served, name, body):
    client, _ = served
    check(client.post(f"/v2/models/{quoted(name)}/infer", json=body))


@fuzz(500)
@given(data=st.data(), name=MODEL_NAMES)
def test_requests_aimed_at_each_models_inputs(served, data, name):
    client, inputs = served
    body = data.draw(aimed(inputs[name]))
    version = data.draw(st.sampled_from([None, "1", "2", "3", "x"]))
    path = f"/v2/models/{name}" + (f"/versions/{quoted(version)}" if version else "") + "/infer"
    check(client.post(path, json=body))


@fuzz(300)
@given(name=NAMES, body=from_schema(loosened(REQUEST)))
def test_requests_whose_fields_may_have_any_type(served, name, body):
    client, _ = served
    check(client.post(f"/v2/models/{quoted(name)}/infer", json=body))


@fuzz(600)
@given(data=st.data(), name=MODEL_NAMES)
def test_answerable_requests_with_fields_of_the_wrong_type_at_every_level(served, data, name):
    client, inputs = served
    body = data.draw(mutated(inputs[name]))
    check(client.post(f"/v2/models/{name}/infer", json=body))


@fuzz(600)
@given(name=NAMES, body=JSON_VALUES)
def test_bodies_of_any_json_value(served, name, body):
    client, _ = served
    check(client.post(f"/v2/models/{quoted(name)}/infer", json=body))


@fuzz(500)
@given(
    name=MODEL_NAMES,
    body=st.one_of(st.binary(max_size=64), JSON_VALUES.map(lambda b: json.dumps(b).encode())),
    header=st.one_of(st.none(), st.integers(-5, 200).map(str), st.from_regex(r"[0-9a-z+-]{0,5}", fullmatch=True)),
    tail=st.binary(max_size=32),
)
def test_bodies_that_are_not_json_and_binary_extension_headers(served, name, body, header, tail):
    client, _ = served
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Inference-Header-Content-Length"] = header
    check(client.post(f"/v2/models/{name}/infer", content=body + tail, headers=headers))


RECORDS = st.one_of(
    st.lists(
        st.dictionaries(st.sampled_from(["a", "b", "c", "kind", "X", "z"]), JSON_VALUES, max_size=5), max_size=4
    ).map(lambda records: {"records": records}),
    from_schema({"type": "object", "properties": {"records": {}}}),
    JSON_VALUES,
)


@fuzz(600)
@given(name=NAMES, body=RECORDS, endpoint=st.sampled_from(["predict", "ready", "", "versions/1", "versions/1/ready"]))
def test_records_metadata_and_readiness(served, name, body, endpoint):
    client, _ = served
    path = f"/v2/models/{quoted(name)}" + (f"/{endpoint}" if endpoint else "")
    check(client.post(path, json=body) if endpoint == "predict" else client.get(path))


@fuzz(300)
@given(
    name=st.one_of(st.sampled_from(["rows", "versioned", "..", ".", "rows.model"]), st.text(max_size=12)),
    action=st.sampled_from(["load", "index"]),
    body=JSON_VALUES,
)
def test_repository_requests(served, name, action, body):
    client, _ = served
    path = "/v2/repository/index" if action == "index" else f"/v2/repository/models/{quoted(name)}/load"
    check(client.post(path, json=body))


def test_the_server_serves_after_the_fuzz(served):
    """Last in the file: the models still answer."""
    client, inputs = served
    assert client.get("/v2/health/live").json() == {"live": True}
    row = {"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4]}
    assert client.post("/v2/models/rows/infer", json={"inputs": [row]}).status_code == 200
    answer = client.post("/v2/models/rows/infer", json={"id": 7, "inputs": [row]})
    assert answer.status_code == 400 and answer.json()["error"] == "id must be a string, got a number"
    bad_name = {"inputs": [{**row, "name": {"an": "object"}}]}
    assert client.post("/v2/models/rows/infer", json=bad_name).json()["error"] == (
        "inputs[0].name must be a string, got an object"
    )
    bad_type = {"inputs": [{**row, "datatype": {"FP": 32}}], "outputs": [{"name": ["label"]}]}
    assert client.post("/v2/models/rows/infer", json=bad_type).json()["error"] == (
        "inputs[0].datatype must be a string, got an object; outputs[0].name must be a string, got an array"
    )
