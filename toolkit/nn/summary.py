"""Per-layer summary of a net: output shape, parameters, FLOPs and receptive field.

Formulas (per sample), for a conv layer with n filters of h x w over c input channels
producing an H x W map:

- parameters = n * (h * w * c + 1)
- FLOPs = (H * W * n) * (h * w * c + 1)
- output length along an axis = floor((n_in + 2 p - k) / s) + 1
- receptive field RF_{l+1} = RF_l + (k_{l+1} - 1) * prod_{i <= l} s_i

A linear layer counts out * (in + 1) for both. A recurrent layer with g gate blocks (RNN 1,
GRU 3, LSTM 4), D inputs and H units has g * H * (D + H + 2) parameters (two bias vectors)
and as many FLOPs per time step, times T steps. Normalisation counts 2 FLOPs per output
element, activations 1, pooling k_h * k_w. Receptive fields are given for layers that
keep a spatial map and are NaN from global pooling on.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from toolkit.nn.layers import ACTIVATIONS

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def layer_flops(layer: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> int:
    """FLOPs of ``layer`` for the first sample of a batch going from ``inputs`` to ``output``."""
    n_out = output[0].numel()
    if isinstance(layer, nn.Conv2d):
        kh, kw = layer.kernel_size
        c = layer.in_channels // layer.groups
        return n_out * (kh * kw * c + 1)
    if isinstance(layer, nn.Linear):
        return layer.out_features * (layer.in_features + 1)
    if isinstance(layer, nn.RNNBase):
        n_steps = output.shape[1]
        gates = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}[layer.mode]
        return n_steps * gates * layer.hidden_size * (layer.input_size + layer.hidden_size + 2)
    if isinstance(layer, NORMS):
        return 2 * n_out
    if isinstance(layer, tuple(ACTIVATIONS.values())):
        return n_out
    if isinstance(layer, POOLS):
        kh, kw = _pair(layer.kernel_size)
        return n_out * kh * kw
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return inputs[0].numel()
    return 0


def summarize(net: nn.Module, input_shape: tuple[int, ...]) -> list[dict]:
    """Run one zero sample of ``input_shape`` through ``net`` and describe each leaf layer.

    Returns
    -------
    rows : list of dict
        One per leaf module in execution order, with keys ``layer``, ``type``,
        ``output_shape``, ``params``, ``flops``, ``receptive_field``.
    """
    rows: list[dict] = []
    state = {"rf": 1, "jump": 1, "spatial": len(input_shape) == 3}

    def hook(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output) -> None:
        if isinstance(output, tuple):  # recurrent layers return (outputs, state)
            output = output[0]
        if isinstance(layer, (nn.Conv2d, *POOLS)):
            (k, _), (s, _) = _pair(layer.kernel_size), _pair(layer.stride)
            state["rf"] += (k - 1) * state["jump"]
            state["jump"] *= s
        if isinstance(layer, (nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear)):
            state["spatial"] = False
        rows.append(
            {
                "layer": names[layer],
                "type": type(layer).__name__,
                "output_shape": tuple(output.shape[1:]),
                "params": sum(p.numel() for p in layer.parameters()),
                "flops": layer_flops(layer, inputs[0], output),
                "receptive_field": state["rf"] if state["spatial"] else math.nan,
            }
        )

    names = {m: name for name, m in net.named_modules() if not list(m.children()) and not isinstance(m, nn.Identity)}
    handles = [m.register_forward_hook(hook) for m in names]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros((1, *input_shape), device=next(net.parameters()).device))
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    return rows
