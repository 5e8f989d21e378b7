"""Layer factories shared by the dense, convolutional and recurrent nets."""

from __future__ import annotations

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``name`` (a key of :data:`ACTIVATIONS`)."""
    return ACTIVATIONS[name]()


def make_norm(kind: str | None, n_features: int, *, spatial: bool, groups: int = 1) -> nn.Module:
    """Return the normalisation layer ``kind`` for ``n_features`` channels or units.

    ``spatial`` selects the 2-D (image) variant. Batch norm uses PyTorch's momentum
    convention: ``running = (1 - momentum) * running + momentum * batch`` with
    ``momentum=0.1``, i.e. the decay convention ``running = 0.9 * running + 0.1 * batch``.
    """
    if kind in (None, "none"):
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(n_features) if spatial else nn.BatchNorm1d(n_features)
    if kind == "layer":
        # Over (C, H, W) for images: GroupNorm with one group is LayerNorm over all of them.
        return nn.GroupNorm(1, n_features) if spatial else nn.LayerNorm(n_features)
    if kind == "group":
        return nn.GroupNorm(groups, n_features)
    if kind == "instance":
        return nn.GroupNorm(n_features, n_features)
    raise ValueError(f"unknown normalisation {kind!r}")


def init_weights(module: nn.Module, activation: str, mode: str = "fan_in") -> None:
    """Kaiming-normal weights (N(0, 2 / fan_in) for ReLU, or 2 / fan_out with ``mode="fan_out"``)
    and zero biases, in place.

    Linear and convolutional layers get ``kaiming_normal_`` with the gain of ``activation``;
    recurrent layers keep PyTorch's uniform initialisation except for zero biases.
    """
    nonlinearity = {"relu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh", "sigmoid": "sigmoid"}[activation]
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(layer.weight, mode=mode, nonlinearity=nonlinearity)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.RNNBase):
            for name, param in layer.named_parameters():
                if name.startswith("bias"):
                    nn.init.zeros_(param)


def normal_weights(module: nn.Module, scale: float) -> None:
    """Weights of every linear, convolutional and recurrent layer from N(0, scale^2), biases
    zero, in place (``weight_scale``: CS231n's initialisation by a weight scale)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.RNNBase)):
            for name, param in layer.named_parameters(recurse=False):
                if name.startswith("weight"):
                    nn.init.normal_(param, 0.0, scale)
                elif name.startswith("bias"):
                    nn.init.zeros_(param)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def has_batch_norm(module: nn.Module) -> bool:
    """Whether ``module`` holds a batch-norm layer (which needs batches of two or more)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


__all__ = [
    "ACTIVATIONS",
    "count_parameters",
    "has_batch_norm",
    "init_weights",
    "make_activation",
    "make_norm",
    "normal_weights",
]
