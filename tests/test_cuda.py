"""Training and inference on CUDA; skipped when torch sees no GPU."""

import numpy as np
import pytest
import torch

from toolkit.neural_network import CNNClassifier, MLPClassifier, RNNClassifier

pytestmark = pytest.mark.cuda  # skipped without a CUDA device (conftest.py)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLPClassifier((32,), max_epochs=5, random_state=0, device="cuda"),
        lambda: CNNClassifier((8,), image_shape=(8, 8), max_epochs=5, random_state=0, device="cuda"),
        lambda: RNNClassifier(8, sequence_length=8, bidirectional=True, max_epochs=5, random_state=0, device="cuda"),
    ],
)
def test_cuda_training_matches_cpu_predictions_closely(digits, make):
    X, y = digits
    model = make().fit(X[:500], y[:500])
    assert next(model.module_.parameters()).device.type == "cuda"
    on_cpu = make().set_params(device="cpu").fit(X[:500], y[:500])
    assert np.mean(model.predict(X[500:800]) == on_cpu.predict(X[500:800])) > 0.9


def test_auto_device_picks_cuda():
    model = MLPClassifier((4,), max_epochs=1).fit(np.eye(4), [0, 1, 0, 1])
    assert model.device_.type == ("cuda" if torch.cuda.is_available() else "cpu")
