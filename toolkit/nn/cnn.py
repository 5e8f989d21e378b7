"""A convolutional net: conv blocks -> global average pooling or flattening -> dense layers -> linear head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from toolkit.nn.layers import init_weights, make_activation, make_norm

POOLS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
HEADS = ("gap", "flatten")


def conv_output_size(n_in: int, kernel: int, stride: int, padding: int) -> int:
    """floor((n_in + 2 p - k) / s) + 1: the length of a conv or pool output along one axis."""
    return (n_in + 2 * padding - kernel) // stride + 1


def per_block(value: int | str | Sequence | None, n_blocks: int, name: str) -> list:
    """Broadcast a scalar hyper-parameter (or None) to one value per block, or check a per-block list."""
    if value is None or isinstance(value, (int, str)):
        return [value] * n_blocks
    values = list(value)
    if len(values) != n_blocks:
        raise ValueError(f"{name} has {len(values)} entries but there are {n_blocks} conv blocks")
    return values


class ConvNet(nn.Module):
    """Conv blocks [Conv2d -> norm -> activation -> pool -> dropout], then global average pooling
    (or flattening), dense layers [Linear -> activation -> dropout] and a linear head.

    Maps (B, C, H, W) to (B, n_out). Pooling never shrinks an axis below one: its window on
    an axis is ``min(pool_size, length)``, and a block whose window is 1 x 1 has no pool.
    CS231n's three-layer convnet (assignment 2), conv - relu - 2x2 max pool - affine - relu - affine, is
    ``channels=(32,), kernel_size=7, norm=None, pool="max", head="flatten", dense=(100,)``.

    Parameters
    ----------
    in_shape : tuple of int
        (C, H, W) of one input image.
    n_out : int
        Output width.
    channels : sequence of int
        Output channels of each conv block.
    kernel_size, stride : int or sequence of int
        Per block, or one value for all.
    padding : int, "same" or sequence of those
        "same" pads (k - 1) / 2 on each side (odd kernels), keeping H and W at stride 1.
    norm : {"batch", "layer", "group", "instance", None}
    groups : int
        Number of groups for ``norm="group"``.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid"}
    pool : {"max", "avg", None} or sequence of those
        Per block, or one value for all.
    pool_size : int
    dropout : float
        Inverted dropout after each block and each dense layer, and before the head.
    head : {"gap", "flatten"}
        "gap" averages each channel over the map (B, C'); "flatten" keeps every position
        (B, C' H' W'), so that the dense layers see where things are.
    dense : sequence of int
        Widths of the dense layers between the pooled features and the head.
    kaiming_mode : {"fan_in", "fan_out"}
        Variance of the Kaiming-normal initial weights: 2 / fan_in or 2 / fan_out (for ReLU).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_out: int,
        channels: Sequence[int] = (32, 64),
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: int | str | Sequence[int | str] = "same",
        norm: str | None = "batch",
        groups: int = 8,
        activation: str = "relu",
        pool: str | None = "max",
        pool_size: int = 2,
        dropout: float = 0.0,
        head: str = "gap",
        dense: Sequence[int] = (),
        kaiming_mode: str = "fan_in",
    ) -> None:
        super().__init__()
        n_blocks = len(channels)
        kernels = per_block(kernel_size, n_blocks, "kernel_size")
        strides = per_block(stride, n_blocks, "stride")
        paddings = per_block(padding, n_blocks, "padding")
        pools = per_block(pool, n_blocks, "pool")
        if unknown := [kind for kind in pools if kind is not None and kind not in POOLS]:
            raise ValueError(f"pool must be 'max', 'avg' or None per block, got {unknown[0]!r}")
        c, h, w = in_shape
        blocks: list[nn.Module] = []
        for n, k, s, p, pool_kind in zip(channels, kernels, strides, paddings, pools):
            if p == "same":
                if k % 2 == 0:
                    raise ValueError(f'padding="same" needs an odd kernel_size, got {k}')
                p = (k - 1) // 2
            h, w = conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
            if h < 1 or w < 1:
                raise ValueError(
                    f"conv block with kernel {k}, stride {s}, padding {p} leaves no output from "
                    f"an input of {in_shape[1]}x{in_shape[2]}; use smaller kernels or padding='same'"
                )
            layers: list[nn.Module] = [
                nn.Conv2d(c, n, k, stride=s, padding=p),
                make_norm(norm, n, spatial=True, groups=groups),
                make_activation(activation),
            ]
            window = (min(pool_size, h), min(pool_size, w))
            if pool_kind is not None and window != (1, 1):
                layers.append(POOLS[pool_kind](window, stride=window))
                h, w = conv_output_size(h, window[0], window[0], 0), conv_output_size(w, window[1], window[1], 0)
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*(layer for layer in layers if not isinstance(layer, nn.Identity))))
            c = n
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.blocks = nn.Sequential(*blocks)
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()) if head == "gap" else nn.Flatten()
        width = c if head == "gap" else c * h * w
        layers = []
        for n in dense:
            layers += [nn.Linear(width, n), make_activation(activation)] + (
                [nn.Dropout(dropout)] if dropout > 0 else []
            )
            width = n
        self.dense = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        init_weights(self, activation, mode=kaiming_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, n_out)
        x = self.blocks(x)  # (B, C', H', W')
        x = self.dense(self.global_pool(x))  # (B, C') or (B, C' H' W'), then (B, dense[-1])
        return self.head(self.dropout(x))
