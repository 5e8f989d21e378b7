"""Inference requests in the form clients send, decoded with as few Python operations as their
checks allow: the hot path of a JSON request.

The thorough decoding (:meth:`DataPlane._feed <toolkit.serving._dataplane.DataPlane>`, with
:func:`~toolkit.serving._codec.request_problem` and :func:`~toolkit.serving._codec.decode_tensor`)
checks each field in turn so that it can name what is wrong, about 10 us a one-row request. Most
requests are right, and in one form: ``{"inputs": [...]}`` (and perhaps a string ``"id"``), each
input exactly ``name``, ``shape``, ``datatype`` and ``data``, its datatype the input's own, a
numeric ``data`` list. :func:`fast_feed` checks such a request with a plan made once per model
(:func:`input_plans`) and returns its feed; for anything else, or any doubt, it returns None and
the request takes the thorough way, the one source of every error message. What it accepts the
thorough way accepts too, decoded to the same arrays: the values themselves are read by the same
function (:func:`~toolkit.serving._codec.numeric_values`), which raises its own message.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from toolkit.serving._codec import numeric_values
from toolkit.serving._tensor_types import BY_NAME, TensorType

FIELDS = frozenset(("name", "shape", "datatype", "data"))  # an input's fields, all of them and no more
OTHER_FIELDS = frozenset(("inputs", "id"))  # a request's fields the fast path takes


class InputPlan(NamedTuple):
    """What a request tensor must be to feed one numeric input of a graph."""

    datatype: str  # the protocol's name of the input's own type
    expected: TensorType
    rank: int
    fixed: tuple[tuple[int, int], ...]  # (axis, size) of the axes whose size is fixed
    allow_nan: bool


def input_plans(specs: list[dict]) -> dict[str, InputPlan] | None:
    """Each input's plan by name, from a model's input specs (``OnnxModel.inputs``); None when
    an input is not numeric or has no axes (strings, booleans and scalars go the thorough way),
    or the graph has no inputs."""
    if not specs:
        return None
    plans = {}
    for spec in specs:
        expected = BY_NAME[spec["dtype"]]
        if expected.family not in ("float", "integer") or not spec["shape"]:
            return None
        fixed = tuple((axis, size) for axis, size in enumerate(spec["shape"]) if size is not None)
        allow_nan = bool(spec.get("allow_nan", False)) and expected.family == "float"
        plans[spec["name"]] = InputPlan(expected.datatype, expected, len(spec["shape"]), fixed, allow_nan)
    return plans


def fast_feed(plans: dict[str, InputPlan], payload: dict, max_rows: int) -> dict[str, np.ndarray] | None:
    """The graph's feed from a request in the common form, or None (the thorough way decides).

    Raises ValueError, as :func:`~toolkit.serving._codec.decode_tensor` does, only for the values
    of a well-formed tensor (a JSON boolean among numbers, an overflow, a value out of range).
    """
    inputs = payload.get("inputs")
    if type(inputs) is not list or len(inputs) != len(plans) or not payload.keys() <= OTHER_FIELDS:
        return None
    if type(payload.get("id", "")) is not str:
        return None
    tensors = {}  # every input's form is checked before any values are read, as the thorough way does
    for tensor in inputs:
        if type(tensor) is not dict or tensor.keys() != FIELDS:
            return None
        name, shape = tensor["name"], tensor["shape"]
        plan = plans.get(name) if type(name) is str else None
        if plan is None or name in tensors or tensor["datatype"] != plan.datatype or type(tensor["data"]) is not list:
            return None
        if type(shape) is not list or len(shape) != plan.rank:
            return None
        for size in shape:
            if type(size) is not int or size < 0:
                return None
        if shape[0] > max_rows:
            return None
        tensors[name] = (plan, tensor)
    feed = {}
    for name, (plan, tensor) in tensors.items():
        shape = tensor["shape"]
        values = numeric_values(tensor["data"], name, plan.expected, plan.allow_nan)
        if values.size != math.prod(shape):
            return None
        for axis, size in plan.fixed:
            if shape[axis] != size:
                return None
        feed[name] = values.reshape(shape)
    return feed
