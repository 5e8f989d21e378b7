"""``export``: a fitted estimator, or a fitted Pipeline ending in one, to ONNX + model.json.

Every family goes the same way: the estimator's ``_inference_spec()`` gives a torch module
(input reshaping, the net, softmax / argmax), which ``torch.onnx.export`` turns into a graph
with a dynamic batch axis. Class indices are mapped to the original labels by a ``Gather``
appended to the graph. The scikit-learn steps before a toolkit estimator in a Pipeline are
converted by skl2onnx and joined in front of it with ``onnx.compose.merge_models``.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
import torch
from onnx import helper, numpy_helper
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

import toolkit
from toolkit._inference import InferenceSpec
from toolkit.onnx._files import atomic_write_files, json_bytes
from toolkit.serving._format import METADATA_FILE

OPSET = 20
ML_OPSET = 3


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it says about itself."""

    folder: Path
    model_path: Path
    metadata_path: Path
    metadata: dict


def inference_specs(estimator, options: dict) -> list[InferenceSpec]:
    """The estimator's inference specs (one per graph), or a TypeError naming a class that has none."""
    if not hasattr(estimator, "_inference_spec"):
        raise TypeError(
            f"{type(estimator).__name__} is not a toolkit estimator and cannot be exported on its own; "
            "export a Pipeline whose last step is a toolkit estimator"
        )
    specs = estimator._inference_spec(**options)
    return list(specs) if isinstance(specs, (list, tuple)) else [specs]


def pipeline_specs(pipeline: Pipeline, specs: list[InferenceSpec]) -> list[InferenceSpec]:
    """What a Pipeline exports of its last step: the graphs that read X, with the outputs
    whose method the Pipeline itself offers (it forwards predict, transform, ... but not,
    say, a VAE's ``encode``)."""
    kept = []
    for spec in specs:
        if spec.input_method is None:
            outputs = [o for o in spec.outputs if hasattr(pipeline, o.method)]
            kept.append(dataclasses.replace(spec, outputs=outputs))
    return kept


def torch_to_onnx(spec: InferenceSpec) -> onnx.ModelProto:
    """Export ``spec.module`` with torch's exporter (dynamo), with a dynamic batch axis."""
    output_names = [o.name for o in spec.outputs]
    if spec.classes is not None:
        output_names[0] = "label_index"
    batch = torch.export.Dim("batch")
    shapes = [spec.sample_shape] + [extra.sample_shape for extra in spec.extra_inputs]
    dynamic_shapes = tuple(
        {0: batch} | {i + 1: torch.export.Dim(f"in{k}_axis{i + 1}") for i, d in enumerate(shape) if d is None}
        for k, shape in enumerate(shapes)
    )
    examples = (torch.from_numpy(spec.example),) + tuple(torch.from_numpy(extra.example) for extra in spec.extra_inputs)
    buffer = io.BytesIO()
    # The exporter logs that optional torchvision ops are absent and warns about its own
    # deprecations; neither concerns the user's model.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            spec.module,
            examples,
            input_names=[spec.input_name] + [extra.name for extra in spec.extra_inputs],
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    program.save(buffer)
    return onnx.load_from_string(buffer.getvalue())


def append_label_lookup(model: onnx.ModelProto, classes: np.ndarray) -> None:
    """Replace the ``label_index`` output by ``label`` = classes[label_index] (a Gather);
    classes 0..n-1 need no lookup: the index output is renamed."""
    graph = model.graph
    if classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(len(classes))):
        for node in graph.node:
            node.output[:] = ["label" if name == "label_index" else name for name in node.output]
        next(o for o in graph.output if o.name == "label_index").name = "label"
        return
    if classes.dtype.kind in "OUS":
        values = numpy_helper.from_array(np.asarray(classes.astype(str), dtype=object), "classes")
        elem_type = onnx.TensorProto.STRING
    else:
        values = numpy_helper.from_array(classes.astype(np.int64), "classes")
        elem_type = onnx.TensorProto.INT64
    graph.initializer.append(values)
    graph.node.append(helper.make_node("Gather", ["classes", "label_index"], ["label"], axis=0, name="label_lookup"))
    index_output = next(o for o in graph.output if o.name == "label_index")
    position = list(graph.output).index(index_output)
    graph.output.remove(index_output)
    graph.output.insert(position, helper.make_tensor_value_info("label", elem_type, ["batch"]))


