"""Recurrent layers as ONNX's own ``LSTM`` / ``GRU`` operators and an explicit ``Scan``, built
with ``onnx.helper``.

torch's exporter traces an ``nn.LSTM`` through its decomposition, which can fix the time axis
to the example's length depending on what the process exported before; these graphs take
any sequence length by construction. For LSTM and GRU one operator per layer runs both
directions (``direction="bidirectional"``) with each row's valid length (``sequence_lens``,
from the padding value when there is one): the forward state at the last valid step and the
backward state at step 0 are the operator's ``Y_h``, as :class:`~toolkit.nn.rnn.RecurrentNet`
reads them. An Elman layer is the input's projection for all steps in one MatMul and a Scan
of the recurrence (onnxruntime's ``RNN`` operator is several times slower at larger batches),
its backward direction over each row's valid steps reversed by ``ReverseSequence``; the
captioner's one-step graph uses the ``RNN`` operator.

Weights are torch's, with the gates reordered to ONNX's: torch stacks an LSTM's gates (i, f, g,
o) and a GRU's (r, z, n), ONNX (i, o, f, c) and (z, r, h); torch's GRU applies the reset gate
after the hidden state's linear map, which is ONNX's ``linear_before_reset=1``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from toolkit._export_spec import OPSET
from toolkit.nn.rnn import RecurrentNet

OPERATORS = {nn.RNN: "RNN", nn.LSTM: "LSTM", nn.GRU: "GRU"}
GATES = {nn.RNN: [0], nn.LSTM: [0, 3, 1, 2], nn.GRU: [1, 0, 2]}  # torch's gate blocks in ONNX's order


def _reordered(weight: np.ndarray, order: list[int]) -> np.ndarray:
    """Rows of a (gates * H, ...) weight or (gates * H,) bias, its gate blocks in ``order``."""
    blocks = np.split(weight, len(order), axis=0)
    return np.concatenate([blocks[k] for k in order], axis=0)


def layer_weights(cells: list[nn.RNNBase]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX's W (dirs, gates*H, in), R (dirs, gates*H, H) and B (dirs, 2*gates*H) of one layer
    from its single-direction torch cells (forward, then backward)."""
    order = GATES[type(cells[0])]
    W, R, B = [], [], []
    for cell in cells:
        W.append(_reordered(cell.weight_ih_l0.detach().cpu().numpy(), order))
        R.append(_reordered(cell.weight_hh_l0.detach().cpu().numpy(), order))
        B.append(
            np.concatenate(
                [
                    _reordered(cell.bias_ih_l0.detach().cpu().numpy(), order),
                    _reordered(cell.bias_hh_l0.detach().cpu().numpy(), order),
                ]
            )
        )
    return np.stack(W), np.stack(R), np.stack(B)


