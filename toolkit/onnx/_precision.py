"""Reduced-precision exports (``export(..., precision="int8" | "float16")``), made by
onnxruntime's own tools rather than by hand: ``onnxruntime.quantization`` for int8 and
``onnxruntime.transformers.float16`` for float16.

What is quantized is chosen by what runs faster under onnxruntime on a CPU (measured on this
project's nets with one thread, at batch sizes 1 and 64; ``benchmarks/precision.py``):

- the matrix products (MatMul, Gemm) dynamically (int8 weights, each batch's activations
  quantized as it runs), which beat static QDQ at both batch sizes (an MLP of 512 x 512: 1.7x /
  2.3x faster than float32 against 1.1x / 1.9x);
- the convolutions only statically (QDQ, activation ranges calibrated on rows the user gives,
  ``calibration=X``): a dynamically quantized Conv becomes ConvInteger, several times slower than
  the float Conv;
- and only nodes whose weight has at least :data:`MIN_QUANTIZED_WEIGHTS` values: quantizing the
  activations costs a few microseconds per node, which a small product does not win back (a
  64 x 128 Gemm breaks even, 512 x 512 runs 2.3x faster at batch 64); a graph's convolutions are
  quantized all together once one qualifies (:func:`worth_quantizing`).

A net with no such node exports its float32 graph, with a warning that says so. A float16 graph
keeps float32 inputs and outputs (casts inside), so that clients and ``toolkit serve`` requests do
not change; onnxruntime's CPU provider runs the operators it has no float16 kernel for in float32.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx

from toolkit.onnx._opset import graph_nodes, subgraphs

PRECISIONS = ("float32", "int8", "float16")
DYNAMIC_OPS = ["MatMul", "Gemm"]
MIN_QUANTIZED_WEIGHTS = 32768


def _initializers(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """A graph's constants by name, those of its Loop / Scan / If bodies included."""
    found = {tensor.name: tensor for tensor in graph.initializer}
    for body in subgraphs(graph):
        found |= _initializers(body)
    return found


def worth_quantizing(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], list[onnx.NodeProto]]:
    """(convolutions, matrix products) to quantize: the MatMul / Gemm nodes whose weight (a
    constant second input) holds at least :data:`MIN_QUANTIZED_WEIGHTS` values, and, once one Conv
    has, every Conv: onnxruntime runs a chain of QDQ convolutions as integer kernels end to end,
    and a float Conv left between quantized ones makes the chain slower than float32 (a CNN of 64
    and 128 channels: 1.45x faster with both convolutions quantized, 1.5x slower with the larger
    alone)."""
    weights = _initializers(model.graph)

    def large(node: onnx.NodeProto) -> bool:
        return int(np.prod(weights[node.input[1]].dims)) >= MIN_QUANTIZED_WEIGHTS

    weighted = [node for node in graph_nodes(model.graph) if len(node.input) > 1 and node.input[1] in weights]
    convolutions = [node for node in weighted if node.op_type == "Conv"]
    products = [node for node in weighted if node.op_type in DYNAMIC_OPS and large(node)]
    return (convolutions if any(large(node) for node in convolutions) else []), products


# A float16 graph's values against the float32 estimator's: float16 keeps 11 significant bits
# (a relative step of 1e-3), and a few layers of sums widen that.
FLOAT16_TOLERANCE = {"atol": 1e-2, "rtol": 1e-2}
DEFAULT_BUDGET = {"label_agreement": 0.99, "score_drop": 0.005, "relative_error": 0.02}


def accuracy_budget_of(budget: dict | None) -> dict:
    """The accuracy budget of a reduced-precision export: the defaults, updated by ``budget``;
    a ValueError names an unknown key or a value outside [0, 1]."""
    budget = dict(budget or {})
    unknown = sorted(set(budget) - set(DEFAULT_BUDGET))
    if unknown:
        raise ValueError(f"accuracy_budget has unknown keys {unknown}; it takes {sorted(DEFAULT_BUDGET)}")
    wrong = {key: value for key, value in budget.items() if not (isinstance(value, (int, float)) and 0 <= value <= 1)}
    if wrong:
        raise ValueError(f"accuracy_budget values are fractions between 0 and 1, got {wrong}")
    return DEFAULT_BUDGET | {key: float(value) for key, value in budget.items()}


