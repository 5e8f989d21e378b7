"""CS231n's two three-layer convnets (assignment 2) as CNNClassifier options, layer by layer
against the nets written out by hand in torch: the numpy one (conv - relu - 2x2 max pool -
affine - relu - affine, every weight weight_scale * randn, L2 on the weights alone) and the
PyTorch one (conv 5x5 pad 2 - relu - conv 3x3 pad 1 - relu - affine, Kaiming normal fan_out
weights, zero biases)."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.modules.utils import _pair

from tests._warnings import SHORT_TRAINING
from toolkit.neural_network import CNNClassifier
from toolkit.nn.layers import count_parameters

pytestmark = SHORT_TRAINING

NUMPY_NET = {  # ThreeLayerConvNet(num_filters=32, filter_size=7, hidden_dim=100, weight_scale=1e-3, reg=...)
    "channels": (32,),
    "kernel_size": 7,
    "padding": "same",
    "norm": None,
    "pool": "max",
    "head": "flatten",
    "dense": (100,),
    "weight_scale": 1e-3,
    "weight_decay_on": "weights",
}
TORCH_NET = {  # channel_1=12, channel_2=8 on (3, 32, 32) in CS231n's notebook; here on 8x8 digits
    "channels": (12, 8),
    "kernel_size": (5, 3),
    "padding": (2, 1),
    "norm": None,
    "pool": None,
    "head": "flatten",
    "kaiming_mode": "fan_out",
}


SETTINGS = ("kernel_size", "stride", "padding")


def numpy_net(c, h, w, n_classes):
    return nn.Sequential(
        nn.Conv2d(c, 32, 7, padding=3),
        nn.ReLU(),
        nn.MaxPool2d(2, stride=2),
        nn.Flatten(),
        nn.Linear(32 * (h // 2) * (w // 2), 100),
        nn.ReLU(),
        nn.Linear(100, n_classes),
    )


def torch_net(c, h, w, n_classes):
    return nn.Sequential(
        nn.Conv2d(c, 12, 5, padding=2),
        nn.ReLU(),
        nn.Conv2d(12, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * h * w, n_classes),
    )


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32).reshape(-1, 1, 8, 8), y


def fitted(options, digits, **extra):
    X, y = digits
    return CNNClassifier(**options, max_epochs=1, random_state=0, **extra).fit(X[:200], y[:200])


def layers_of(module: nn.Module) -> list[nn.Module]:
    """The leaf layers in order, containers and identities left out."""
    return [m for m in module.modules() if not list(m.children()) and not isinstance(m, (nn.Identity, nn.Sequential))]


@pytest.mark.parametrize(
    ("options", "reference"), [(NUMPY_NET, numpy_net), (TORCH_NET, torch_net)], ids=["numpy", "torch"]
)
def test_the_net_is_the_notes_layer_by_layer(options, reference, digits):
    model = fitted(options, digits)
    hand = reference(1, 8, 8, 10)
    ours = layers_of(model.module_)
    theirs = layers_of(hand)
    assert [type(m) for m in ours] == [type(m) for m in theirs]
    for a, b in zip(ours, theirs):
        assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()], a
        if isinstance(a, (nn.Conv2d, nn.MaxPool2d)):
            assert [_pair(getattr(a, k)) for k in SETTINGS] == [_pair(getattr(b, k)) for k in SETTINGS], a
    assert count_parameters(model.module_) == count_parameters(hand)
    # the same weights give the same scores, so every shape and connection agrees
    hand.load_state_dict(dict(zip(hand.state_dict(), model.module_.state_dict().values())))
    X = torch.from_numpy(digits[0][:16])
    torch.testing.assert_close(model.module_.eval()(X), hand(X))
    summary = model.summary()
    assert summary["params"].sum() == count_parameters(hand)


def initial_net(options, digits) -> nn.Module:
    """The net as initialised for the digits, before any training step."""
    X, y = digits
    model = CNNClassifier(**options, max_epochs=1, random_state=0)
    model._check_X(X[:10], reset=True)  # the shapes, then the initial net
    model._encode_targets(y, len(X), reset=True)
    model._initialize()
    return model.module_


def test_the_numpy_nets_weights_are_weight_scale_randn_and_biases_zero(digits):
    for name, p in initial_net(NUMPY_NET, digits).named_parameters():
        values = p.detach().numpy().ravel()
        if name.endswith("bias"):
            assert not values.any(), name
        else:  # N(0, 1e-3^2): the sample standard deviation within 5 standard errors of 1e-3
            assert abs(values.std() - 1e-3) < 5 * 1e-3 / np.sqrt(2 * len(values)), name
            assert abs(values.mean()) < 5 * 1e-3 / np.sqrt(len(values)), name


def test_the_torch_nets_weights_are_kaiming_fan_out_and_biases_zero(digits):
    for mode in ("fan_out", "fan_in"):
        for layer in layers_of(initial_net({**TORCH_NET, "kaiming_mode": mode}, digits)):
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                w = layer.weight.detach().numpy()
                receptive = int(np.prod(w.shape[2:]))
                fan = w.shape[0 if mode == "fan_out" else 1] * receptive
                expected = np.sqrt(2.0 / fan)
                assert abs(w.std() - expected) < 5 * expected / np.sqrt(2 * w.size), (mode, layer)
                assert not layer.bias.detach().numpy().any()


@pytest.mark.parametrize(
    ("options", "training", "floor"),
    [
        (NUMPY_NET, {"learning_rate": 1e-2}, 0.92),  # 0.941 measured
        (TORCH_NET, {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "learning_rate": 1e-2}, 0.88),  # 0.903
    ],
    ids=["numpy", "torch"],
)
def test_each_net_learns_the_digits(options, training, floor, digits):
    """15 epochs on 1,200 digits; the PyTorch net with CS231n's optimizer (SGD, Nesterov momentum 0.9)."""
    X, y = digits
    model = CNNClassifier(**options, **training, max_epochs=15, batch_size=50, random_state=0).fit(X[:1200], y[:1200])
    assert model.score(X[1200:], y[1200:]) > floor


def test_pooling_per_block(digits):
    model = fitted({"channels": (4, 4, 4), "pool": ("max", None, "avg"), "norm": None}, digits)
    pools = [type(m) for m in layers_of(model.module_) if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert pools == [nn.MaxPool2d, nn.AvgPool2d]
    with pytest.raises(ValueError, match="pool has 2 entries but there are 3 conv blocks"):
        fitted({"channels": (4, 4, 4), "pool": ("max", None)}, digits)
    with pytest.raises(ValueError, match="pool must be 'max', 'avg' or None per block, got 'min'"):
        fitted({"channels": (4,), "pool": ["min"]}, digits)
