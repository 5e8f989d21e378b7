"""The JSON hot path of inference requests (toolkit/serving/_fast_path.py): whatever it takes, it
decodes as the thorough, field-by-field decoding does (the same arrays, the same errors), and it
takes the forms clients send."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.serving._dataplane import DataPlane, RequestError
from toolkit.serving._fast_path import fast_feed, input_plans
from toolkit.serving._settings import ServerSettings

MODELS = {
    "one float input": [{"name": "X", "dtype": "float32", "shape": [None, 4]}],
    "integers and floats with NaN": [
        {"name": "a", "dtype": "int64", "shape": [None, 2]},
        {"name": "b", "dtype": "float64", "shape": [None, 3], "allow_nan": True},
    ],
    "small integers, one axis": [{"name": "c", "dtype": "int8", "shape": [None]}],
    "fixed rows": [{"name": "X", "dtype": "float16", "shape": [2, None, 3]}],
}
MAX_ROWS = 5


def served(specs: list[dict]) -> SimpleNamespace:
    """What DataPlane's decoding reads of a served model."""
    model = SimpleNamespace(inputs=specs, entry={})
    return SimpleNamespace(model=model, output_names=["y"], input_plans=input_plans(specs))


PLANE = DataPlane(None, ServerSettings(max_rows=MAX_ROWS))


def outcome(decode, model, payload):
    """("ok", {name: (dtype, shape, bytes)}, output names) or ("error", status, message)."""
    try:
        feed, names = decode(model, payload)
    except RequestError as error:
        return "error", error.status, str(error)
    return "ok", {name: (value.dtype, value.shape, value.tobytes()) for name, value in feed.items()}, names


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
    own = {"float16": "FP16", "float32": "FP32", "float64": "FP64", "int8": "INT8", "int64": "INT64"}[spec["dtype"]]
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
    extra = draw(st.sampled_from([{"id": 7}, {"outputs": [{"name": "y"}]}, {"parameters": {}}, {"id": "r-1"}]))
    return {"inputs": inputs} | (extra if sometimes(draw) else {})


@pytest.mark.parametrize("label", list(MODELS))
@settings(
    max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_every_request_is_decoded_as_the_thorough_way_decodes_it(label, data):
    model = served(MODELS[label])
    payload = data.draw(request(MODELS[label]))
    assert outcome(PLANE._feed, model, payload) == outcome(PLANE._checked_feed, model, payload)


@pytest.mark.parametrize(
    ("label", "payload"),
    [
        ("one float input", {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2.5, 3, 4]}]}),
        (
            "one float input",
            {
                "id": "a",
                "inputs": [{"datatype": "FP32", "data": [[1, 2, 3, 4], [5, 6, 7, 8]], "shape": [2, 4], "name": "X"}],
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
    ],
)
def test_the_forms_clients_send_take_the_fast_path(label, payload):
    model = served(MODELS[label])
    feed = fast_feed(model.input_plans, payload, MAX_ROWS)
    assert feed is not None
    assert outcome(PLANE._feed, model, payload) == outcome(PLANE._checked_feed, model, payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]},  # another width: cast
        {"inputs": [{"name": "X", "shape": [2, 2], "datatype": "FP32", "data": [1, 2]}]},  # a fixed axis of 4
        {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}], "outputs": [{"name": "y"}]},
        {"inputs": [{"name": "X", "shape": [6, 4], "datatype": "FP32", "data": [0] * 24}]},  # over max_rows
        {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4], "parameters": {}}]},
    ],
)
def test_other_forms_go_the_thorough_way(payload):
    assert fast_feed(served(MODELS["one float input"]).input_plans, payload, MAX_ROWS) is None


def test_values_are_refused_with_the_thorough_ways_message():
    model = served(MODELS["one float input"])
    payload = {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, True, 3, 4]}]}
    with pytest.raises(ValueError, match="JSON booleans"):
        fast_feed(model.input_plans, payload, MAX_ROWS)
    assert outcome(PLANE._feed, model, payload)[:2] == ("error", 400)


def test_strings_booleans_and_scalars_have_no_plan():
    assert input_plans([{"name": "s", "dtype": "string", "shape": [None, 1]}]) is None
    assert input_plans([{"name": "b", "dtype": "bool", "shape": [None]}]) is None
    assert input_plans([{"name": "x", "dtype": "float32", "shape": []}]) is None
    assert input_plans([]) is None
    assert np.dtype(input_plans(MODELS["fixed rows"])["X"].expected.numpy) == np.float16