class GraphBuilder:
    """Nodes and initializers of a graph being written (each node named after its first output)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}

    def constant(self, name: str, value) -> str:
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.asarray(value), name)
        return name

    def add(self, op: str, inputs: list[str], outputs: list[str] | str, **attributes) -> str:
        outputs = [outputs] if isinstance(outputs, str) else outputs
        self.nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], **attributes))
        return outputs[0]


def sequence_lengths(graph: GraphBuilder, bt: str, mask_value: float | None) -> str:
    """Each row's valid length (B,) int64 of (B, T, D) steps: T, or with ``mask_value`` 1 + the
    last step not entirely that value, at least 1 (:func:`toolkit.nn.rnn.sequence_lengths`)."""
    steps = graph.add("Shape", [bt], "n_steps_1", start=1, end=2)  # (1,) int64
    if mask_value is None:
        batch = graph.add("Shape", [bt], "batch_1", start=0, end=1)
        return graph.add("Expand", [steps, batch], "lengths")  # (B,)
    one = graph.constant("one", np.float32(1))
    graph.add("Equal", [bt, graph.constant("mask_value", np.float32(mask_value))], "is_mask")
    graph.add("Not", ["is_mask"], "not_mask")
    graph.add("Cast", ["not_mask"], "valid_values", to=TensorProto.FLOAT)
    graph.add("ReduceMax", ["valid_values", graph.constant("axis2", np.array([2]))], "valid", keepdims=0)  # (B, T)
    graph.add("Squeeze", [steps], "n_steps")
    graph.add("Cast", ["n_steps"], "n_steps_f", to=TensorProto.FLOAT)
    graph.add("Add", ["n_steps_f", one], "limit")
    graph.add("Range", [one, "limit", one], "positions")  # 1..T
    graph.add("Mul", ["valid", "positions"], "valid_positions")
    graph.add("ReduceMax", ["valid_positions", graph.constant("axis1", np.array([1]))], "last_valid", keepdims=0)
    graph.add("Max", ["last_valid", one], "length_f")
    return graph.add("Cast", ["length_f"], "lengths", to=TensorProto.INT64)


def operator_layer(graph: GraphBuilder, x: str, cells: list[nn.RNNBase], lengths: str, layer: int) -> tuple[str, str]:
    """One LSTM or GRU layer as ONNX's operator over (T, B, D) steps: (its steps (T, B, dirs*H),
    its final state (B, dirs*H): forward at the last valid step, backward at step 0)."""
    W, R, B = layer_weights(cells)
    attributes = {"hidden_size": cells[0].hidden_size, "direction": "bidirectional" if len(cells) == 2 else "forward"}
    if isinstance(cells[0], nn.GRU):
        attributes["linear_before_reset"] = 1
    inputs = [graph.constant(f"{name}{layer}", value.astype(np.float32)) for name, value in zip("WRB", (W, R, B))]
    lengths32 = graph.add("Cast", [lengths], f"lengths32_{layer}", to=TensorProto.INT32)
    graph.add(OPERATORS[type(cells[0])], [x, *inputs, lengths32], [f"y{layer}", f"y{layer}_h"], **attributes)
    # Y (T, dirs, B, H) -> (T, B, dirs * H): the next layer's steps, forward then backward features
    graph.add("Transpose", [f"y{layer}"], f"y{layer}_t", perm=[0, 2, 1, 3])
    steps = graph.add(
        "Reshape", [f"y{layer}_t", graph.constant("merge_directions", np.array([0, 0, -1]))], f"x{layer + 1}"
    )
    graph.add("Transpose", [f"y{layer}_h"], f"h{layer}_t", perm=[1, 0, 2])  # (B, dirs, H)
    final = graph.add("Reshape", [f"h{layer}_t", graph.constant("flat_state", np.array([0, -1]))], f"final{layer}")
    return steps, final


def elman_direction(graph: GraphBuilder, x: str, cell: nn.RNN, name: str) -> str:
    """h_t = tanh(x_t W' + b + h_(t-1) R') over (T, B, D) steps from h_0 = 0: the input's
    projection for every step in one MatMul, then a ``Scan`` of the recurrence; (T, B, H).

    onnxruntime's own ``RNN`` operator is 3 to 5 times slower than this at batch 64."""
    hidden = cell.hidden_size
    weight_t = cell.weight_ih_l0.detach().cpu().numpy().T.copy()  # (D, H)
    bias = (cell.bias_ih_l0 + cell.bias_hh_l0).detach().cpu().numpy()
    graph.add("MatMul", [x, graph.constant(f"{name}_Wt", weight_t)], f"{name}_xw0")
    graph.add("Add", [f"{name}_xw0", graph.constant(f"{name}_b", bias)], f"{name}_xw")  # (T, B, H)
    graph.add("Shape", [x], f"{name}_batch", start=1, end=2)
    graph.add("Concat", [f"{name}_batch", graph.constant("hidden_dim", np.array([hidden]))], f"{name}_h0_shape", axis=0)
    graph.add("ConstantOfShape", [f"{name}_h0_shape"], f"{name}_h0")  # zeros (B, H)
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["h", "Rt"], ["hr"], name="hr"),
            helper.make_node("Add", ["hr", "xw"], ["pre"], name="pre"),
            helper.make_node("Tanh", ["pre"], ["h_next"], name="h_next"),
            helper.make_node("Identity", ["h_next"], ["h_out"], name="h_out"),
        ],
        f"{name}_step",
        [
            helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", hidden]),
            helper.make_tensor_value_info("xw", TensorProto.FLOAT, ["batch", hidden]),
        ],
        [
            helper.make_tensor_value_info("h_next", TensorProto.FLOAT, ["batch", hidden]),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, ["batch", hidden]),
        ],
        [numpy_helper.from_array(cell.weight_hh_l0.detach().cpu().numpy().T.copy(), "Rt")],
    )
    graph.add("Scan", [f"{name}_h0", f"{name}_xw"], [f"{name}_h_last", f"{name}_steps"], body=body, num_scan_inputs=1)
    return f"{name}_steps"


