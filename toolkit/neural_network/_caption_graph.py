"""A captioner's greedy decoder as ONE ONNX graph: the encoder, then a ``Loop`` of decoding steps.

torch's exporter unrolls Python loops and no longer emits ``Loop`` (pytorch/pytorch#122587),
so the two pieces are exported on their own (the encoder: X -> initial state; one step:
(word, state) -> (arg-max next word, next state)) and joined here with ``onnx.helper``. The
loop carries the state, the last word, which rows are done, how many words each caption
has and the caption text; it stops after ``max_length`` steps or once every row has produced
<END>. Each step's word is a scan output: after the loop they are transposed to (batch,
steps) and padded with <NULL> to (batch, max_length). The caption strings grow inside the
loop by ``StringConcat`` from two string tables (a word as the first of its caption, and
with a leading space), so that ``captions`` equals ``CaptionGenerator.predict``. Standard
ONNX operators only (opset 20): it runs under onnxruntime alone.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from toolkit.neural_network._caption_vocabulary import END_ID, NULL_ID, START_ID


def _inlined(graph: onnx.GraphProto, prefix: str, renames: dict[str, str]) -> tuple[list, list]:
    """The graph's nodes and initializers with every name prefixed, except those in ``renames``,
    which become the names given (its inputs and outputs, wired to the surrounding graph)."""

    def name(value: str) -> str:
        return renames.get(value, prefix + value if value else value)

    nodes = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = prefix + node.name
        copy.input[:] = [name(n) for n in node.input]
        copy.output[:] = [name(n) for n in node.output]
        nodes.append(copy)
    weights = []
    for tensor in graph.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        copy.name = name(tensor.name)
        weights.append(copy)
    return nodes, weights


def _word_tables(vocabulary: np.ndarray) -> list[onnx.TensorProto]:
    """first_words / later_words: what a word adds to a caption as its first word or after
    others (specials add nothing, <UNK> adds "<UNK>"); is_word: 1 where it adds a word."""
    silent = (NULL_ID, START_ID, END_ID)
    first = [("" if i in silent else str(word)) for i, word in enumerate(vocabulary)]
    later = [("" if not w else " " + w) for w in first]
    return [
        numpy_helper.from_array(np.asarray(first, dtype=object), "first_words"),
        numpy_helper.from_array(np.asarray(later, dtype=object), "later_words"),
        numpy_helper.from_array(np.asarray([int(bool(w)) for w in first], dtype=np.int64), "is_word"),
    ]


def greedy_decoder_graph(
    encoder: onnx.ModelProto, step: onnx.ModelProto, vocabulary: np.ndarray, max_length: int
) -> onnx.ModelProto:
    """The whole greedy decoder as one graph: X -> (tokens (batch, max_length) int64, captions (batch,) string).

    Parameters
    ----------
    encoder : onnx.ModelProto
        Input X; outputs the initial state (h0, and c0 for an LSTM), each (batch, H).
    step : onnx.ModelProto
        Inputs (word (batch,) int64, *state); outputs (next word (batch,) int64, *next state).
    vocabulary : ndarray of str
        Index -> word, the four specials first.
    max_length : int
    """
    n_state = len(encoder.graph.output)
    state = [f"state{k}" for k in range(n_state)]
    x_name = encoder.graph.input[0].name
    enc_nodes, enc_weights = _inlined(
        encoder.graph,
        "encoder_",
        {x_name: "X", **{o.name: f"initial_{s}" for o, s in zip(encoder.graph.output, state)}},
    )
    step_inputs = [i.name for i in step.graph.input]
    step_outputs = [o.name for o in step.graph.output]
    step_nodes, step_weights = _inlined(
        step.graph,
        "step_",
        {step_inputs[0]: "words", **dict(zip(step_inputs[1:], state)), step_outputs[0]: "argmax_word"}
        | {o: f"next_{s}" for o, s in zip(step_outputs[1:], state)},
    )
    hidden = step.graph.input[1].type.tensor_type.shape.dim[1].dim_value
    body_nodes = step_nodes + [
        helper.make_node("Where", ["done", "null_id", "argmax_word"], ["chosen"]),  # ended rows write <NULL>
        helper.make_node("Equal", ["chosen", "end_id"], ["is_end"]),
        helper.make_node("Or", ["done", "is_end"], ["next_done"]),
        helper.make_node("Gather", ["first_words", "chosen"], ["as_first"], axis=0),
        helper.make_node("Gather", ["later_words", "chosen"], ["as_later"], axis=0),
        helper.make_node("Equal", ["count", "zero"], ["no_word_yet"]),
        helper.make_node("Where", ["no_word_yet", "as_first", "as_later"], ["piece"]),
        helper.make_node("StringConcat", ["caption", "piece"], ["next_caption"]),
        helper.make_node("Gather", ["is_word", "chosen"], ["added"], axis=0),
        helper.make_node("Add", ["count", "added"], ["next_count"]),
        helper.make_node("Not", ["next_done"], ["live"]),
        helper.make_node("Cast", ["live"], ["live_int"], to=TensorProto.INT64),
        helper.make_node("ReduceMax", ["live_int"], ["any_live"], keepdims=0),
        helper.make_node("Cast", ["any_live"], ["keep_going"], to=TensorProto.BOOL),
        helper.make_node("Identity", ["chosen"], ["next_words"]),
        helper.make_node("Identity", ["chosen"], ["token"]),
    ]
    batch_vector = lambda name, kind: helper.make_tensor_value_info(name, kind, ["batch"])  # noqa: E731
    body = helper.make_graph(
        body_nodes,
        "greedy_step",
        initializer=step_weights,  # in the body, where onnxruntime pre-packs them (see _sampler_graph)
        inputs=[
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            *(helper.make_tensor_value_info(s, TensorProto.FLOAT, ["batch", hidden]) for s in state),
            batch_vector("words", TensorProto.INT64),
            batch_vector("done", TensorProto.BOOL),
            batch_vector("count", TensorProto.INT64),
            batch_vector("caption", TensorProto.STRING),
        ],
        outputs=[
            helper.make_tensor_value_info("keep_going", TensorProto.BOOL, []),
            *(helper.make_tensor_value_info(f"next_{s}", TensorProto.FLOAT, ["batch", hidden]) for s in state),
            batch_vector("next_words", TensorProto.INT64),
            batch_vector("next_done", TensorProto.BOOL),
            batch_vector("next_count", TensorProto.INT64),
            batch_vector("next_caption", TensorProto.STRING),
            batch_vector("token", TensorProto.INT64),
        ],
    )
    constants = [
        numpy_helper.from_array(np.asarray(max_length, dtype=np.int64), "trip_count"),
        numpy_helper.from_array(np.asarray(True), "start_looping"),
        numpy_helper.from_array(np.asarray(NULL_ID, dtype=np.int64), "null_id"),
        numpy_helper.from_array(np.asarray(END_ID, dtype=np.int64), "end_id"),
        numpy_helper.from_array(np.asarray(0, dtype=np.int64), "zero"),
        numpy_helper.from_array(np.asarray([START_ID], dtype=np.int64), "start_word"),
        numpy_helper.from_array(np.asarray([False]), "not_done"),
        numpy_helper.from_array(np.asarray([0], dtype=np.int64), "no_words"),
        numpy_helper.from_array(np.asarray([""], dtype=object), "empty_caption"),
        numpy_helper.from_array(np.asarray([0], dtype=np.int64), "zero_1d"),
        numpy_helper.from_array(np.asarray([1], dtype=np.int64), "one_1d"),
        numpy_helper.from_array(np.asarray([2], dtype=np.int64), "two_1d"),
        numpy_helper.from_array(np.asarray([0, 0, 0], dtype=np.int64), "pad_starts"),
        numpy_helper.from_array(np.asarray([max_length], dtype=np.int64), "max_length_1d"),
        *_word_tables(vocabulary),
    ]
    carried = [f"initial_{s}" for s in state] + ["first_words_in", "first_done", "first_count", "first_caption"]
    nodes = enc_nodes + [
        helper.make_node("Shape", ["X"], ["x_shape"]),
        helper.make_node("Slice", ["x_shape", "zero_1d", "one_1d"], ["batch_1d"]),
        helper.make_node("Expand", ["start_word", "batch_1d"], ["first_words_in"]),
        helper.make_node("Expand", ["not_done", "batch_1d"], ["first_done"]),
        helper.make_node("Expand", ["no_words", "batch_1d"], ["first_count"]),
        helper.make_node("Expand", ["empty_caption", "batch_1d"], ["first_caption"]),
        helper.make_node(
            "Loop",
            ["trip_count", "start_looping", *carried],
            [*(f"final_{s}" for s in state), "final_words", "final_done", "final_count", "captions", "steps_by_row"],
            body=body,
            name="greedy_decoding",
        ),
        helper.make_node("Transpose", ["steps_by_row"], ["decoded"], perm=[1, 0]),  # (batch, steps taken)
        helper.make_node("Shape", ["decoded"], ["decoded_shape"]),
        helper.make_node("Slice", ["decoded_shape", "one_1d", "two_1d"], ["steps_1d"]),
        helper.make_node("Sub", ["max_length_1d", "steps_1d"], ["missing_1d"]),
        helper.make_node("Concat", ["pad_starts", "missing_1d"], ["pads"], axis=0),  # [0, 0, 0, missing]
        helper.make_node("Pad", ["decoded", "pads"], ["tokens"], mode="constant"),  # <NULL> is 0
    ]
    graph = helper.make_graph(
        nodes,
        "greedy_caption_decoder",
        inputs=[encoder.graph.input[0]],
        outputs=[
            helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", max_length]),
            helper.make_tensor_value_info("captions", TensorProto.STRING, ["batch"]),
        ],
        initializer=enc_weights + constants,
    )
    graph.input[0].name = "X"
    model = helper.make_model(
        graph, opset_imports=list(encoder.opset_import), ir_version=max(encoder.ir_version, step.ir_version)
    )
    known = {(f.domain, f.name) for f in encoder.functions}
    model.functions.extend([*encoder.functions, *(f for f in step.functions if (f.domain, f.name) not in known)])
    return model
