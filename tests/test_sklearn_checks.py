"""scikit-learn's common estimator checks over every torch-backed estimator."""

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from tests._warnings import SHORT_TRAINING
from toolkit._estimator_checks import expected_failed_checks
from toolkit.generative import DDPM, VAE, AutoEncoder
from toolkit.neural_network import (
    CaptionGenerator,
    CNNClassifier,
    CNNRegressor,
    MLPClassifier,
    MLPRegressor,
    RNNClassifier,
    RNNRegressor,
)

pytestmark = SHORT_TRAINING

SMALL = dict(max_epochs=60, batch_size=50, learning_rate=1e-2, random_state=0, device="cpu", n_iter_no_change=60)

ESTIMATORS = [
    MLPClassifier((16,), **SMALL),
    MLPRegressor((16,), **SMALL),
    CNNClassifier((8,), **SMALL),
    CNNRegressor((8,), **SMALL),
    RNNClassifier(8, **SMALL),
    RNNRegressor(8, **SMALL),
    VAE(2, hidden=(16,), **SMALL),
    AutoEncoder(2, hidden=(16,), **SMALL),
    DDPM(n_steps=20, hidden=16, n_blocks=1, **SMALL),
    CaptionGenerator("features", hidden_size=8, embedding_dim=4, **SMALL),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        if check.func.__name__ == "check_supervised_y_no_nan":  # the check casts its infinite y itself
            warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
        check(estimator)
