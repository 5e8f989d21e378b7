"""Inference requests in the forms clients send, decoded and checked in one pass of msgspec's typed
JSON decoder: the hot path of HTTP inference.

The thorough way (:func:`~toolkit.serving._codec.parse_body` with orjson, then
:meth:`DataPlane._feed <toolkit.serving._dataplane.DataPlane>`: every field's type, then each tensor
by :func:`~toolkit.serving._codec.decode_tensor`) looks at each field in turn so that it can name
what is wrong; on a one-row digits request that is ~10 us of Python. Most requests are right, and in one
of two forms: ``{"inputs": [...]}`` (perhaps with a string ``"id"`` and ``"parameters":
{"binary_data_output": ...}``), each input exactly ``name``, ``shape``, ``datatype`` and a flat
``data`` list, its datatype the input's own; or, as tritonclient.http sends by default, Triton's
binary tensor extension: ``parameters: {"binary_data_size": n}`` instead of ``data``, the bytes
after the JSON. For each model :class:`FastPath` builds a decoder of each form (msgspec Structs: the
input's name and datatype as literals, non-negative ints for the shape, numbers within the input's
type's range for the data, a JSON boolean, string or null refused where the thorough way refuses
it), which checks all of it in C while it parses; what is left (the names each once, the shape
against the graph's and against the data; binary tensors' sizes, and their floats finite) is a few
comparisons. A request it cannot take, for any reason, returns None and goes the thorough way, the
one source of error messages; what it takes, the thorough way takes too and decodes to the same
arrays (tested on generated requests).

Why msgspec and not orjson with checks of our own: the checks are what cost (a set of the element
types, a sum of magnitudes, the fields' types), and msgspec does them during the parse: a one-row
digits request decodes in ~4 us instead of ~10.6 (~6 with orjson and the same checks in Python).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

import msgspec
import numpy as np

from toolkit.serving._tensor_types import BY_NAME


def _element(spec: dict):
    """The type of one ``data`` value of an input: a number within its type's range (a float
    input takes ints too, as the thorough way does; one that allows NaN takes null); None when
    the input is not numeric, or is uint64 (msgspec's bounds cannot state its range)."""
    expected = BY_NAME[spec["dtype"]]
    if expected.family == "float":
        number = Annotated[float, msgspec.Meta(ge=-expected.largest, le=expected.largest)]
        return number | None if spec.get("allow_nan", False) else number
    if expected.family == "integer" and expected.numpy != np.uint64:
        bounds = np.iinfo(expected.numpy)
        return Annotated[int, msgspec.Meta(ge=int(bounds.min), le=int(bounds.max))]
    return None


# A binary tensor's parameters (Triton's extension: its bytes follow the JSON), and the request's
# parameters the fast path takes (whether outputs are answered as binary).
BinaryData = msgspec.defstruct(
    "BinaryData", [("binary_data_size", Annotated[int, msgspec.Meta(ge=0)])], forbid_unknown_fields=True
)
Parameters = msgspec.defstruct("Parameters", [("binary_data_output", bool, False)], forbid_unknown_fields=True)


def _request_decoder(specs: list[dict], binary: bool) -> tuple[msgspec.json.Decoder, dict]:
    """(a decoder of requests in the common form, each tensor struct's input name): each input's
    ``data`` a list of its values, or with ``binary`` its ``parameters.binary_data_size``."""
    tensors = []
    for position, spec in enumerate(specs):
        fields = [
            ("shape", list[Annotated[int, msgspec.Meta(ge=0)]]),
            ("datatype", Literal[BY_NAME[spec["dtype"]].datatype]),
            ("parameters", BinaryData) if binary else ("data", list[_element(spec)]),
        ]
        if len(specs) == 1:  # one input: its name a field of its own
            tensor = msgspec.defstruct("Tensor", [("name", Literal[spec["name"]]), *fields], forbid_unknown_fields=True)
        else:  # several: the name tells which input's struct an object is
            tensor = msgspec.defstruct(
                f"Tensor{position}", fields, tag_field="name", tag=spec["name"], forbid_unknown_fields=True
            )
        tensors.append(tensor)
    request = msgspec.defstruct(
        "Request",
        [
            ("inputs", list[Union[tuple(tensors)]]),
            ("id", str | msgspec.UnsetType, msgspec.UNSET),
            ("parameters", Parameters | msgspec.UnsetType, msgspec.UNSET),
        ],
        forbid_unknown_fields=True,
    )
    return msgspec.json.Decoder(request), {tensor: spec["name"] for tensor, spec in zip(tensors, specs)}


class FastPath:
    """One model's decoders of requests in the common form (see the module's docstring): JSON
    data, or Triton's binary tensor extension (each input's bytes after the JSON, as
    tritonclient.http sends them by default).

    Parameters
    ----------
    specs : list of dict
        The model's inputs (``OnnxModel.inputs``): name, dtype, shape (None: a free axis).
    """

    def __init__(self, specs: list[dict]) -> None:
        self.specs = {spec["name"]: spec for spec in specs}
        self.json, json_names = _request_decoder(specs, binary=False)
        self.binary, binary_names = _request_decoder(specs, binary=True)
        self.names = json_names | binary_names  # each tensor struct's input name

    @classmethod
    def of(cls, specs: list[dict]) -> FastPath | None:
        """The model's fast path; None when it has an input that is not numeric or has no axes
        (strings, booleans and scalars go the thorough way), or no inputs."""
        if not specs or any(_element(spec) is None or not spec["shape"] for spec in specs):
            return None
        return cls(specs)

    def decode(
        self, body: bytes | bytearray, max_rows: int, binary_header: str | None = None
    ) -> tuple[dict[str, np.ndarray], dict] | None:
        """(the graph's feed, the request's other fields: ``id`` and ``parameters`` as given) of a
        request in the common form, or None: the thorough way decides (and names the problem, if
        there is one). ``binary_header``: the ``Inference-Header-Content-Length``, the size of the
        JSON before the binary tensors."""
        tail = None
        if binary_header is not None:
            if not binary_header.isdigit() or int(binary_header) > len(body):
                return None
            view = memoryview(body)
            body, tail = view[: int(binary_header)], view[int(binary_header) :]
        try:
            request = (self.json if tail is None else self.binary).decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        if len(request.inputs) != len(self.specs):
            return None
        feed, offset = {}, 0
        for tensor in request.inputs:
            name = self.names[type(tensor)]
            spec, shape = self.specs[name], tensor.shape
            if name in feed or len(shape) != len(spec["shape"]) or shape[0] > max_rows:
                return None
            for fixed, size in zip(spec["shape"], shape):
                if fixed is not None and fixed != size:
                    return None
            expected = BY_NAME[spec["dtype"]]
            if tail is None:
                if len(tensor.data) != math.prod(shape):
                    return None
                feed[name] = np.array(tensor.data, dtype=expected.numpy).reshape(shape)
                continue
            size = tensor.parameters.binary_data_size
            if offset + size > len(tail) or size != math.prod(shape) * expected.little_endian.itemsize:
                return None
            values = np.frombuffer(tail[offset : offset + size], dtype=expected.little_endian)
            offset += size
            if expected.family == "float" and not np.isfinite(values).all():
                return None  # NaN or infinity: the thorough way says which is allowed
            feed[name] = values.astype(expected.numpy, copy=False).reshape(shape)
        if tail is not None and offset != len(tail):
            return None
        fields = {} if request.id is msgspec.UNSET else {"id": request.id}
        if request.parameters is not msgspec.UNSET:
            fields["parameters"] = {"binary_data_output": request.parameters.binary_data_output}
        return feed, fields
