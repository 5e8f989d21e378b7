"""The JSON hot path of inference requests (toolkit/serving/_fast_path.py): whatever it takes, the
thorough, field-by-field decoding takes too and decodes to the same arrays; it takes the forms
clients send and leaves the others to the thorough way."""

import math
from types import SimpleNamespace

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.serving._codec import binary_outputs
from toolkit.serving._dataplane import DataPlane, RequestError, parse_request
from toolkit.serving._fast_path import FastPath
from toolkit.serving._settings import ServerSettings
from toolkit.serving._tensor_types import BY_DATATYPE, BY_NAME

MODELS = {
    "one float input": [{"name": "X", "dtype": "float32", "shape": [None, 4]}],
    "integers and floats with NaN": [
        {"name": "a", "dtype": "int64", "shape": [None, 2]},
        {"name": "b", "dtype": "float64", "shape": [None, 3], "allow_nan": True},
    ],
    "small integers, one axis": [{"name": "c", "dtype": "int8", "shape": [None]}],
    "fixed rows": [{"name": "X", "dtype": "float16", "shape": [2, None, 3]}],
    "unsigned": [{"name": "u", "dtype": "uint32", "shape": [None, 2]}],
}
MAX_ROWS = 5


def served(specs: list[dict]) -> SimpleNamespace:
    """What DataPlane's decoding reads of a served model."""
    return SimpleNamespace(model=SimpleNamespace(inputs=specs, entry={}), output_names=["y"])


PLANE = DataPlane(None, ServerSettings(max_rows=MAX_ROWS))


def arrays(feed: dict) -> dict:
    return {name: (value.dtype, value.shape, value.tobytes()) for name, value in feed.items()}


def thorough(specs: list[dict], body: bytes, header: str | None = None):
    """("ok", arrays, id, the outputs answered as binary) or ("error", status, message) of the
    thorough way."""
    try:
        payload = parse_request(body, header)
        feed, _ = PLANE._feed(served(specs), payload)
    except RequestError as error:
        return "error", error.status, str(error)
    return "ok", arrays(feed), payload.get("id"), binary_outputs(payload, ["y"])


def fast(specs: list[dict], body: bytes, header: str | None = None):
    """The fast path's decoding as ``thorough`` writes it, or None where it leaves the request."""
    decoded = FastPath.of(specs).decode(body, MAX_ROWS, header)
    if decoded is None:
        return None
    feed, fields = decoded
    return "ok", arrays(feed), fields.get("id"), binary_outputs(fields, ["y"])


NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-300, 300))
VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(-300, 300),
    st.sampled_from([1e39, -1e300, 2**63, -(2**63), 0.5, True, False, None, "1.5", [1.0]]),
)


def sometimes(draw) -> bool:
    """True one time in eight: each field is wrong that often, so that most requests are right
    but for one or two fields, and a quarter right in every field."""
    return draw(st.sampled_from(range(8))) == 5


@st.composite
def tensor(draw, spec: dict) -> dict:
    """A request tensor for ``spec``: right, or wrong in one or more fields."""
    rank = len(spec["shape"])
    shape = [size if size is not None else draw(st.integers(0, MAX_ROWS + 1)) for size in spec["shape"]]
    if sometimes(draw):
        shape = draw(
            st.lists(st.one_of(st.integers(-1, 4), st.sampled_from([True, 2.0, "2", None])), max_size=rank + 1)
            | st.sampled_from([None, "1,4", {"rows": 1}])
        )
    sizes = isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)
    count = math.prod(shape) if sizes else 2
    values = VALUES if sometimes(draw) else NUMBERS if spec["dtype"].startswith("float") else st.integers(-128, 127)
    sized = (
        st.lists(values, max_size=count + 2) if sometimes(draw) else st.lists(values, min_size=count, max_size=count)
    )
    flat = draw(sized)
    if sizes and len(shape) > 1 and shape[0] and len(flat) % shape[0] == 0 and draw(st.booleans()):
        width = len(flat) // shape[0]
        data = [flat[row * width : (row + 1) * width] for row in range(shape[0])]  # nested by rows
    else:
        data = draw(st.sampled_from(["1.0", None, {"x": 1}])) if sometimes(draw) else flat
    own = BY_NAME[spec["dtype"]].datatype
    request = {
        "name": draw(st.sampled_from(["other", 3, None])) if sometimes(draw) else spec["name"],
        "shape": shape,
        "datatype": draw(st.sampled_from(["FP32", "FP64", "INT64", "BOOL", "BYTES", "fp32", 1]))
        if sometimes(draw)
        else own,
        "data": data,
    }
    if sometimes(draw):
        del request[draw(st.sampled_from(list(request)))]
    if sometimes(draw):
        request["parameters"] = draw(st.sampled_from([{}, {"binary_data_size": 3}, "x"]))
    return request


