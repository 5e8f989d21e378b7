"""A toolkit estimator's inference module as an ONNX graph (torch's dynamo exporter).

Shared by single-estimator exports and Pipelines, which join these graphs with skl2onnx's.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from toolkit._export_spec import OPSET, InferenceSpec


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


def spec_to_onnx(spec: InferenceSpec, built: dict[str, onnx.ModelProto] | None = None) -> onnx.ModelProto:
    """The graph of one spec, its labels looked up: torch's export of its module, or its
    ``build`` over the exports of its parts and the graphs ``built`` before it (by name)."""
    if spec.build is not None:
        model = spec.build((built or {}) | {part.graph: torch_to_onnx(part) for part in spec.parts})
    else:
        model = torch_to_onnx(spec)
    if spec.classes is not None:
        append_label_lookup(model, spec.classes)
    return model


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
