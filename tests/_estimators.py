"""Every public estimator (``toolkit.all_estimators()``) at a small size, with data to fit it on:
the one table that the common checks, the export tests and the estimator tests take their
estimators from. ``test_structure.py`` keeps it in step with the registry, so a new estimator
cannot be left out of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits, make_moons

from toolkit.generative import DDPM, VAE, AutoEncoder
from toolkit.mixture import GaussianMixture
from toolkit.neural_network import (
    CaptionGenerator,
    CNNClassifier,
    CNNRegressor,
    MLPClassifier,
    MLPRegressor,
    RNNClassifier,
    RNNRegressor,
)
from toolkit.timeseries import ARForecaster

# Enough training for scikit-learn's common checks (which test that a net learns).
TRAINING = dict(max_epochs=60, batch_size=50, learning_rate=1e-2, random_state=0, device="cpu", n_iter_no_change=60)
WORDS = np.array(["a red disc", "a blue box", "a big green disc", "two small boxes", "one red box"])


@dataclass(frozen=True)
class Small:
    """How one public estimator is made small (``make``), and data it fits on: ``fit_data()``
    gives the ``fit`` arguments; ``rows(model)`` what its predictions (and its exported graph)
    read."""

    make: Callable
    fit_data: Callable[[], tuple]
    rows: Callable = lambda model, data: data[0]  # noqa: E731 - X itself, for most
    common_checks: bool = True  # scikit-learn's common checks apply (see toolkit/_estimator_checks.py)


def digits(n: int = 200) -> np.ndarray:
    return (load_digits().data[:n] / 16.0).astype(np.float32)


def labels(n: int = 200) -> np.ndarray:
    return load_digits().target[:n]


def moons() -> np.ndarray:
    return make_moons(200, noise=0.05, random_state=0)[0]


def series() -> pd.Series:
    rng = np.random.default_rng(0)
    values = np.zeros(200)
    for t in range(2, 200):
        values[t] = 0.6 * values[t - 1] - 0.2 * values[t - 2] + rng.normal()
    return pd.Series(values, index=pd.date_range("2000-01", periods=200, freq="MS"))


def last_window(model: ARForecaster, data: tuple) -> np.ndarray:
    """The window that forecasts after the fitted series: its last p values; (1, p)."""
    return data[0].to_numpy()[-max(model.lags_) :][None]


SMALL: dict[str, Small] = {
    "MLPClassifier": Small(lambda: MLPClassifier((16,), **TRAINING), lambda: (digits(), labels())),
    "MLPRegressor": Small(lambda: MLPRegressor((16,), **TRAINING), lambda: (digits(), digits()[:, 20])),
    "CNNClassifier": Small(lambda: CNNClassifier((8,), **TRAINING), lambda: (digits().reshape(-1, 8, 8), labels())),
    "CNNRegressor": Small(lambda: CNNRegressor((8,), **TRAINING), lambda: (digits().reshape(-1, 8, 8), labels() / 9)),
    "RNNClassifier": Small(lambda: RNNClassifier(8, **TRAINING), lambda: (digits().reshape(-1, 8, 8), labels())),
    "RNNRegressor": Small(lambda: RNNRegressor(8, **TRAINING), lambda: (digits().reshape(-1, 8, 8), labels() / 9)),
    "CaptionGenerator": Small(
        lambda: CaptionGenerator("features", hidden_size=8, embedding_dim=4, **TRAINING),
        lambda: (digits()[:, :16], WORDS[labels() % len(WORDS)]),
    ),
    "VAE": Small(lambda: VAE(2, hidden=(16,), **TRAINING), lambda: (digits(),)),
    "AutoEncoder": Small(lambda: AutoEncoder(2, hidden=(16,), **TRAINING), lambda: (digits(),)),
    "DDPM": Small(lambda: DDPM(n_steps=20, hidden=16, n_blocks=1, **TRAINING), lambda: (moons(),)),
    "GaussianMixture": Small(lambda: GaussianMixture(2, random_state=0, device="cpu"), lambda: (digits()[:, :8],)),
    "ARForecaster": Small(lambda: ARForecaster(2), lambda: (series(),), rows=last_window, common_checks=False),
}