def elman_layer(graph: GraphBuilder, x: str, cells: list[nn.RNN], lengths: str, layer: int) -> tuple[str, str]:
    """One Elman layer over (T, B, D) steps, as :meth:`RecurrentNet.forward` runs it: the forward
    cell over every step, the backward cell over each row's valid steps reversed
    (``ReverseSequence``); (its steps (T, B, dirs*H), its final state (B, dirs*H))."""
    forward = elman_direction(graph, x, cells[0], f"f{layer}")
    index = graph.add("Sub", [lengths, graph.constant("one_int", np.int64(1))], f"last_step{layer}")
    graph.add("Reshape", [index, graph.constant("index_shape", np.array([1, -1, 1]))], f"last_step{layer}_1b1")
    graph.add("Shape", [forward], f"f{layer}_shape")
    graph.add(
        "Slice",
        [f"f{layer}_shape", graph.constant("from1", np.array([1])), graph.constant("to3", np.array([3]))],
        f"f{layer}_bh",
    )
    graph.add("Concat", [graph.constant("one_1", np.array([1])), f"f{layer}_bh"], f"f{layer}_gather_shape", axis=0)
    graph.add("Expand", [f"last_step{layer}_1b1", f"f{layer}_gather_shape"], f"last_step{layer}_index")  # (1, B, H)
    graph.add("GatherElements", [forward, f"last_step{layer}_index"], f"f{layer}_final_1", axis=0)
    finals = [graph.add("Squeeze", [f"f{layer}_final_1", graph.constant("axis0", np.array([0]))], f"f{layer}_final")]
    steps = [forward]
    if len(cells) == 2:
        graph.add("ReverseSequence", [x, lengths], f"x{layer}_reversed", batch_axis=1, time_axis=0)
        backward = elman_direction(graph, f"x{layer}_reversed", cells[1], f"b{layer}")
        graph.add("ReverseSequence", [backward, lengths], f"b{layer}_steps_in_order", batch_axis=1, time_axis=0)
        steps.append(f"b{layer}_steps_in_order")
        finals.append(
            graph.add(
                "Gather", [f"b{layer}_steps_in_order", graph.constant("step0", np.int64(0))], f"b{layer}_final", axis=0
            )
        )
    if len(steps) == 1:
        return steps[0], finals[0]
    out = graph.add("Concat", steps, f"x{layer + 1}", axis=2)
    return out, graph.add("Concat", finals, f"final{layer}", axis=1)


def recurrent_graph(
    net: RecurrentNet, sample_shape: tuple, n_features: int, input_name: str = "X", output: str = "state"
) -> onnx.ModelProto:
    """The graph (B, *sample_shape) float32 -> (B, width): ``net`` up to its head.

    The input's values per sample are read as (T, ``n_features``) steps, T free (None in
    ``sample_shape`` marks a free axis); the output is the last layer's final state (forward,
    then backward), what the head reads. LSTM and GRU layers are ONNX's operators; Elman layers
    a MatMul and a ``Scan`` each (:func:`elman_direction`).
    """
    graph = GraphBuilder()
    # (B, *sample) -> (B, T, D) -> (T, B, D): the recurrent operators and Scan read time first
    graph.add("Reshape", [input_name, graph.constant("steps_shape", np.array([0, -1, n_features]))], "bt")
    x = graph.add("Transpose", ["bt"], "tb", perm=[1, 0, 2])
    lengths = sequence_lengths(graph, "bt", net.mask_value)
    layer_fn = elman_layer if isinstance(net.forward_cells[0], nn.RNN) else operator_layer
    for layer, forward_cell in enumerate(net.forward_cells):
        cells = [forward_cell] + ([net.backward_cells[layer]] if net.backward_cells else [])
        x, final = layer_fn(graph, x, cells, lengths, layer)
    graph.add("Identity", [final], output)
    width = net.forward_cells[0].hidden_size * (2 if net.backward_cells else 1)
    dims = ["batch", *("steps" if d is None else d for d in sample_shape)]
    model_graph = helper.make_graph(
        graph.nodes,
        "recurrent_layers",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", width])],
        list(graph.initializers.values()),
    )
    return helper.make_model(model_graph, opset_imports=[helper.make_opsetid("", OPSET)])


