"""``export``: a fitted estimator, or a fitted Pipeline around toolkit estimators, to ONNX + model.json.

Every family goes the same way: the estimator's ``__onnx_spec__()`` (the export protocol,
:mod:`toolkit._export_spec`) gives a torch module
per graph (input reshaping, the net, softmax / argmax), which ``torch.onnx.export`` turns
into a graph with a dynamic batch axis (or a function builds a graph from those, as a
diffusion sampler's Loop). Class indices are mapped to the original labels by a ``Gather``
appended to the graph. A Pipeline becomes ONE graph: see :mod:`toolkit.onnx._pipeline`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from toolkit._export_spec import InferenceSpec, inference_specs
from toolkit._version import __version__
from toolkit.onnx._files import atomic_write_files, json_bytes
from toolkit.onnx._opset import at_opset, check_target_opset, lowest_opset, one_import_per_domain
from toolkit.onnx._pipeline import is_toolkit, pipeline_graph
from toolkit.onnx._precision import FLOAT16_TOLERANCE, accuracy_budget_of, at_precision, check_precision
from toolkit.onnx._torch_graph import spec_to_onnx
from toolkit.serving._format import METADATA_FILE, file_digest, read_metadata


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it says about itself."""

    folder: Path
    model_path: Path
    metadata_path: Path
    metadata: dict


@dataclass
class Graph:
    """One graph of an export and what model.json records of it."""

    name: str
    model: onnx.ModelProto
    spec: InferenceSpec
    inputs: list[dict]
    feature_names: list[str] | None
    outputs: list


def estimator_graphs(estimator, specs: list[InferenceSpec], target_opset: int | None) -> list[Graph]:
    """The graphs of a toolkit estimator's ``specs``: torch exports, or built from the ones before
    (at toolkit's opset), each converted to ``target_opset``."""
    opset = check_target_opset(target_opset, lowest_opset(specs), type(estimator).__name__)
    built: dict[str, onnx.ModelProto] = {}
    graphs = []
    for spec in specs:
        built[spec.graph] = spec_to_onnx(spec, built)
        model = at_opset(built[spec.graph], opset, f"the {type(estimator).__name__}'s graph {spec.graph!r}")
        graphs.append(Graph(spec.graph, model, spec, spec.inputs, spec.feature_names, spec.outputs))
    return graphs


def pipeline_graphs(pipeline: Pipeline, options: dict, target_opset: int | None) -> list[Graph]:
    """ONE graph for a fitted Pipeline (see :mod:`toolkit.onnx._pipeline`), with the outputs
    of its last step that the Pipeline itself offers (it forwards predict, transform, ...
    but not, say, a VAE's ``encode``)."""
    final = pipeline.steps[-1][1]
    spec = None
    if is_toolkit(final):
        spec = next((s for s in inference_specs(final, options) if s.input_method is None), None)
        if spec is None:
            raise TypeError(
                f"the last step {pipeline.steps[-1][0]!r} ({type(final).__name__}) has no graph that reads X"
            )
    elif not any(is_toolkit(step) for _, step in pipeline.steps):
        raise TypeError("the Pipeline has no toolkit estimator; export it with skl2onnx directly")
    graph = pipeline_graph(pipeline, spec, target_opset)
    # each output compared with the Pipeline's method of the same name (the whole chain, not the step)
    outputs = [
        replace(o, method=getattr(pipeline, o.method_name))
        for o in graph.spec.outputs
        if hasattr(pipeline, o.method_name)
    ]
    name = spec.graph if spec is not None else "model"
    return [Graph(name, graph.model, graph.spec, graph.inputs, graph.feature_names, outputs)]


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


