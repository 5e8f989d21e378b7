"""A diffusion sampler as ONE ONNX graph: the denoiser's graph inside a ``Loop`` over the steps.

The loop carries x (starting from the input ``initial_noise``); iteration i reads step
t_i, the coefficients (r_i, s_i, A_i, B_i, c_i) and the noise ``step_noise[:, i]``, runs the
denoiser's nodes on (x, t_i), predicts x_0 = (x - s_i eps) / r_i (clipped to the data's range
when the model clips), and computes x <- A_i x + B_i x_0 + c_i z. After the loop, x is mapped
back to the data's units and shape. Nothing but standard ONNX operators: it runs
under onnxruntime alone.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PREFIX = "denoiser_"


def _renamed(name: str, renames: dict[str, str]) -> str:
    return renames.get(name, PREFIX + name if name else name)


def sampler_graph(
    denoiser: onnx.ModelProto,
    timesteps: np.ndarray,
    coefficients: np.ndarray,
    offset: np.ndarray,
    scale: np.ndarray,
    net_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    clip_range: tuple[np.ndarray, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """The sampler graph for a denoiser graph with inputs (X_t, t) and output eps.

    Parameters
    ----------
    denoiser : onnx.ModelProto
        Inputs ``X_t`` (batch, *net_shape) float32 and ``t`` (batch,) int64; one output.
    timesteps : (S,) int
        Steps visited, in order.
    coefficients : (S, 5)
        (r, s, A, B, c) of each step (``NoiseSchedule.x0_coefficients``).
    offset, scale : arrays broadcast over one sample of ``net_shape``
        samples = x * scale + offset.
    net_shape, output_shape : per-sample shapes of x and of the output.
    clip_range : (low, high) arrays broadcast over one sample, optional
        Bounds of the predicted x_0, in the net's scale.
    """
    source = denoiser.graph
    x_in, t_in = (i.name for i in source.input)
    eps_out = source.output[0].name
    renames = {x_in: "x", t_in: "t_batch", eps_out: "eps"}
    body_nodes = [
        helper.make_node("Gather", ["timesteps", "i"], ["t_i"], axis=0),
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Slice", ["x_shape", "zero_1d", "one_1d"], ["batch_1d"]),
        helper.make_node("Expand", ["t_i", "batch_1d"], ["t_batch"]),
    ]
    for node in source.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = PREFIX + node.name
        copy.input[:] = [_renamed(n, renames) for n in node.input]
        copy.output[:] = [_renamed(n, renames) for n in node.output]
        body_nodes.append(copy)
    body_nodes += [
        helper.make_node("Gather", [f"coef_{k}", "i"], [f"{k}_i"], axis=0) for k in ("r", "s", "A", "B", "c")
    ]
    body_nodes += [
        helper.make_node("Gather", ["step_noise", "i"], ["z"], axis=1),
        helper.make_node("Mul", ["s_i", "eps"], ["s_eps"]),
        helper.make_node("Sub", ["x", "s_eps"], ["x_minus"]),
        helper.make_node("Div", ["x_minus", "r_i"], ["x0_raw" if clip_range is not None else "x0"]),
    ]
    if clip_range is not None:  # elementwise bounds (per feature for rows): Max / Min, which broadcast
        body_nodes += [
            helper.make_node("Max", ["x0_raw", "clip_low"], ["x0_high_enough"]),
            helper.make_node("Min", ["x0_high_enough", "clip_high"], ["x0"]),
        ]
    body_nodes += [
        helper.make_node("Mul", ["A_i", "x"], ["ax"]),
        helper.make_node("Mul", ["B_i", "x0"], ["bx0"]),
        helper.make_node("Mul", ["c_i", "z"], ["cz"]),
        helper.make_node("Add", ["ax", "bx0"], ["mean"]),
        helper.make_node("Add", ["mean", "cz"], ["x_next"]),
        helper.make_node("Identity", ["cond_in"], ["cond_out"]),
    ]
    # The denoiser's weights live in the loop body itself: onnxruntime pre-packs constant
    # initializers of a graph (convolution and GEMM weights), but not values from an outer scope.
    weights = []
    for tensor in source.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        copy.name = PREFIX + tensor.name
        weights.append(copy)
    body = helper.make_graph(
        body_nodes,
        "sampler_step",
        initializer=weights,
        inputs=[
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *net_shape]),
        ],
        outputs=[
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_next", TensorProto.FLOAT, ["batch", *net_shape]),
        ],
    )
    initializers = [
        numpy_helper.from_array(np.asarray(timesteps, dtype=np.int64), "timesteps"),
        *(
            numpy_helper.from_array(np.asarray(coefficients[:, k], dtype=np.float32), f"coef_{name}")
            for k, name in enumerate(("r", "s", "A", "B", "c"))
        ),
        *(
            numpy_helper.from_array(np.asarray(bound, dtype=np.float32), name)
            for bound, name in zip(clip_range or (), ("clip_low", "clip_high"))
        ),
        numpy_helper.from_array(np.asarray(len(timesteps), dtype=np.int64), "trip_count"),
        numpy_helper.from_array(np.asarray(True), "keep_going"),
        numpy_helper.from_array(np.asarray([0], dtype=np.int64), "zero_1d"),
        numpy_helper.from_array(np.asarray([1], dtype=np.int64), "one_1d"),
        numpy_helper.from_array(np.asarray(scale, dtype=np.float32), "data_scale"),
        numpy_helper.from_array(np.asarray(offset, dtype=np.float32), "data_offset"),
        numpy_helper.from_array(np.asarray([-1, *output_shape], dtype=np.int64), "output_shape"),
    ]
    nodes = [
        helper.make_node(
            "Loop", ["trip_count", "keep_going", "initial_noise"], ["x_0"], body=body, name="reverse_process"
        ),
        helper.make_node("Mul", ["x_0", "data_scale"], ["x_scaled"]),
        helper.make_node("Add", ["x_scaled", "data_offset"], ["x_data"]),
        helper.make_node("Reshape", ["x_data", "output_shape"], ["samples"]),
    ]
    graph = helper.make_graph(
        nodes,
        "diffusion_sampler",
        inputs=[
            helper.make_tensor_value_info("initial_noise", TensorProto.FLOAT, ["batch", *net_shape]),
            helper.make_tensor_value_info("step_noise", TensorProto.FLOAT, ["batch", len(timesteps), *net_shape]),
        ],
        outputs=[helper.make_tensor_value_info("samples", TensorProto.FLOAT, ["batch", *output_shape])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=list(denoiser.opset_import), ir_version=denoiser.ir_version)
    model.functions.extend(denoiser.functions)
    return model