def check_precision(precision: str, calibration, reasons: list[str], owner: str) -> None:
    """Refuse an unknown precision, calibration rows without int8, and a reduced precision for a
    graph whose spec says why its arithmetic must stay as it is (``reasons``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if calibration is not None and precision != "int8":
        raise ValueError(f"calibration rows are for static int8 quantization; precision is {precision!r}")
    if calibration is not None and len(calibration) == 0:
        raise ValueError("calibration has no rows; give a few hundred rows of X")
    if precision != "float32" and reasons:
        raise ValueError(f"{owner} cannot be exported at {precision}: {reasons[0]}")


class _WithoutPreprocessingAdvice(logging.Filter):
    """onnxruntime's quantizers log, on the root logger, advice to run their shape-inference
    pre-processing first; the graphs toolkit hands them are inferred and checked already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _quiet_quantizer():
    advice = _WithoutPreprocessingAdvice()
    logging.getLogger().addFilter(advice)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(advice)


class _Rows:
    """onnxruntime's CalibrationDataReader protocol over feeds of a few rows each."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self._feeds, None)


def calibration_feeds(feed: dict[str, np.ndarray], batch: int = 32) -> list[dict[str, np.ndarray]]:
    """A graph's calibration inputs cut into batches."""
    n = len(next(iter(feed.values())))
    return [{name: value[a : a + batch] for name, value in feed.items()} for a in range(0, n, batch)]


def at_precision(
    model: onnx.ModelProto, precision: str, calibration: dict[str, np.ndarray] | None, what: str
) -> tuple[onnx.ModelProto, dict]:
    """(``model`` at ``precision``, what model.json records of how): int8 (dynamic, or static QDQ
    over the ``calibration`` feed), float16 (float32 inputs and outputs kept), or itself for
    float32. ``what`` names the graph in a warning."""
    if precision == "float32":
        return model, {}
    if precision == "float16":
        from onnxruntime.transformers.float16 import convert_float_to_float16
        from onnxruntime.transformers.onnx_model import OnnxModel

        converted = OnnxModel(convert_float_to_float16(model, keep_io_types=True))
        converted.topological_sort()  # the converter appends the output casts after the nodes that read them
        return converted.model, {"method": "float16 weights and arithmetic"}
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    convolutions, products = worth_quantizing(model)
    if calibration is None:
        convolutions = []  # a dynamically quantized Conv (ConvInteger) is slower than the float one
    how = {
        "method": "dynamic (int8 weights, activations quantized per batch)"
        + ("; convolutions static QDQ (activation ranges calibrated)" if convolutions else ""),
        "min_weights": MIN_QUANTIZED_WEIGHTS,
        "quantized_nodes": [node.name for node in convolutions + products],
        "calibration_rows": None if calibration is None else len(next(iter(calibration.values()))),
    }
    if not convolutions and not products:
        kinds = "MatMul / Gemm" + (" / Conv" if calibration is not None else "")
        warnings.warn(
            f"{what}: no {kinds} node has {MIN_QUANTIZED_WEIGHTS} weights or more, the size where int8 runs faster "
            "than float32 on a CPU; the int8 export is the float32 graph",
            UserWarning,
            stacklevel=3,
        )
        return model, how
    try:
        with _quiet_quantizer(), tempfile.TemporaryDirectory() as tmp:
            if convolutions:
                model = _quantized(
                    quantize_static,
                    model,
                    Path(tmp) / "static.onnx",
                    calibration_data_reader=_Rows(calibration_feeds(calibration)),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["Conv"],
                    nodes_to_quantize=[node.name for node in convolutions],
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                )
            if products:
                model = _quantized(
                    quantize_dynamic,
                    model,
                    Path(tmp) / "dynamic.onnx",
                    op_types_to_quantize=DYNAMIC_OPS,
                    # the dynamic quantizer first replaces each Gemm by a MatMul named after it
                    nodes_to_quantize=[name for node in products for name in (node.name, f"{node.name}_MatMul")],
                    weight_type=QuantType.QInt8,
                )
    except Exception as error:  # the quantizers raise several types
        raise ValueError(f"onnxruntime could not quantize {what}: {error}") from error
    return model, how


def _quantized(quantize, model: onnx.ModelProto, output: Path, **settings) -> onnx.ModelProto:
    """``quantize`` (one of onnxruntime's quantizers) run on a copy of ``model`` (they move its
    weights to files), its Loop / Scan bodies included (a caption decoder's step)."""
    copy = onnx.ModelProto.FromString(model.SerializeToString())
    quantize(copy, output, extra_options={"EnableSubgraph": True}, **settings)
    return onnx.load(output)
