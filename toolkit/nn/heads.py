"""Small modules around a net: input reshaping and scaling, output post-processing."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class InputReshape(nn.Module):
    """Reshape ``(B, *sample_shape)`` inputs to ``(B, *net_shape)``, e.g. flat pixel rows to images."""

    def __init__(self, net_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net_shape = tuple(net_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape((x.shape[0],) + self.net_shape)  # (B, *net_shape)


class ClassifierOutput(nn.Module):
    """Logits (B, K) -> (class index (B,) int64, probabilities (B, K)) by softmax and argmax."""

    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(logits, dim=1)  # (B, K)
        return probabilities.argmax(dim=1), probabilities


class AffineOutput(nn.Module):
    """y = x * scale + offset, broadcast over a sample: maps standardised values (a regressor's
    predictions, a generative net's samples) back to the data's units."""

    def __init__(self, scale: torch.Tensor, offset: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)  # (n_outputs,)
        self.register_buffer("offset", offset)  # (n_outputs,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n_outputs)
        return x * self.scale + self.offset


class DataScaling(nn.Module):
    """x -> (x - offset) / scale, offset and scale broadcast over a sample (AffineOutput undoes it)."""

    def __init__(self, offset: np.ndarray, scale: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.offset) / self.scale
