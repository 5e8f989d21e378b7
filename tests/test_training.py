"""The training loop's options: learning-rate schedules, gradient clipping, best-weight
restoring and callbacks, on every net estimator through the shared base."""

import copy
import functools
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from tests._warnings import SHORT_TRAINING
from toolkit._param_validation import InvalidParameterError
from toolkit.generative import VAE
from toolkit.neural_network import MLPClassifier, MLPRegressor

pytestmark = SHORT_TRAINING


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:300].astype(np.float32), y[:300]


def rates(model) -> list[float]:
    return [epoch["learning_rate"] for epoch in model.history_]


def test_step_schedule_with_options(data):
    model = MLPClassifier(
        (8,), learning_rate=0.1, lr_schedule=("step", {"step_size": 2, "gamma": 0.5}), max_epochs=6, random_state=0
    ).fit(*data)
    np.testing.assert_allclose(rates(model), [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_cosine_schedule_spans_the_epoch_budget(data):
    model = MLPClassifier((8,), learning_rate=0.1, lr_schedule="cosine", max_epochs=5, random_state=0).fit(*data)
    expected = [0.05 * (1 + np.cos(np.pi * epoch / 5)) for epoch in range(5)]  # eta_min 0, T_max = max_epochs
    np.testing.assert_allclose(rates(model), expected, rtol=1e-12)


def test_a_scheduler_factory(data):
    factory = functools.partial(torch.optim.lr_scheduler.ExponentialLR, gamma=0.5)
    model = MLPRegressor((8,), learning_rate=0.08, lr_schedule=factory, max_epochs=4, random_state=0).fit(
        data[0], data[1].astype(float)
    )
    np.testing.assert_allclose(rates(model), [0.08, 0.04, 0.02, 0.01])
    assert isinstance(model.lr_scheduler_, torch.optim.lr_scheduler.ExponentialLR)


def test_plateau_schedule_lowers_the_rate_when_the_watched_loss_stalls(data):
    model = MLPClassifier(
        (8,), learning_rate=0.5, lr_schedule=("plateau", {"patience": 0, "factor": 0.5}), max_epochs=15, random_state=0
    ).fit(*data)
    assert isinstance(model.lr_scheduler_, torch.optim.lr_scheduler.ReduceLROnPlateau)
    history = rates(model)
    assert history == sorted(history, reverse=True) and history[-1] < history[0]
    losses = [epoch["train_loss"] for epoch in model.history_]
    for epoch in range(1, len(history) - 1):  # the rate halves right after an epoch that did not improve on the best
        stalled = losses[epoch] >= min(losses[:epoch])
        assert history[epoch + 1] == pytest.approx(history[epoch] * (0.5 if stalled else 1.0))


def test_bad_schedules_are_named(data):
    with pytest.raises(InvalidParameterError, match="lr_schedule"):
        MLPClassifier((8,), lr_schedule="linear", max_epochs=1).fit(*data)
    with pytest.raises(ValueError, match="lr_schedule options {'step': 3} do not fit StepLR"):
        MLPClassifier((8,), lr_schedule=("step", {"step": 3}), max_epochs=1).fit(*data)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        MLPClassifier((8,), lr_schedule=("warmup", {}), max_epochs=1).fit(*data)


def global_grad_norm(module) -> float:
    return float(
        torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad) for p in module.parameters() if p.grad is not None])
        )
    )


def test_gradient_clipping_bounds_the_global_norm(data):
    X, y = data
    free = MLPClassifier((32,), learning_rate=1e-3, max_epochs=1, random_state=0).fit(
        X * 16, y
    )  # unscaled pixels: large gradients
    clipped = MLPClassifier((32,), learning_rate=1e-3, max_epochs=1, max_grad_norm=0.05, random_state=0).fit(X * 16, y)
    assert global_grad_norm(free.module_) > 0.05
    assert global_grad_norm(clipped.module_) <= 0.05 * (1 + 1e-5)


class Snapshots:
    """Keeps each epoch's weights and validation loss."""

    def __init__(self):
        self.states, self.losses = [], []

    def on_epoch_end(self, estimator, history):
        self.states.append(copy.deepcopy(estimator.module_.state_dict()))
        self.losses.append(history[-1]["valid_loss"])


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_restores_the_best_epochs_weights(data, restore):
    snapshots = Snapshots()
    model = MLPClassifier(
        (32,),
        learning_rate=0.05,
        early_stopping=True,
        n_iter_no_change=3,
        max_epochs=60,
        restore_best_weights=restore,
        callbacks=[snapshots],
        random_state=0,
    ).fit(*data)
    assert len(snapshots.states) == model.n_iter_ < 60
    chosen = int(np.argmin(snapshots.losses)) if restore else -1
    assert restore is False or chosen != model.n_iter_ - 1  # the best epoch is not the last one
    for name, value in model.module_.state_dict().items():
        torch.testing.assert_close(value, snapshots.states[chosen][name], rtol=0, atol=0)