@st.composite
def request(draw, specs: list[dict]) -> dict:
    inputs = [draw(tensor(spec)) for spec in specs]
    if sometimes(draw):
        inputs = draw(st.sampled_from([inputs[:-1], inputs + inputs[:1], inputs[::-1], "x", []]))
    extra = draw(
        st.sampled_from(
            [
                {"id": 7},
                {"outputs": [{"name": "y"}]},
                {"parameters": {}},
                {"parameters": {"binary_data_output": True}},
                {"parameters": {"binary_data_output": 1}},
                {"parameters": {"binary_data_output": False, "priority": 1}},
                {"id": "r-1"},
            ]
        )
    )
    return {"inputs": inputs} | (extra if sometimes(draw) else {})


@st.composite
def binary_request(draw, specs: list[dict]) -> tuple[bytes, str]:
    """(body, Inference-Header-Content-Length) with Triton's binary tensor extension, as
    tritonclient.http sends it: each input's values as little-endian bytes of its datatype after
    the JSON; or wrong in the JSON, the sizes, the bytes or the header."""
    payload = draw(request(specs))
    tails = []
    for tensor in payload["inputs"] if isinstance(payload["inputs"], list) else []:
        if not isinstance(tensor, dict) or "data" not in tensor or sometimes(draw):
            continue  # stays JSON
        data, kind = tensor.pop("data"), BY_DATATYPE.get(tensor.get("datatype"), None)
        try:
            with np.errstate(all="ignore"):
                raw = np.array(data, dtype=kind.little_endian).tobytes()
        except (AttributeError, TypeError, ValueError, OverflowError):  # not numbers of a numeric datatype
            raw = draw(st.binary(max_size=24))
        if sometimes(draw):
            raw = draw(st.binary(max_size=24))  # NaN, infinity, sizes that do not fit
        size = len(raw) + draw(st.sampled_from([-1, 1])) if sometimes(draw) else len(raw)
        tensor["parameters"] = {"binary_data_size": size}
        tails.append(raw)
    header = orjson.dumps(payload)
    body = header + b"".join(tails) + (b"\0" if sometimes(draw) else b"")
    return body, draw(st.sampled_from([str(len(header) + 1), "x", "-1"])) if sometimes(draw) else str(len(header))


