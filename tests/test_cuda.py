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


@pytest.mark.parametrize("precision", ["float16", "int8"])
def test_reduced_precision_exports_validate_on_the_cuda_provider(digits, precision, tmp_path):
    """A float16 graph runs whole in float16 on CUDA (the CPU provider falls back to float32 for
    some operators), so it is validated there too; onnxruntime's CUDA provider must be installed."""
    import onnxruntime as ort

    from toolkit.onnx import export, validate

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider here (onnxruntime-gpu is not installed)")
    X, y = digits
    model = MLPClassifier((512, 512), max_epochs=5, random_state=0, device="cuda").fit(X[:1000], y[:1000])
    export(model, tmp_path, precision=precision)
    report = validate(model, tmp_path, X[1000:], y[1000:], providers=["CUDAExecutionProvider"])
    assert report.provider == "CUDAExecutionProvider" and report.passed, report
