"""A dense feed-forward net: [Linear -> norm -> activation -> dropout] * L -> Linear."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from toolkit.nn.layers import init_weights, make_activation, make_norm


class DenseNet(nn.Module):
    """Fully connected net mapping (B, n_in) to (B, n_out).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    hidden : sequence of int
        Width of each hidden layer.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid"}
    norm : {"batch", "layer", None}
        Normalisation after each hidden linear layer, before the activation.
    dropout : float
        Drop probability p after each hidden activation. ``nn.Dropout`` is inverted dropout:
        kept units are scaled by 1 / (1 - p) in training, and it is the identity in eval mode.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (100,),
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for units in hidden:
            layers += [
                nn.Linear(width, units),
                make_norm(norm, units, spatial=False),
                make_activation(activation),
            ]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = units
        layers.append(nn.Linear(width, n_out))
        self.layers = nn.Sequential(*(layer for layer in layers if not isinstance(layer, nn.Identity)))
        init_weights(self, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n_in) -> (B, n_out)
        return self.layers(x)
