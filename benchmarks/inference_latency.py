"""Inference latency: an estimator's predict_proba vs its exported ONNX file under onnxruntime.

For the digits MLP and CNN: the fitted estimator's ``predict_proba`` (torch, with input
validation) against ``toolkit.onnx.load(folder).predict_proba`` (onnxruntime, with the column /
shape checks) and against a bare ``InferenceSession.run``, at batch 1 and 256. Goal: ONNX >= 3x
faster at batch 1.

    python benchmarks/inference_latency.py
"""

from __future__ import annotations

import tempfile
import warnings

import numpy as np
from _timing import timed
from sklearn.datasets import load_digits

from toolkit.neural_network import CNNClassifier, MLPClassifier
from toolkit.onnx import export, load


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    warnings.simplefilter("ignore")
    models = {
        "MLP (64-256-128-10)": MLPClassifier((256, 128), max_epochs=5, random_state=0, device="cpu"),
        "CNN (32, 64) 8x8": CNNClassifier((32, 64), image_shape=(8, 8), max_epochs=3, random_state=0, device="cpu"),
    }
    print(
        f"{'model':22s} {'batch':>5s} {'estimator ms':>13s} {'OnnxModel ms':>13s} {'session ms':>11s} "
        f"{'ratio est/OnnxModel':>20s} {'ratio est/session':>18s}"
    )
    for name, estimator in models.items():
        estimator.fit(X, y)
        with tempfile.TemporaryDirectory() as folder:
            export(estimator, folder)
            onnx_model = load(folder)
            for batch in (1, 256):
                rows = X[:batch]
                repeats = 2000 if batch == 1 else 200
                feed = {"X": rows}
                warmup = min(20, repeats)
                _, t_est = timed(lambda: estimator.predict_proba(rows), repeats, warmup)
                _, t_onnx = timed(lambda: onnx_model.predict_proba(rows), repeats, warmup)
                _, t_sess = timed(lambda: onnx_model.session.run(["probabilities"], feed), repeats, warmup)
                print(
                    f"{name:22s} {batch:5d} {t_est * 1e3:13.4f} {t_onnx * 1e3:13.4f} {t_sess * 1e3:11.4f} "
                    f"{t_est / t_onnx:20.1f} {t_est / t_sess:18.1f}"
                )
    print("goal: ONNX >= 3x faster than the estimator at batch 1")


if __name__ == "__main__":
    main()