class Recorder:
    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def on_train_begin(self, estimator, history):
        self.calls.append(("begin", len(history)))

    def on_epoch_end(self, estimator, history):
        self.calls.append(("epoch", history[-1]["epoch"]))
        return self.stop_after is not None and len(history) >= self.stop_after

    def on_train_end(self, estimator, history):
        self.calls.append(("end", len(history)))


class OnlyEnd:
    def __init__(self):
        self.seen = None

    def on_train_end(self, estimator, history):
        self.seen = (type(estimator).__name__, len(history))


def test_callbacks_see_the_history_and_may_stop_training(data):
    recorder, only_end = Recorder(stop_after=3), OnlyEnd()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a callback's stop is a stop, not max_epochs running out
        model = MLPClassifier((8,), max_epochs=20, callbacks=[recorder, only_end], random_state=0).fit(*data)
    assert model.n_iter_ == 3
    assert recorder.calls == [("begin", 0), ("epoch", 1), ("epoch", 2), ("epoch", 3), ("end", 3)]
    assert only_end.seen == ("MLPClassifier", 3)


def test_callbacks_work_on_the_generative_nets_and_survive_clone(data):
    recorder = Recorder()
    model = VAE(
        2, hidden=(8,), max_epochs=2, callbacks=[recorder], lr_schedule="exponential", max_grad_norm=1.0, random_state=0
    )
    copy_ = clone(model)
    assert copy_.get_params()["callbacks"][0] is not recorder and isinstance(copy_.callbacks[0], Recorder)
    model.fit(data[0])
    assert recorder.calls == [("begin", 0), ("epoch", 1), ("epoch", 2), ("end", 2)]
    np.testing.assert_allclose(rates(model), [1e-3, 0.95e-3])


# --------------------------------------------------------------- init scale and history
@pytest.mark.parametrize("scale", [1e-3, 0.05, 1.0])
def test_weight_scale_draws_weights_from_a_normal_of_that_scale(data, scale):
    X, y = data
    model = MLPClassifier((256, 256), weight_scale=scale, max_epochs=1, learning_rate=1e-12, random_state=0).fit(X, y)
    layers = [m for m in model.module_.modules() if isinstance(m, torch.nn.Linear)]
    for layer in layers:
        assert float(layer.weight.detach().std()) == pytest.approx(scale, rel=0.1)
        assert float(layer.bias.detach().abs().max()) < 1e-9
    default = MLPClassifier((256, 256), max_epochs=1, learning_rate=1e-12, random_state=0).fit(X, y)
    first = next(m for m in default.module_.modules() if isinstance(m, torch.nn.Linear))
    assert float(first.weight.detach().std()) == pytest.approx(np.sqrt(2 / X.shape[1]), rel=0.1)  # Kaiming for ReLU


def test_weight_scale_must_be_positive(data):
    X, y = data
    with pytest.raises(InvalidParameterError, match="weight_scale"):
        MLPClassifier(weight_scale=0.0).fit(X, y)


def test_history_records_the_training_score(data):
    """train_metric: the score of (up to 1,000) training rows in eval mode after each epoch; with
    fewer rows than that it is the fitted model's own score on its training data."""
    X, y = data
    classifier = MLPClassifier((16,), max_epochs=5, random_state=0).fit(X, y)
    assert [set(h) >= {"train_loss", "train_metric", "valid_loss", "valid_metric"} for h in classifier.history_]
    assert classifier.history_[-1]["train_metric"] == pytest.approx(classifier.score(X, y), abs=1e-6)
    target = X @ np.arange(1.0, X.shape[1] + 1)
    regressor = MLPRegressor((16,), max_epochs=5, random_state=0).fit(X, target)
    assert regressor.history_[-1]["train_metric"] == pytest.approx(regressor.score(X, target), abs=1e-5)
    stopped = MLPClassifier((16,), max_epochs=5, early_stopping=True, random_state=0).fit(X, y)
    assert all(0 <= h["train_metric"] <= 1 and 0 <= h["valid_metric"] <= 1 for h in stopped.history_)
    assert all(np.isnan(h["train_metric"]) for h in VAE(2, hidden=(8,), max_epochs=2, random_state=0).fit(X).history_)