# Each form of body, generated for an input signature: (body, Inference-Header-Content-Length).
FORMS = {
    "json": lambda specs: request(specs).map(lambda payload: (orjson.dumps(payload), None)),
    "binary": binary_request,
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("label", list(MODELS))
@settings(
    max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_what_the_fast_path_takes_is_decoded_as_the_thorough_way_decodes_it(label, form, data):
    specs = MODELS[label]
    body, header = data.draw(FORMS[form](specs))
    taken = fast(specs, body, header)
    if taken is not None:
        assert taken == thorough(specs, body, header)


def test_what_tritonclient_http_sends_by_default_takes_the_fast_path():
    """Binary inputs, binary outputs asked for: its body for a float32 [1, 4] input, byte for byte."""
    values = np.array([[0.5, -1.0, 3.25, 7.0]], dtype=np.float32)
    header = b'{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}],'
    header += b'"parameters":{"binary_data_output":true}}'
    body = header + values.tobytes()
    taken = fast(MODELS["one float input"], body, str(len(header)))
    assert taken is not None and taken == thorough(MODELS["one float input"], body, str(len(header)))
    assert taken[1]["X"][2] == values.tobytes() and taken[3] == {"y"}


@pytest.mark.parametrize(
    ("label", "payload"),
    [
        ("one float input", {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2.5, 3, 4]}]}),
        (
            "one float input",
            {
                "id": "a",
                "inputs": [{"datatype": "FP32", "data": [1, 2, 3, 4, 5, 6, 7, 8], "shape": [2, 4], "name": "X"}],
            },
        ),
        (
            "integers and floats with NaN",
            {
                "inputs": [
                    {"name": "b", "shape": [1, 3], "datatype": "FP64", "data": [None, 1e300, -2]},
                    {"name": "a", "shape": [1, 2], "datatype": "INT64", "data": [2**62, -5]},
                ]
            },
        ),
        (
            "small integers, one axis",
            {"inputs": [{"name": "c", "shape": [3], "datatype": "INT8", "data": [-128, 1, 127]}]},
        ),
        ("fixed rows", {"inputs": [{"name": "X", "shape": [2, 0, 3], "datatype": "FP16", "data": []}]}),
    ],
)
def test_the_forms_clients_send_take_the_fast_path(label, payload):
    body = orjson.dumps(payload)
    taken = fast(MODELS[label], body)
    assert taken is not None
    assert taken == thorough(MODELS[label], body)


def one(**changes) -> dict:
    """A request for "one float input", with ``changes`` to its tensor (None: the field removed)."""
    tensor = {"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]} | changes
    return {"inputs": [{key: value for key, value in tensor.items() if value is not None}]}


@pytest.mark.parametrize(
    "payload",
    [
        one(datatype="FP64"),  # another width: cast by the thorough way
        one(data=[[1.0, 2.0, 3.0, 4.0]]),  # nested by rows
        one(shape=[2, 2]),  # a fixed axis of 4
        one(shape=[6, 4], data=[0.0] * 24),  # over max_rows
        one(data=[1.0, True, 3.0, 4.0]),  # a JSON boolean
        one(data=[1.0, None, 3.0, 4.0]),  # null where NaN is not allowed
        one(data=[1.0, 1e39, 3.0, 4.0]),  # overflows float32
        one(data=[1.0, 2.0, 3.0]),  # fewer values than the shape holds
        one(name=None),
        one(parameters={}),
        one() | {"outputs": [{"name": "y"}]},
        one() | {"id": 7},
        {"inputs": one()["inputs"] * 2},  # the input twice
    ],
)
def test_other_forms_go_the_thorough_way(payload):
    assert fast(MODELS["one float input"], orjson.dumps(payload)) is None


def test_malformed_json_goes_the_thorough_way():
    assert FastPath.of(MODELS["one float input"]).decode(b'{"inputs": [', MAX_ROWS) is None


def test_strings_booleans_scalars_uint64_and_no_inputs_have_no_fast_path():
    assert FastPath.of([{"name": "s", "dtype": "string", "shape": [None, 1]}]) is None
    assert FastPath.of([{"name": "b", "dtype": "bool", "shape": [None]}]) is None
    assert FastPath.of([{"name": "x", "dtype": "float32", "shape": []}]) is None
    assert FastPath.of([]) is None
    assert FastPath.of([{"name": "u", "dtype": "uint64", "shape": [None]}]) is None  # beyond msgspec's bounds
    body = {"inputs": [{"name": "X", "shape": [2, 1, 3], "datatype": "FP16", "data": [0.5] * 6}]}
    feed, fields = FastPath.of(MODELS["fixed rows"]).decode(orjson.dumps(body), MAX_ROWS)
    assert feed["X"].dtype == np.float16 and feed["X"].shape == (2, 1, 3) and fields == {}