def _previous_graph_files(folder: Path) -> set[str]:
    """The graph files listed by the ``model.json`` already in ``folder``: plain file names
    only; none when there is no readable one."""
    try:
        entries = read_metadata(folder)["graphs"].values()
        return {
            entry["file"]
            for entry in entries
            if isinstance(entry["file"], str) and Path(entry["file"]).name == entry["file"]
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def full_precision_reasons(estimator, specs: list[InferenceSpec] | None) -> list[str]:
    """Why the graphs of an estimator (its ``specs``), or of a Pipeline's toolkit steps (``specs``
    None), must keep their dtype's arithmetic: each spec's ``full_precision``."""
    if specs is None:
        specs = [spec for _, step in estimator.steps if is_toolkit(step) for spec in inference_specs(step, {})]
    return [spec.full_precision for spec in specs if spec.full_precision]


def calibration_feed(graph: Graph, X) -> dict[str, np.ndarray]:
    """A graph's inputs for the calibration rows X (the estimator's X): per column when the graph
    reads a DataFrame's columns, else what its spec makes of X."""
    if isinstance(X, pd.DataFrame) and len(graph.inputs) > 1:
        values = [X[spec["name"]].to_numpy().reshape(-1, 1) for spec in graph.inputs]
    else:
        values = graph.spec.graph_inputs(X)
    return {
        spec["name"]: np.asarray(value, dtype=object if spec["dtype"] == "string" else spec["dtype"])
        for spec, value in zip(graph.inputs, values)
    }


def export(
    estimator,
    folder: str | Path,
    *,
    target_opset: int | None = None,
    precision: str = "float32",
    calibration=None,
    accuracy_budget: dict | None = None,
    **options,
) -> ExportResult:
    """Export a fitted toolkit estimator, or a fitted Pipeline ending in one, to ``folder``.

    Writes one ONNX graph per part of the estimator (``model.onnx`` for most; e.g.
    ``encoder.onnx`` and ``decoder.onnx`` for a VAE), each checked with
    ``onnx.checker.check_model(full_check=True)``, and ``model.json`` (toolkit version,
    estimator class and parameters, and per graph: file, its SHA-256, inputs with name / dtype /
    shape, feature names, classes, outputs, opset). All files of a previous export are
    replaced, all or none, graphs first and ``model.json`` last; a reader (``OnnxModel``,
    ``toolkit serve``) that meets an old ``model.json`` beside a new graph sees the digests
    disagree and reads again, so it loads one export or the other, never a mix. Graph files
    that the previous ``model.json`` listed and this export does not write are then removed
    (other files in the folder are left alone).

    Parameters
    ----------
    estimator : fitted toolkit estimator or sklearn.pipeline.Pipeline
    folder : str or Path
        Created when missing.
    target_opset : int, optional
        The ONNX opset of the graphs (for an older onnxruntime); default 20. Each family states
        the lowest it exports at (``InferenceSpec.min_opset``), and a lower one is refused with
        that figure; the newest is the installed onnx's (28 with onnx 1.23, the newest tested). A
        Pipeline's scikit-learn steps are converted by skl2onnx
        at this opset. ``model.json`` records each graph's opset.
    precision : {"float32", "int8", "float16"}, default="float32"
        The nets' graphs in reduced precision, made by onnxruntime's tools: ``"int8"`` quantizes
        the matrix products large enough to run faster in int8 (dynamically: int8 weights,
        activations quantized per batch), ``"float16"`` stores weights and computes in float16 with
        float32 inputs and outputs. The statistical graphs (GaussianMixture, ARForecaster, a DDPM's
        sampler) refuse both, saying why. :func:`validate` then reports what the precision costs
        against ``accuracy_budget`` (a float16 graph's values against atol = rtol = 1e-2, the
        tolerance ``model.json`` states for them).
    calibration : array-like or DataFrame, optional
        Rows of X (a few hundred) whose activation ranges calibrate a static (QDQ) int8
        quantization, which quantizes the convolutions too; int8 only.
    accuracy_budget : dict, optional
        What a reduced-precision export may cost, recorded in ``model.json`` for
        :func:`validate`: ``label_agreement`` (least share of labels equal to the estimator's,
        default 0.99), ``score_drop`` (most the estimator's score may drop, as a fraction: default
        0.005, half a point) and ``relative_error`` (most mean absolute difference of a value output
        relative to the estimator's mean absolute value, for graphs without labels: default 0.02).
    **options
        Export-time settings of the estimator's family, e.g. ``horizon`` and ``coverage``
        for a forecaster; recorded in ``model.json``.

    Returns
    -------
    ExportResult
    """
    folder = Path(folder)
    check_is_fitted(estimator)
    owner = type(estimator).__name__
    specs = None if isinstance(estimator, Pipeline) else inference_specs(estimator, options)
    check_precision(precision, calibration, full_precision_reasons(estimator, specs), owner)
    budget = accuracy_budget_of(accuracy_budget) if precision != "float32" else None
    graphs = (
        pipeline_graphs(estimator, options, target_opset)
        if specs is None
        else estimator_graphs(estimator, specs, target_opset)
    )
    entries: dict[str, dict] = {}
    files: dict[str, bytes] = {}
    extra_metadata: dict = {}
    for graph in graphs:
        one_import_per_domain(graph.model)  # onnxruntime's quantizers, too, want each domain once
        feed = None if calibration is None else calibration_feed(graph, calibration)
        model, reduction = at_precision(graph.model, precision, feed, f"the {owner}'s graph {graph.name!r}")
        model.producer_name, model.producer_version = "toolkit", __version__
        onnx.checker.check_model(model, full_check=True)
        spec = graph.spec
        extra_metadata |= spec.metadata
        files[f"{graph.name}.onnx"] = model.SerializeToString()
        entries[graph.name] = {
            "file": f"{graph.name}.onnx",
            "sha256": file_digest(files[f"{graph.name}.onnx"]),
            "inputs": graph.inputs,
            "input_method": None if spec.input_method is None else spec.input_method.__name__,
            "input_kwargs": json_safe(spec.input_kwargs),
            "feature_names": graph.feature_names,
            "classes": None if spec.classes is None else np.asarray(spec.classes).tolist(),
            "outputs": [
                {
                    "name": o.name,
                    "method": o.method_name,
                    "item": o.item,
                    "ndim": o.ndim,
                    "exact": o.exact,
                    "kwargs": json_safe(o.kwargs),
                    "tolerance": FLOAT16_TOLERANCE if precision == "float16" and not o.exact else o.tolerance,
                }
                for o in graph.outputs
            ],
            "opset": {entry.domain or "ai.onnx": entry.version for entry in model.opset_import},
            "precision": precision,
            **({"reduction": reduction} if reduction else {}),
        }
    metadata = {
        "toolkit_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "estimator": json_safe(estimator),
        "graphs": entries,
        "options": json_safe(options),
        "precision": precision,
        "accuracy_budget": budget,
        **extra_metadata,
        "validation": None,
    }
    previous = _previous_graph_files(folder)
    atomic_write_files(folder, files | {METADATA_FILE: json_bytes(metadata)})
    for name in previous - files.keys():
        (folder / name).unlink(missing_ok=True)
    first = next(iter(entries.values()))
    return ExportResult(folder, folder / first["file"], folder / METADATA_FILE, metadata)
