"""A fitted captioner as ONE ONNX graph: its encoder (exported by torch) and one greedy decoding
step (its cell as ONNX's own RNN / LSTM / GRU operator, :mod:`toolkit.neural_network._rnn_export`),
joined into a ``Loop`` by :mod:`toolkit.neural_network._caption_graph`."""

from __future__ import annotations

import numpy as np
from torch import nn

from toolkit._export_spec import InferenceSpec, OutputSpec
from toolkit.nn.caption import CaptionNet
from toolkit.nn.heads import InputReshape


def caption_specs(captioner, net: CaptionNet) -> list[InferenceSpec]:
    """The ``model`` graph (X -> ``tokens``, ``captions``), compared with the captioner's
    ``predict_tokens`` and ``predict``, built from the ``encoder`` part (X -> the initial state)
    and one greedy step ((word, state) -> (arg-max next word, next state)).

    Parameters
    ----------
    captioner : fitted CaptionGenerator
    net : CaptionNet
        Its net, on the CPU in eval mode.
    """
    example = np.zeros((2, *captioner.input_shape_), dtype=np.float32)
    n_state = 2 if captioner.cell == "lstm" else 1
    encoder = InferenceSpec(
        module=nn.Sequential(InputReshape(captioner.net_shape_), net),
        sample_shape=captioner.input_shape_,
        outputs=[OutputSpec(f"state{k}", None, 2) for k in range(n_state)],
        example=example,
        graph="encoder",
    )
    vocabulary, max_length = captioner.vocabulary_, captioner.max_length

    def build(parts: dict):
        from toolkit.neural_network._caption_graph import greedy_decoder_graph  # onnx: on export only
        from toolkit.neural_network._rnn_export import greedy_step_graph

        return greedy_decoder_graph(parts["encoder"], greedy_step_graph(net.decoder), vocabulary, max_length)

    names = getattr(captioner, "feature_names_in_", None)
    return [
        InferenceSpec(
            module=None,
            sample_shape=captioner.input_shape_,
            outputs=[
                OutputSpec("tokens", captioner.predict_tokens, 2, exact=True),
                OutputSpec("captions", captioner.predict, 1, exact=True),
            ],
            example=example,
            feature_names=None if names is None else [str(c) for c in names],
            parts=(encoder,),
            build=build,
            min_opset=20,  # the captions are joined by StringConcat, an operator of opset 20
        )
    ]
