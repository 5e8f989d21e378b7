"""Data-parallel training (distributed="ddp"): 2 gloo processes started by torch's elastic
launcher step like one process on the whole batch, reach its accuracy, and fail cleanly."""

import os
import time
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import train_test_split

from toolkit import DataParallelError
from toolkit.neural_network import CNNClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_one_step_on_two_processes_equals_one_process_on_the_whole_batch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=64)
    options = {"hidden_layer_sizes": (16, 16), "batch_size": 64, "max_epochs": 1, "random_state": 0}
    options |= {"optimizer": "sgd", "learning_rate": 0.1, "device": "cpu"}
    single = MLPRegressor(**options).fit(X, y)
    parallel = MLPRegressor(distributed="ddp", n_procs=2, **options).fit(X, y)
    assert single.optimizer_steps_ == parallel.optimizer_steps_ == 1
    for ours, theirs in zip(single.module_.parameters(), parallel.module_.parameters()):
        np.testing.assert_allclose(theirs.detach().numpy(), ours.detach().numpy(), rtol=0, atol=1e-6)
    fresh = MLPRegressor(**{**options, "learning_rate": 1e-30}).fit(X, y)  # the starting weights
    moved = max(abs(a - b).max().item() for a, b in zip(fresh.module_.parameters(), single.module_.parameters()))
    assert moved > 1e-3  # the step did move the weights
    assert parallel.history_[0]["train_loss"] == pytest.approx(single.history_[0]["train_loss"], rel=1e-6)


def test_a_two_process_fit_of_the_digits_cnn_reaches_the_one_process_accuracy():
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data / 16, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    options = {"channels": (16, 32), "image_shape": (8, 8), "max_epochs": 20, "batch_size": 64, "random_state": 0}
    single = CNNClassifier(device="cpu", **options).fit(X_train, y_train)
    parallel = CNNClassifier(device="cpu", distributed="ddp", n_procs=2, **options).fit(X_train, y_train)
    assert single.score(X_test, y_test) > 0.95
    assert abs(parallel.score(X_test, y_test) - single.score(X_test, y_test)) <= 0.01
    assert len(parallel.history_) == 20 and np.isfinite(parallel.history_[-1]["train_loss"])


class DieOnRankOne:
    """A callback that kills the process of rank 1 at the end of its second epoch."""

    def on_epoch_end(self, estimator, history):
        if os.environ.get("RANK") == "1" and len(history) == 2:
            os._exit(3)


def test_a_worker_that_dies_mid_fit_raises_and_leaves_the_estimator_as_it_was():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 4)).astype(np.float32), rng.normal(size=200)
    options = {"hidden_layer_sizes": (8,), "max_epochs": 50, "random_state": 0, "device": "cpu"}
    estimator = MLPRegressor(distributed="ddp", n_procs=2, callbacks=[DieOnRankOne()], **options)
    started = time.perf_counter()
    with pytest.raises(DataParallelError, match="rank 1 exited with code 3"):
        estimator.fit(X, y)
    assert time.perf_counter() - started < 60  # no hang
    with pytest.raises(NotFittedError):
        estimator.predict(X)
    fitted = MLPRegressor(**options).fit(X, y)
    before = fitted.predict(X)
    with pytest.raises(DataParallelError):
        fitted.set_params(distributed="ddp", callbacks=[DieOnRankOne()]).fit(X, y)
    np.testing.assert_array_equal(fitted.predict(X), before)


def test_distributed_options_are_checked():
    with pytest.raises(ValueError, match="'distributed' parameter"):
        MLPRegressor(distributed="horovod").fit(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="'n_procs' parameter"):
        MLPRegressor(distributed="ddp", n_procs=0).fit(np.zeros((4, 2)), np.zeros(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        partial = MLPRegressor(distributed="ddp", random_state=0).partial_fit(np.ones((4, 2)), np.ones(4))
    assert partial.n_iter_ == 1  # partial_fit trains here, in this process


def test_warnings_of_the_ranks_training_are_raised_in_the_calling_process():
    """A one-epoch budget warns in a plain fit; launched on two processes it warns the same way,
    where the caller's filters see it (not on the ranks' stderr)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)).astype(np.float32), rng.normal(size=64)
    options = {"hidden_layer_sizes": (8,), "max_epochs": 1, "random_state": 0, "device": "cpu"}
    with pytest.warns(ConvergenceWarning, match="reached max_epochs=1") as caught:
        MLPRegressor(distributed="ddp", n_procs=2, **options).fit(X, y)
    assert len([w for w in caught if issubclass(w.category, ConvergenceWarning)]) == 1
