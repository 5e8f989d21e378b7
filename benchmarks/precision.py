"""Reduced-precision exports, side by side: file size, onnxruntime latency at batch 1 and 64 (one
thread, the CPU provider), accuracy and label agreement of float32 / int8 dynamic / int8 static
(calibrated on 256 training rows) / float16 graphs of the same fitted nets:

- the breast cancer Pipeline (StandardScaler + MLP 30-64-32-2, the breast_cancer_mlp pipeline's),
- an MLP with two hidden layers of 512 on the digits,
- the digits_cnn pipeline's CNN (32, 64 channels) and one of 64, 128 channels,
- an LSTM of 64 reading the digits' rows as a sequence,
- the digits_vae pipeline's VAE (its encoder timed; its reconstruction's relative error reported).

Latency is each graph's bare ``InferenceSession.run`` (median of interleaved rounds); accuracy and
agreement come from ``toolkit.onnx.validate`` against the float32 estimator on the test rows.
Goals: the 2 x 512 MLP at least 2x faster in int8 at batch 64; no int8 export slower than its
float32 graph; int8 files at most 0.4x; accuracy drop at most 0.5 points; agreement >= 99 %.

    python benchmarks/precision.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _timing import interleaved_ms
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from toolkit.generative import VAE
from toolkit.neural_network import CNNClassifier, MLPClassifier, RNNClassifier
from toolkit.onnx import export, validate

VARIANTS = {
    "float32": {},
    "int8 dynamic": {"precision": "int8"},
    "int8 static": {"precision": "int8", "calibration": True},
    "float16": {"precision": "float16"},
}


def nets() -> dict:
    """{name: (unfitted estimator, X_train, X_test, y_train, y_test)}."""
    cancer = train_test_split(*load_breast_cancer(return_X_y=True), random_state=0)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split((X / 16).astype(np.float32), y, random_state=0)
    images = [X_train.reshape(-1, 8, 8), X_test.reshape(-1, 8, 8), y_train, y_test]
    mlp = MLPClassifier((64, 32), batch_size=32, weight_decay=1e-3, max_epochs=100, random_state=0)
    return {
        "breast cancer MLP 64-32": (Pipeline([("scale", StandardScaler()), ("mlp", mlp)]), *cancer),
        "digits MLP 512-512": (
            MLPClassifier((512, 512), max_epochs=20, random_state=0),
            X_train,
            X_test,
            y_train,
            y_test,
        ),
        "digits CNN 32-64": (CNNClassifier((32, 64), dropout=0.1, max_epochs=20, random_state=0), *images),
        "digits CNN 64-128": (CNNClassifier((64, 128), max_epochs=10, random_state=0), *images),
        "digits LSTM 64": (RNNClassifier(64, cell="lstm", max_epochs=20, random_state=0), *images),
        "digits VAE": (VAE(2, image_shape=(8, 8), likelihood="bernoulli", random_state=0), *images[:2], None, None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    header = (
        f"{'net':24s} {'variant':13s} {'kB':>7s} {'size':>5s} {'b1 us':>7s} {'b64 us':>8s} {'b1 x':>5s} {'b64 x':>6s}"
    )
    print(header + f" {'score':>7s} {'drop':>6s} {'agree':>6s} {'rel err':>7s} {'nodes':>5s} budget")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (estimator, X_train, X_test, y_train, y_test) in nets().items():
            estimator.fit(X_train) if y_train is None else estimator.fit(X_train, y_train)
            rows = {}
            for variant, settings in VARIANTS.items():
                folder = Path(tmp) / f"{name}-{variant}".replace(" ", "_")
                settings = dict(settings)
                if settings.pop("calibration", False):
                    settings["calibration"] = X_train[:256]
                result = export(estimator, folder, **settings)
                report = validate(estimator, folder, X_test, y_test, raise_on_failure=False)
                entry = next(iter(result.metadata["graphs"].values()))
                session = ort.InferenceSession(str(folder / entry["file"]), options, providers=["CPUExecutionProvider"])
                feed_name = session.get_inputs()[0].name
                feed = np.asarray(X_test, dtype=np.float32 if entry["inputs"][0]["dtype"] == "float32" else np.float64)
                size = sum((folder / e["file"]).stat().st_size for e in result.metadata["graphs"].values())
                rows[variant] = (session, feed_name, feed, size, report, entry.get("reduction") or {})
            calls = [
                (lambda s=s, n=n, f=f, b=b: s.run(None, {n: f[:b]})) for s, n, f, *_ in rows.values() for b in (1, 64)
            ]
            times = interleaved_ms(calls, rounds=args.rounds, per_round=100)
            base_b1, base_b64 = times[0] * 1e3, times[1] * 1e3
            for k, (variant, (_, _, _, size, report, reduction)) in enumerate(rows.items()):
                b1, b64 = times[2 * k] * 1e3, times[2 * k + 1] * 1e3
                base_size = rows["float32"][3]
                labels = next((c for c in report.outputs.values() if c.agreement is not None), None)
                values = [c.relative_error for c in report.outputs.values() if c.relative_error is not None]
                score = report.score or {}
                nodes = len(reduction.get("quantized_nodes", [])) if "quantized_nodes" in reduction else "-"
                print(
                    f"{name:24s} {variant:13s} {size / 1e3:7.1f} {size / base_size:5.2f} {b1:7.1f} {b64:8.1f} "
                    f"{base_b1 / b1:5.2f} {base_b64 / b64:6.2f} "
                    f"{score.get('graph', float('nan')):7.4f} {100 * score.get('drop', 0.0):6.2f} "
                    f"{labels.agreement if labels else float('nan'):6.3f} {max(values, default=float('nan')):7.4f} "
                    f"{nodes!s:>5s} {'ok' if report.passed else 'MISSED'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