def sklearn_prefix_to_onnx(steps: Pipeline, n_features: int, input_name: str, dtype: str) -> onnx.ModelProto:
    """Convert the scikit-learn steps before a toolkit estimator with skl2onnx, in the dtype
    the estimator's graph reads (float32 or float64)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    tensor_type = DoubleTensorType if dtype == "float64" else FloatTensorType
    try:
        return convert_sklearn(
            steps,
            initial_types=[(input_name, tensor_type([None, n_features]))],
            target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        )
    except Exception as error:  # skl2onnx raises several types for unsupported steps
        names = [f"{name} ({type(step).__name__})" for name, step in steps.steps]
        raise TypeError(f"skl2onnx cannot convert the Pipeline steps {names}: {error}") from error


def join_prefix(prefix: onnx.ModelProto, model: onnx.ModelProto, input_name: str) -> onnx.ModelProto:
    """One graph: ``prefix``'s output feeds ``model``'s input; the prefix's input is kept."""
    opsets = {entry.domain: entry.version for entry in prefix.opset_import}
    if opsets.get("", OPSET) != OPSET:  # skl2onnx may pick a lower opset than asked
        prefix = onnx.version_converter.convert_version(prefix, OPSET)
    prefix = onnx.compose.add_prefix(prefix, "prep_", rename_inputs=False)
    prefix.ir_version = model.ir_version
    return onnx.compose.merge_models(prefix, model, io_map=[(prefix.graph.output[0].name, input_name)])


def json_safe(value):
    """Hyper-parameters as JSON: containers recursed, estimators named, the rest as repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if hasattr(value, "get_params"):
        return {"class": qualified_name(value), "params": json_safe(value.get_params(deep=False))}
    return repr(value)


def qualified_name(obj) -> str:
    cls = type(obj)
    module = cls.__module__
    public = module.split("._")[0] if module.startswith(("toolkit", "sklearn")) else module
    return f"{public}.{cls.__qualname__}"


def export(estimator, folder: str | Path, **options) -> ExportResult:
    """Export a fitted toolkit estimator, or a fitted Pipeline ending in one, to ``folder``.

    Writes one ONNX graph per part of the estimator (``model.onnx`` for most; e.g.
    ``encoder.onnx`` and ``decoder.onnx`` for a VAE), each checked with
    ``onnx.checker.check_model(full_check=True)``, and ``model.json`` (toolkit version,
    estimator class and parameters, and per graph: file, inputs with name / dtype / shape,
    feature names, classes, outputs, opset). All files of a previous export are replaced,
    all or none.

    Parameters
    ----------
    estimator : fitted toolkit estimator or sklearn.pipeline.Pipeline
    folder : str or Path
        Created when missing.
    **options
        Export-time settings of the estimator's family, e.g. ``horizon`` and ``coverage``
        for a forecaster; recorded in ``model.json``.

    Returns
    -------
    ExportResult
    """
    folder = Path(folder)
    is_pipeline = isinstance(estimator, Pipeline)
    final = estimator.steps[-1][1] if is_pipeline else estimator
    check_is_fitted(estimator)
    specs = inference_specs(final, options)
    if is_pipeline:
        specs = pipeline_specs(estimator, specs)
    graphs: dict[str, onnx.ModelProto] = {}
    entries: dict[str, dict] = {}
    extra_metadata: dict = {}
    for spec in specs:
        model = spec.build(graphs) if spec.build is not None else torch_to_onnx(spec)
        if spec.classes is not None:
            append_label_lookup(model, spec.classes)
        inputs, feature_names = spec.inputs, spec.feature_names
        if is_pipeline and len(estimator.steps) > 1:
            prefix = estimator[:-1]
            n_features = prefix.n_features_in_
            model = join_prefix(sklearn_prefix_to_onnx(prefix, n_features, "X", spec.dtype), model, spec.input_name)
            inputs = [{"name": "X", "dtype": spec.dtype, "shape": [None, n_features]}]
            names = getattr(prefix, "feature_names_in_", None)
            feature_names = [str(c) for c in names] if names is not None else None
        model.producer_name, model.producer_version = "toolkit", toolkit.__version__
        onnx.checker.check_model(model, full_check=True)
        graphs[spec.graph] = model
        extra_metadata |= spec.metadata
        entries[spec.graph] = {
            "file": f"{spec.graph}.onnx",
            "inputs": inputs,
            "input_method": spec.input_method,
            "input_kwargs": json_safe(spec.input_kwargs),
            "feature_names": feature_names,
            "classes": None if spec.classes is None else spec.classes.tolist(),
            "outputs": [
                {
                    "name": o.name,
                    "method": o.method,
                    "item": o.item,
                    "ndim": o.ndim,
                    "exact": o.exact,
                    "kwargs": json_safe(o.kwargs),
                    "tolerance": o.tolerance,
                }
                for o in spec.outputs
            ],
            "opset": {entry.domain or "ai.onnx": entry.version for entry in model.opset_import},
        }
    metadata = {
        "toolkit_version": toolkit.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "estimator": json_safe(estimator),
        "graphs": entries,
        "options": json_safe(options),
        **extra_metadata,
        "validation": None,
    }
    files = {entry["file"]: graphs[name].SerializeToString() for name, entry in entries.items()}
    atomic_write_files(folder, files | {METADATA_FILE: json_bytes(metadata)})
    first = next(iter(entries.values()))
    return ExportResult(folder, folder / first["file"], folder / METADATA_FILE, metadata)
