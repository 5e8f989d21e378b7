"""The one table of tensor element types the serving side knows, by each of its names.

A type has a name in ``model.json`` (numpy's: ``"float32"``, ``"string"``), in the Open Inference
Protocol (``"FP32"``, ``"BYTES"``), in onnxruntime (``"tensor(float)"``) and a numpy dtype.
Everything that maps one to another (the loader's casts, the server's metadata, the codec's
decoding of JSON and binary tensors) reads this table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorType:
    """One element type under its four names.

    Parameters
    ----------
    name : str
        As ``model.json`` writes an input's dtype (numpy's name; "string" for text).
    datatype : str
        The Open Inference Protocol's datatype.
    onnx : str
        onnxruntime's type string of a tensor of it.
    numpy : numpy.dtype
        The array dtype (object for strings).
    family : {"float", "integer", "bool", "bytes"}
        A request may send any width of its input's number family.
    little_endian : numpy.dtype
        The dtype of its values in Triton's binary tensor extension.
    largest : float or None
        The largest finite magnitude of a float type.
    """

    name: str
    datatype: str
    onnx: str
    numpy: np.dtype
    family: str
    little_endian: np.dtype
    largest: float | None


def _type(name: str, datatype: str, onnx: str) -> TensorType:
    dtype = np.dtype(object if name == "string" else name)
    family = {"f": "float", "i": "integer", "u": "integer", "b": "bool"}.get(dtype.kind, "bytes")
    largest = float(np.finfo(dtype).max) if family == "float" else None
    return TensorType(name, datatype, onnx, dtype, family, dtype.newbyteorder("<"), largest)


TENSOR_TYPES: tuple[TensorType, ...] = (
    _type("float16", "FP16", "tensor(float16)"),
    _type("float32", "FP32", "tensor(float)"),
    _type("float64", "FP64", "tensor(double)"),
    *(
        _type(f"{kind}int{bits}", f"{kind.upper()}INT{bits}", f"tensor({kind}int{bits})")
        for kind in ("", "u")
        for bits in (8, 16, 32, 64)
    ),
    _type("bool", "BOOL", "tensor(bool)"),
    _type("string", "BYTES", "tensor(string)"),
)
BY_NAME = {t.name: t for t in TENSOR_TYPES}
BY_DATATYPE = {t.datatype: t for t in TENSOR_TYPES}
BY_ONNX = {t.onnx: t for t in TENSOR_TYPES}
BY_DTYPE = {t.numpy: t for t in TENSOR_TYPES}  # a dict lookup: dtype.name costs microseconds a call


def of_array(value: np.ndarray) -> TensorType:
    """The type of an array's elements (strings and objects: BYTES)."""
    kind = BY_DTYPE.get(value.dtype)
    if kind is None:
        kind = BY_NAME["string"] if value.dtype.kind in "OUS" else BY_NAME[value.dtype.newbyteorder("=").name]
    return kind