def with_head(core: onnx.ModelProto, head: onnx.ModelProto, output: str = "state") -> onnx.ModelProto:
    """The recurrent layers' graph followed by the head's (a torch export reading ``output``):
    one graph, with the head's outputs."""
    head = onnx.compose.add_prefix(head, "head_", rename_inputs=True, rename_outputs=False)
    core.ir_version = head.ir_version = max(core.ir_version, head.ir_version)
    opsets = {entry.domain: entry.version for entry in head.opset_import}
    del core.opset_import[:]
    core.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in opsets.items())
    return onnx.compose.merge_models(core, head, io_map=[(output, "head_" + output)])


def greedy_step_graph(decoder) -> onnx.ModelProto:
    """One greedy step of a caption decoder (:class:`~toolkit.nn.caption.CaptionDecoder`):
    (word (batch,) int64, state0 [, state1] (batch, H)) -> (next_word, next_state0 [, next_state1]):
    the word's embedding, one step of the cell (ONNX's operator, the state as its initial state),
    the temporal affine layer's scores and their arg-max."""
    cell = decoder.rnn
    hidden = cell.hidden_size
    n_state = 2 if isinstance(cell, nn.LSTM) else 1
    W, R, B = layer_weights([cell])
    weights = {
        "embedding": decoder.embedding.weight.detach().cpu().numpy(),
        "W": W.astype(np.float32),
        "R": R.astype(np.float32),
        "B": B.astype(np.float32),
        "affine_weight": decoder.temporal_affine.weight.detach().cpu().numpy(),
        "affine_bias": decoder.temporal_affine.bias.detach().cpu().numpy(),
        "axis0": np.array([0]),
    }
    states = [f"state{k}" for k in range(n_state)]
    attributes = {"hidden_size": hidden, **({"linear_before_reset": 1} if isinstance(cell, nn.GRU) else {})}
    nodes = [
        helper.make_node("Gather", ["embedding", "word"], ["embedded"], axis=0),  # (batch, E)
        helper.make_node("Unsqueeze", ["embedded", "axis0"], ["x"]),  # (1, batch, E): one time step
        *(helper.make_node("Unsqueeze", [s, "axis0"], [f"initial_{s}"]) for s in states),  # (1, batch, H)
        helper.make_node(
            OPERATORS[type(cell)],
            ["x", "W", "R", "B", "", *(f"initial_{s}" for s in states)],
            ["y", *(f"final_{s}" for s in states)],
            **attributes,
        ),
        *(helper.make_node("Squeeze", [f"final_{s}", "axis0"], [f"next_{s}"]) for s in states),
        helper.make_node("Gemm", ["next_state0", "affine_weight", "affine_bias"], ["scores"], transB=1),
        helper.make_node("ArgMax", ["scores"], ["next_word"], axis=1, keepdims=0),
    ]
    for node in nodes:
        node.name = node.output[0]  # unique: a graph inlined into another (the decoder's Loop) keeps them apart
    state_value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", hidden])  # noqa: E731
    graph = helper.make_graph(
        nodes,
        "greedy_step",
        [helper.make_tensor_value_info("word", TensorProto.INT64, ["batch"]), *(state_value(s) for s in states)],
        [
            helper.make_tensor_value_info("next_word", TensorProto.INT64, ["batch"]),
            *(state_value(f"next_{s}") for s in states),
        ],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
