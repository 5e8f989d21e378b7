"""A fitted Pipeline as ONE graph: runs of scikit-learn steps converted by skl2onnx, toolkit
steps by their own export, joined in order with ``onnx.compose.merge_models``.

A toolkit step may sit anywhere: before the last step it contributes its ``transform``
output (a VAE's latent mean), after it the next step reads that. When the first step is a
ColumnTransformer, every DataFrame column becomes its own graph input, typed as the column
(strings for the columns an encoder learned string categories for, numbers otherwise).
Where one part's output dtype differs from the next part's input (float32 net, float64
mixture), a Cast joins them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from toolkit._export_spec import InferenceSpec, OutputSpec, SupportsOnnxExport, inference_specs
from toolkit.onnx._missing_values import missing_value_inputs
from toolkit.onnx._opset import at_opset, check_target_opset, graph_nodes, lowest_opset, ml_opset, subgraphs
from toolkit.onnx._torch_graph import spec_to_onnx

# skl2onnx's output names and the Pipeline methods they equal.
SKLEARN_OUTPUTS = {"label": ("predict", 1, True), "probabilities": ("predict_proba", 2, False)}


@dataclass
class Part:
    """One converted stretch of the Pipeline: its graph, what feeds it and what it passes on."""

    model: onnx.ModelProto
    input_name: str
    output_name: str | None  # None for the last part


def is_toolkit(step) -> bool:
    """Whether a step exports through the export protocol (else skl2onnx converts it)."""
    return isinstance(step, SupportsOnnxExport)


def _string_columns(transformer) -> bool:
    """Whether a fitted transformer (or a Pipeline of them) learned string categories."""
    steps = transformer.steps if isinstance(transformer, Pipeline) else [(None, transformer)]
    return any(any(np.asarray(c).dtype.kind in "OUS" for c in getattr(step, "categories_", [])) for _, step in steps)


def column_inputs(pipeline: Pipeline, numeric_dtype: str) -> list[dict] | None:
    """Per-column inputs [{"name", "dtype", "shape"}] when the Pipeline starts with a
    ColumnTransformer fitted on a DataFrame; None otherwise (one tensor X)."""
    first = pipeline.steps[0][1]
    names = getattr(first, "feature_names_in_", None)
    if not isinstance(first, ColumnTransformer) or names is None:
        return None
    strings: set[str] = set()
    for _, transformer, columns in first.transformers_:
        if transformer in ("drop", "passthrough") or not _string_columns(transformer):
            continue
        selected = names[columns] if np.asarray(columns).dtype.kind in "ib" else np.asarray(columns, dtype=object)
        strings |= {str(c) for c in np.atleast_1d(selected)}
    return [
        {"name": str(c), "dtype": "string" if str(c) in strings else numeric_dtype, "shape": [None, 1]} for c in names
    ]


def sklearn_to_onnx(steps: Pipeline, inputs: list[dict], classifier_options: bool, opset: int) -> onnx.ModelProto:
    """Convert a run of scikit-learn steps with skl2onnx at ``opset`` (and the ai.onnx.ml opset
    that goes with it)."""
    from skl2onnx import convert_sklearn, get_latest_tested_opset_version
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    types = {
        "float32": FloatTensorType,
        "float64": DoubleTensorType,
        "string": StringTensorType,
        "int64": Int64TensorType,
    }
    initial_types = [(spec["name"], types[spec["dtype"]](list(spec["shape"]))) for spec in inputs]
    options = {id(steps.steps[-1][1]): {"zipmap": False}} if classifier_options else None
    # above the newest opset skl2onnx was tested at, its graph is converted up from that one
    written = min(opset, get_latest_tested_opset_version())
    try:
        model = convert_sklearn(
            steps,
            initial_types=initial_types,
            target_opset={"": written, "ai.onnx.ml": ml_opset(written)},
            options=options,
        )
    except Exception as error:  # skl2onnx raises several types for unsupported steps
        names = [f"{name} ({type(step).__name__})" for name, step in steps.steps]
        raise TypeError(f"skl2onnx cannot convert the Pipeline steps {names} at opset {opset}: {error}") from error
    # skl2onnx writes the lowest opset its operators need: raised to the Pipeline's, which its other parts have
    return at_opset(model, opset, f"the Pipeline steps {[name for name, _ in steps.steps]}")


def _elem_type(model: onnx.ModelProto, name: str, *, output: bool) -> int:
    values = model.graph.output if output else model.graph.input
    return next(v for v in values if v.name == name).type.tensor_type.elem_type


def _width(model: onnx.ModelProto, name: str) -> int:
    value = next(v for v in model.graph.output if v.name == name)
    return value.type.tensor_type.shape.dim[1].dim_value


def _cast_input(model: onnx.ModelProto, input_name: str, elem_type: int) -> None:
    """Make ``input_name`` take ``elem_type`` and cast it to what the graph used before."""
    graph = model.graph
    value = next(v for v in graph.input if v.name == input_name)
    inner = input_name + "_cast"
    for node in graph.node:
        node.input[:] = [inner if n == input_name else n for n in node.input]
    graph.node.insert(
        0,
        helper.make_node("Cast", [input_name], [inner], to=value.type.tensor_type.elem_type, name=input_name + "_cast"),
    )
    value.type.tensor_type.elem_type = elem_type


def join(parts: list[Part]) -> onnx.ModelProto:
    """Merge the parts in order; each part's output feeds the next part's input."""
    model = parts[0].model
    for k, (before, after) in enumerate(zip(parts, parts[1:])):
        # The earlier part's outputs end inside the joined graph: prefixed, so that none clashes
        # with a name of the next part's (a step's own "variable" beside the next step's).
        model = onnx.compose.add_prefix(
            model,
            f"out{k}_",
            rename_nodes=False,
            rename_edges=False,
            rename_inputs=False,
            rename_outputs=True,
            rename_initializers=False,
            rename_value_infos=False,
        )
        source = f"out{k}_{before.output_name}"
        nxt = _prefixed(after.model, f"s{k + 1}_")
        nxt_input = f"s{k + 1}_{after.input_name}"
        produced = _elem_type(model, source, output=True)
        if _elem_type(nxt, nxt_input, output=False) != produced:
            _cast_input(nxt, nxt_input, produced)
        nxt.ir_version = model.ir_version = max(model.ir_version, nxt.ir_version)
        keep = [o.name for o in nxt.graph.output]
        model = onnx.compose.merge_models(model, nxt, io_map=[(source, nxt_input)], outputs=keep)
    return model


def _prefixed(model: onnx.ModelProto, prefix: str) -> onnx.ModelProto:
    """``onnx.compose.add_prefix`` on every name but the outputs, and on the outer initializers
    that a Loop's or Scan's body reads too: onnx renames a body before it learns the outer
    initializers' new names, and leaves such a reference (the captioner's ``null_id``) dangling."""
    outer = {init.name for init in model.graph.initializer}
    model = onnx.compose.add_prefix(model, prefix, rename_inputs=True, rename_outputs=False)

    for body in subgraphs(model.graph):
        for node in graph_nodes(body):
            node.input[:] = [prefix + name if name in outer else name for name in node.input]
    return model


@dataclass
class PipelineGraph:
    """The joined graph with what model.json records of it."""

    model: onnx.ModelProto
    spec: InferenceSpec
    inputs: list[dict]
    feature_names: list[str] | None


def pipeline_graph(pipeline: Pipeline, final_spec: InferenceSpec | None, target_opset: int | None) -> PipelineGraph:
    """ONE graph for a fitted Pipeline whose steps mix scikit-learn and toolkit estimators, at
    ``target_opset`` (None: toolkit's), refused below the lowest opset of its toolkit steps.

    ``final_spec`` is the last step's spec that reads X (None when the last step is a
    scikit-learn estimator).
    Each run of scikit-learn steps reads the dtype of what feeds it: the data's at the
    start, in the dtype of the first toolkit step (float32 nets, float64 mixtures and
    forecasters), else the previous part's output; ``join`` casts where parts disagree.
    """
    steps = pipeline.steps
    # Each toolkit step's spec, once: the last step's is given, the others give their transform.
    specs = {
        k: final_spec if k == len(steps) - 1 else _transform_spec(name, step)
        for k, (name, step) in enumerate(steps)
        if is_toolkit(step)
    }
    lowest = {k: lowest_opset([spec]) for k, spec in specs.items()}
    highest = max(lowest, key=lowest.get, default=None)
    owner = (
        "the Pipeline"
        if highest is None
        else f"the Pipeline's step {steps[highest][0]!r} ({type(steps[highest][1]).__name__})"
    )
    opset = check_target_opset(target_opset, lowest.get(highest, 1), owner)
    numeric = specs[min(specs)].dtype if specs else "float32"
    columns = column_inputs(pipeline, numeric)
    inputs = columns or [{"name": "X", "dtype": numeric, "shape": [None, pipeline.n_features_in_]}]
    accepted = missing_value_inputs(pipeline)
    for spec in inputs:  # strings are categories: a missing one is refused (as the encoders' graphs do)
        allowed = accepted if isinstance(accepted, bool) else accepted[spec["name"]]
        spec["allow_nan"] = bool(allowed) and spec["dtype"] != "string"
    parts: list[Part] = []
    spec, start = final_spec, 0
    while start < len(steps):
        if start in specs:
            last = start == len(steps) - 1
            step_spec = specs[start]
            model = at_opset(spec_to_onnx(step_spec), opset, f"Pipeline step {steps[start][0]!r}")
            output = None if last else next(o.name for o in step_spec.outputs if o.method_name == "transform")
            parts.append(Part(model, step_spec.input_name, output))
            start += 1
            continue
        stop = next((k for k in range(start, len(steps)) if k in specs), len(steps))
        if start == 0:
            run_inputs = inputs
        else:
            previous = parts[-1]
            dtype = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64"}[
                _elem_type(previous.model, previous.output_name, output=True)
            ]
            run_inputs = [{"name": "X", "dtype": dtype, "shape": [None, _width(previous.model, previous.output_name)]}]
        run = Pipeline(steps[start:stop])
        is_final = stop == len(steps)
        model = sklearn_to_onnx(run, run_inputs, is_final and hasattr(run, "predict_proba"), opset)
        parts.append(Part(model, model.graph.input[0].name, None if is_final else model.graph.output[0].name))
        if is_final:
            spec = _sklearn_final_spec(pipeline, model)
        start = stop
    names = getattr(pipeline, "feature_names_in_", None)
    return PipelineGraph(join(parts), spec, inputs, [str(c) for c in names] if names is not None else None)


def _transform_spec(name: str, step) -> InferenceSpec:
    for spec in inference_specs(step, {}):
        if spec.input_method is None and any(o.method_name == "transform" for o in spec.outputs):
            return spec
    raise TypeError(
        f"Pipeline step {name!r} ({type(step).__name__}) is not a transformer: only the last step may predict"
    )


def _sklearn_final_spec(pipeline: Pipeline, model: onnx.ModelProto) -> InferenceSpec:
    """Outputs of a scikit-learn last step, by skl2onnx's names: label / probabilities, or variable."""
    outputs = []
    for value in model.graph.output:
        if value.name in SKLEARN_OUTPUTS:
            method, ndim, exact = SKLEARN_OUTPUTS[value.name]
        else:
            method = "predict" if hasattr(pipeline, "predict") else "transform"
            ndim = 2
            exact = False
        outputs.append(OutputSpec(value.name, getattr(pipeline, method), ndim, exact=exact))
    classes = getattr(pipeline, "classes_", None)
    return InferenceSpec(module=None, sample_shape=(), outputs=outputs, example=np.zeros((1, 1)), classes=classes)
