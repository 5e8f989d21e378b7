"""Each ``optimizer=`` option takes the steps its documented update rule gives, written out in
numpy (CS231n's sgd_momentum, rmsprop and adam, and torch's Nesterov and AdamW forms), so that
the learning rate, momentum, Nesterov, the betas and the weight decay provably reach the
optimizer; and ``weight_decay_on="weights"`` is the gradient of 0.5 * reg * sum W^2 over the
weight matrices alone."""

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from toolkit.neural_network import CNNClassifier, MLPClassifier

LR, DECAY = 0.05, 0.1


class ParameterLog:
    """Records the net's parameters (numpy, by name) when a fit or partial_fit begins."""

    def __init__(self):
        self.before = []

    def on_train_begin(self, estimator, history):
        self.before.append({k: p.detach().numpy().copy() for k, p in estimator.module_.named_parameters()})


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:64] / 16).astype(np.float32), y[:64]


def data_gradients(estimator, X, y, parameters: dict, penalty: float = 0.0) -> dict:
    """d(loss)/d(parameter) of one full batch at ``parameters``, plus 0.5 * penalty * sum W^2
    over the tensors of two or more dimensions (the weights-only L2)."""
    net = copy.deepcopy(estimator.module_).train()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.from_numpy(parameters[name]))
    targets = torch.from_numpy(estimator._encode_targets(y, len(y), reset=False))
    inputs = torch.from_numpy(X.reshape((len(X),) + estimator.net_shape_))
    loss = estimator._loss(net(inputs), targets)
    loss = loss + 0.5 * penalty * sum((p**2).sum() for p in net.parameters() if p.dim() >= 2)
    loss.backward()
    return {name: p.grad.numpy().astype(np.float64) for name, p in net.named_parameters()}


def sgd(w, g, state, *, momentum, nesterov, decay, t):
    g = g + decay * w
    if momentum:
        state["b"] = g if t == 1 else momentum * state["b"] + g
        g = g + momentum * state["b"] if nesterov else state["b"]
    return w - LR * g


def rmsprop(w, g, state, *, momentum, decay, t):
    g = g + decay * w
    state["v"] = 0.01 * g**2 + (0.99 * state["v"] if t > 1 else 0.0)
    step = g / (np.sqrt(state["v"]) + 1e-8)
    if momentum:
        state["b"] = step if t == 1 else momentum * state["b"] + step
        step = state["b"]
    return w - LR * step


def adam(w, g, state, *, decay, decoupled, t):
    if decoupled:
        w = w * (1 - LR * decay)
    else:
        g = g + decay * w
    state["m"] = 0.1 * g + (0.9 * state["m"] if t > 1 else 0.0)
    state["v"] = 0.001 * g**2 + (0.999 * state["v"] if t > 1 else 0.0)
    m_hat, v_hat = state["m"] / (1 - 0.9**t), state["v"] / (1 - 0.999**t)
    return w - LR * m_hat / (np.sqrt(v_hat) + 1e-8)


RULES = {
    "sgd": lambda w, g, s, t, p: sgd(w, g, s, momentum=p["momentum"], nesterov=p["nesterov"], decay=p["decay"], t=t),
    "rmsprop": lambda w, g, s, t, p: rmsprop(w, g, s, momentum=p["momentum"], decay=p["decay"], t=t),
    "adam": lambda w, g, s, t, p: adam(w, g, s, decay=p["decay"], decoupled=False, t=t),
    "adamw": lambda w, g, s, t, p: adam(w, g, s, decay=p["decay"], decoupled=True, t=t),
}

CASES = [
    ("sgd", 0.0, False),
    ("sgd", 0.9, False),
    ("sgd", 0.9, True),
    ("rmsprop", 0.0, False),
    ("rmsprop", 0.5, False),
    ("adam", 0.9, False),
    ("adamw", 0.9, False),
]


@pytest.mark.parametrize("decay_on", ["all", "weights"])
@pytest.mark.parametrize(("optimizer", "momentum", "nesterov"), CASES)
def test_three_steps_follow_the_documented_rule(optimizer, momentum, nesterov, decay_on, digits):
    X, y = digits
    log = ParameterLog()
    model = MLPClassifier(
        (16, 8),
        optimizer=optimizer,
        learning_rate=LR,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=DECAY,
        weight_decay_on=decay_on,
        batch_size=len(X),  # one step per partial_fit
        callbacks=[log],
        random_state=0,
    )
    states: dict = {}
    for t in (1, 2, 3):
        model.partial_fit(X, y, classes=np.arange(10))
        before = log.before[-1]
        gradients = data_gradients(model, X, y, before)
        after = {k: p.detach().numpy() for k, p in model.module_.named_parameters()}
        for name, w in before.items():
            decay = DECAY if decay_on == "all" or w.ndim >= 2 else 0.0
            settings = {"momentum": momentum, "nesterov": nesterov, "decay": decay}
            expected = RULES[optimizer](w.astype(np.float64), gradients[name], states.setdefault(name, {}), t, settings)
            np.testing.assert_allclose(after[name], expected, rtol=1e-4, atol=1e-6, err_msg=f"step {t}, {name}")


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: MLPClassifier((16,), norm="batch", **kw),
        lambda **kw: CNNClassifier((4, 8), norm="batch", image_shape=(8, 8), dense=(12,), head="flatten", **kw),
    ],
    ids=["mlp", "cnn"],
)
def test_weights_only_decay_is_the_gradient_of_half_reg_sum_w_squared(make, digits):
    """One plain SGD step is w - lr * d(loss + 0.5 * reg * sum W^2)/dw, the sum over weight
    matrices and kernels alone: biases and batch norm's scale and shift are not decayed."""
    X, y = digits
    log = ParameterLog()
    model = make(
        optimizer="sgd",
        momentum=0.0,
        learning_rate=LR,
        weight_decay=DECAY,
        weight_decay_on="weights",
        batch_size=len(X),
        callbacks=[log],
        random_state=0,
    )
    model.partial_fit(X, y, classes=np.arange(10))
    before = log.before[0]
    gradients = data_gradients(model, X, y, before, penalty=DECAY)
    undecayed = data_gradients(model, X, y, before)
    for name, p in model.module_.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), before[name] - LR * gradients[name], rtol=1e-4, atol=1e-6)
        if p.dim() < 2:  # no penalty reached it
            np.testing.assert_array_equal(gradients[name], undecayed[name])
    assert any(p.dim() < 2 and "weight" in name for name, p in model.module_.named_parameters())  # a norm's scale


def test_an_unknown_scope_is_named(digits):
    X, y = digits
    with pytest.raises(ValueError, match="weight_decay_on"):
        MLPClassifier(weight_decay_on="biases").fit(X, y)
