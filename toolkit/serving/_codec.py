"""Open Inference Protocol (V2) tensors to numpy arrays and back, as JSON or Triton's binary
tensor extension; the request body's JSON and the answer's bytes.

Transport-free: errors are ``ValueError`` naming the problem (the server answers them 400).
Element types come from the one table in :mod:`toolkit.serving._tensor_types`.
"""

from __future__ import annotations

import math
import re

import numpy as np
import orjson

from toolkit.serving._format import shape_text
from toolkit.serving._tensor_types import BY_DATATYPE, BY_NAME, TensorType, of_array

BINARY_HEADER = "inference-header-content-length"  # Triton's binary tensor extension
NON_JSON_NUMBER = re.compile(rb"\bNaN\b|\bInfinity\b")  # what Python's json.dumps writes for them
NUMBER_TYPES = {int, float}


def json_bytes(content) -> bytes:
    """Compact UTF-8 JSON, numpy arrays included (written by orjson, ~15x faster than ``json``
    on an inference answer, which weighs on every request)."""
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


# ------------------------------------------------------------------------ request bodies
def parse_body(body: bytes | bytearray, header: str | None) -> dict:
    """The body as a JSON object; ValueError when malformed.

    With Triton's binary tensor extension (an ``Inference-Header-Content-Length`` header) the
    JSON is the body's first that many bytes and the inputs whose parameters give a
    ``binary_data_size`` take their bytes, in order, from the rest: they come back as the
    input's ``data`` (bytes) for :func:`decode_tensor`.
    """
    if header is not None and (not header.isdigit() or int(header) > len(body)):
        raise ValueError(f"{BINARY_HEADER} is {header!r}; the body has {len(body)} bytes")
    json_size = len(body) if header is None else int(header)
    try:
        payload = orjson.loads(memoryview(body)[:json_size])
    except orjson.JSONDecodeError as error:
        hint = " (NaN and Infinity are not JSON numbers)" if NON_JSON_NUMBER.search(body, 0, json_size) else ""
        raise ValueError(f"malformed JSON{hint}: {error}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"the body must be a JSON object, got {type(payload).__name__}")
    if header is not None:
        attach_binary_inputs(payload, memoryview(body)[json_size:])
    return payload


def attach_binary_inputs(payload: dict, binary: memoryview) -> None:
    """Give each input that declares ``parameters.binary_data_size`` its bytes, in input order."""
    offset = 0
    inputs = payload.get("inputs")
    for index, tensor in enumerate(inputs if isinstance(inputs, list) else []):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict):
            continue  # the request's check names a parameters field of the wrong type
        size = parameters.get("binary_data_size")
        if size is None:
            continue
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(binary):
            raise ValueError(
                f"inputs[{index}].parameters.binary_data_size is {size!r}; {len(binary) - offset} binary bytes are left"
            )
        tensor["data"] = bytes(binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise ValueError(f"{len(binary) - offset} binary bytes after the inputs' declared sizes")


def binary_outputs(payload: dict, names: list[str]) -> set[str]:
    """The outputs to send as binary: all with ``parameters.binary_data_output``, else those
    requested with ``parameters.binary_data`` (a request whose fields passed
    :func:`request_problem`)."""
    if (payload.get("parameters") or {}).get("binary_data_output"):
        return set(names)
    return {o["name"] for o in payload.get("outputs") or [] if (o.get("parameters") or {}).get("binary_data")}


JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def json_type(value) -> str:
    """The JSON type of a decoded value, as an error message says it ("an object", "a number")."""
    return JSON_TYPES.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def request_problem(payload: dict) -> str | None:
    """What is wrong with the types of an inference request's fields, naming the field (as
    ``inputs[1].datatype``); None when every field present has the protocol's type: ``id`` a
    string, ``parameters`` objects, ``inputs`` and ``outputs`` arrays of objects whose ``name``
    and ``datatype`` are strings, ``binary_data`` and ``binary_data_output`` booleans. The
    values (shapes, data, datatypes' names) are checked where they are read."""
    checks = [("id", str, "a string"), ("parameters", dict, "an object")]
    problems = [
        f"{field} must be {what}, got {json_type(payload[field])}"
        for field, kind, what in checks
        if field in payload and not isinstance(payload[field], kind)
    ]
    flag = (payload.get("parameters") or {}).get("binary_data_output") if not problems else None
    if flag is not None and not isinstance(flag, bool):
        problems.append(f"parameters.binary_data_output must be a boolean, got {json_type(flag)}")
    for key, fields in (("inputs", ("name", "datatype")), ("outputs", ("name",))):
        tensors = payload.get(key)
        if tensors is None:
            continue
        if not isinstance(tensors, list):
            problems.append(f"{key} must be an array of objects, got {json_type(tensors)}")
            continue
        for index, tensor in enumerate(tensors):
            where = f"{key}[{index}]"
            if not isinstance(tensor, dict):
                problems.append(f"{where} must be an object, got {json_type(tensor)}")
                continue
            problems += [
                f"{where}.{field} must be a string, got {json_type(tensor[field])}"
                for field in fields
                if field in tensor and not isinstance(tensor[field], str)
            ]
            parameters = tensor.get("parameters")
            if parameters is not None and not isinstance(parameters, dict):
                problems.append(f"{where}.parameters must be an object, got {json_type(parameters)}")
            elif key == "outputs" and not isinstance((parameters or {}).get("binary_data", False), bool):
                problems.append(f"{where}.parameters.binary_data must be a boolean")
    return "; ".join(problems[:3]) if problems else None


# ------------------------------------------------------------------------ request tensors
def _castable(sent: str, expected: TensorType) -> bool:
    """Whether a tensor of datatype ``sent`` may feed an input of type ``expected``: the same
    type, or another width of the same number family (as MLServer and KServe cast)."""
    if sent == expected.datatype:
        return True
    kind = BY_DATATYPE.get(sent)
    return kind is not None and kind.family == expected.family in ("float", "integer")


def decode_tensor(spec: dict, request_input: dict, max_rows: int) -> np.ndarray:
    """An OIP request tensor {"name", "shape", "datatype", "data"} as the array the graph's
    input ``spec`` takes (its dtype and shape, ready for ``session.run``); ValueError naming the
    problem otherwise.

    A float datatype of another width than the input's (FP64 data for an FP32 input) is cast,
    as are integer widths; a value out of the input's range is refused by name, as are JSON
    booleans, strings and nulls sent for a numeric input, NaN and infinity.
    """
    name = request_input.get("name")
    expected = BY_NAME[spec["dtype"]]
    absent = [key for key in ("datatype", "shape", "data") if key not in request_input]
    if absent:
        raise ValueError(
            f"input {name!r} is missing the field(s) {absent}; each input needs name, shape, datatype "
            f"({expected.datatype} here) and data"
        )
    datatype, shape, data = request_input["datatype"], request_input["shape"], request_input["data"]
    if isinstance(data, (bytes, bytearray, memoryview)):  # Triton's binary tensor extension
        data = _from_binary(bytes(data), datatype, name)
    if not _castable(datatype, expected):
        raise ValueError(f"input {name!r} has datatype {datatype!r}; the model takes {expected.datatype}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ValueError(f"input {name!r}: shape must be a list of non-negative ints, got {shape!r}")
    if not isinstance(data, (list, np.ndarray)):
        raise ValueError(f"input {name!r}: data must be a list, got {type(data).__name__}")
    if len(shape) != len(spec["shape"]):
        raise ValueError(
            f"input {name!r} has {len(shape)} dimensions {shape_text(shape)}; the model expects "
            f"{len(spec['shape'])}: {shape_text(spec['shape'])} (-1: any size)"
        )
    if shape and shape[0] > max_rows:
        raise ValueError(f"input {name!r} has {shape[0]} rows; this server takes at most {max_rows} per request")
    if expected.family == "bytes":
        values = np.asarray(data, dtype=object).reshape(-1)
        if any(value is None for value in values):
            raise ValueError(f"input {name!r} contains null; it takes strings (BYTES)")
    elif expected.family == "bool":
        values = _booleans(data, name)
    else:
        values = _numeric(data, name, expected, spec.get("allow_nan", False) and expected.family == "float")
    if values.size != math.prod(shape):
        raise ValueError(f"input {name!r}: shape {shape} holds {math.prod(shape)} values but data has {values.size}")
    if any(fixed is not None and fixed != size for fixed, size in zip(spec["shape"], shape)):
        raise ValueError(
            f"input {name!r} has shape {shape_text(shape)}; the model expects {shape_text(spec['shape'])} "
            "(-1: any size)"
        )
    return values.reshape(shape)


def _from_binary(raw: bytes, datatype: str, name: str) -> np.ndarray:
    """A binary tensor's flat values: little-endian numbers, or BYTES as 4-byte lengths + bytes."""
    if datatype == "BYTES":
        values, offset = [], 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise ValueError(f"input {name!r}: its binary BYTES data is cut inside an element's length")
            size = int.from_bytes(raw[offset : offset + 4], "little")
            values.append(raw[offset + 4 : offset + 4 + size].decode("utf-8", errors="replace"))
            offset += 4 + size
        return np.asarray(values, dtype=object)
    if datatype not in BY_DATATYPE:
        raise ValueError(f"input {name!r}: unknown datatype {datatype!r}")
    dtype = BY_DATATYPE[datatype].little_endian
    if len(raw) % dtype.itemsize:
        raise ValueError(f"input {name!r}: {len(raw)} bytes of binary data is not a whole number of {datatype}")
    return np.frombuffer(raw, dtype=dtype)


def _flat(data: list) -> list:
    """Nested lists flattened (the V2 JSON allows the data nested by shape)."""
    while data and isinstance(data[0], list):
        data = [value for row in data for value in (row if isinstance(row, list) else [row])]
    return data


def _booleans(data: list | np.ndarray, name: str) -> np.ndarray:
    """The flat values of a BOOL input: JSON true / false (or binary bytes)."""
    if isinstance(data, np.ndarray):
        return data.astype(np.bool_)
    flat = _flat(data)
    if not set(map(type, flat)) <= {bool}:
        raise ValueError(f"input {name!r} is BOOL: data must be JSON true / false")
    return np.array(flat, dtype=np.bool_)


def _numeric(data: list | np.ndarray, name: str, expected: TensorType, allow_nan: bool = False) -> np.ndarray:
    """The flat values of a numeric input, in the numpy dtype of its ``expected`` type.

    JSON data is flattened and its element types looked at once (numbers only; ``null`` too, as a
    missing value, when the input ``allow_nan``); when the sum of their magnitudes is finite and
    within the input's float width, no value can be NaN, infinite or overflow it, and they are
    converted straight to it. Otherwise (and for binary data) they are read at float64 and
    checked value by value, to say which problem it is. Infinity is refused everywhere.
    """
    datatype = expected.datatype
    missing = False
    if isinstance(data, np.ndarray):  # decoded from binary: typed already
        flat = data
        if expected.family == "integer" and flat.dtype.kind in "iu":
            return _integers(flat, name, expected)
        if flat.dtype == expected.little_endian and expected.family == "float":  # no cast: checked as it is
            finite = np.isfinite(flat).all()
            if finite or (allow_nan and not np.isinf(flat).any()):
                return flat.astype(expected.numpy, copy=False)
    else:
        flat = _flat(data)
        types = set(map(type, flat))
        if expected.family == "integer" and types <= {int}:
            return _integers(flat, name, expected)
        if not types <= NUMBER_TYPES:
            if bool in types:
                raise ValueError(f"input {name!r} is {datatype}: JSON booleans (true / false) are not numbers here")
            if type(None) in types and not allow_nan:
                raise ValueError(f"input {name!r} contains NaN, infinity or null")
            if not types <= NUMBER_TYPES | {type(None)}:
                raise ValueError(f"input {name!r}: data must be numbers (nested lists of one depth are fine)")
            flat, missing = [np.nan if value is None else value for value in flat], True
    if expected.family == "float":
        largest = expected.largest
        if isinstance(flat, list) and not missing and sum(map(abs, flat)) <= largest:  # finite, none overflows
            return np.array(flat, dtype=expected.numpy)
    values = np.asarray(flat, dtype=np.float64).reshape(-1)
    finite = np.isfinite(values)
    if not finite.all() and not (allow_nan and not np.isinf(values).any()):
        raise ValueError(
            f"input {name!r} contains infinity" if allow_nan else f"input {name!r} contains NaN, infinity or null"
        )
    if expected.family == "float":
        too_large = np.abs(values[finite]) > largest
        if too_large.any():
            raise ValueError(
                f"input {name!r}: the value {values[finite][too_large][0]:g} overflows {datatype} (largest magnitude "
                f"{largest:.4g})"
            )
        return values.astype(expected.numpy)
    if not np.array_equal(values, np.round(values)):
        raise ValueError(f"input {name!r} is {datatype} but data holds non-integers")
    bounds = np.iinfo(expected.numpy)
    outside = (values < bounds.min) | (values > bounds.max)
    if outside.any():
        raise ValueError(
            f"input {name!r}: the value {values[outside][0]:.0f} does not fit {datatype} [{bounds.min}, {bounds.max}]"
        )
    return values.astype(expected.numpy)


def _integers(flat: list | np.ndarray, name: str, expected: TensorType) -> np.ndarray:
    """Integer values (Python ints, or an integer array) as the input's integer type, their range
    checked exactly (through float64, 64-bit extremes would round)."""
    bounds = np.iinfo(expected.numpy)
    if len(flat):
        low, high = (int(flat.min()), int(flat.max())) if isinstance(flat, np.ndarray) else (min(flat), max(flat))
        if low < bounds.min or high > bounds.max:
            raise ValueError(
                f"input {name!r}: the value {low if low < bounds.min else high} does not fit {expected.datatype} "
                f"[{bounds.min}, {bounds.max}]"
            )
    return np.asarray(flat, dtype=expected.numpy).reshape(-1)


# ------------------------------------------------------------------------ answers
def encode_tensor(name: str, value: np.ndarray) -> dict:
    """An output array as an OIP response tensor (row-major flattened data). Numeric data stays
    a contiguous array, which :func:`json_bytes` (orjson) writes without a Python value per
    element: float32 values in their shortest float32 form, NaN as null."""
    datatype = of_array(value).datatype
    flat = value.reshape(-1)
    return {
        "name": name,
        "datatype": datatype,
        "shape": value.shape,  # orjson writes a tuple as an array
        "data": [str(v) for v in flat.tolist()] if datatype == "BYTES" else np.ascontiguousarray(flat),
    }


def encode_binary_tensor(name: str, value: np.ndarray) -> tuple[dict, bytes]:
    """An output as Triton's binary tensor extension sends it: the entry (no data, its byte
    count in parameters.binary_data_size) and the bytes (little-endian; BYTES length-prefixed)."""
    kind = of_array(value)
    if kind.datatype == "BYTES":
        raw = b"".join(len(b := str(v).encode("utf-8")).to_bytes(4, "little") + b for v in value.reshape(-1).tolist())
    else:
        raw = np.ascontiguousarray(value, dtype=kind.little_endian).tobytes()
    entry = {
        "name": name,
        "datatype": kind.datatype,
        "shape": list(value.shape),
        "parameters": {"binary_data_size": len(raw)},
    }
    return entry, raw


def infer_answer(body: dict, names: list[str], outputs: list[np.ndarray], binary: set[str]) -> tuple:
    """(content, media type, extra headers) of an inference answer: JSON, or JSON + binary blobs
    (Triton's extension) when outputs are binary. ``body`` holds the answer's other fields."""
    if not binary:
        body["outputs"] = [encode_tensor(n, v) for n, v in zip(names, outputs)]
        return json_bytes(body), "application/json", {}
    entries, blobs = [], []
    for name, value in zip(names, outputs):
        if name in binary:
            entry, raw = encode_binary_tensor(name, value)
            blobs.append(raw)
        else:
            entry = encode_tensor(name, value)
        entries.append(entry)
    header = json_bytes({**body, "outputs": entries})
    return header + b"".join(blobs), "application/octet-stream", {"Inference-Header-Content-Length": str(len(header))}
