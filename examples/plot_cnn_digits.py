"""
A CNN on the digits: confusion matrix and onnxruntime latency
=============================================================

A :class:`~toolkit.neural_network.CNNClassifier` (two convolution blocks with batch norm, global
average pooling) on scikit-learn's 8x8 digits, given as flat pixel rows with ``image_shape``.
Its export runs under onnxruntime alone; the last cell times one-row requests, the size a
serving endpoint sees, against the torch model's own ``predict``.
"""

import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from toolkit.neural_network import CNNClassifier
from toolkit.onnx import export, load

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
cnn = CNNClassifier(image_shape=(8, 8), max_epochs=15, random_state=0)
with warnings.catch_warnings():  # 15 epochs keep the build short; the loss is still falling
    warnings.simplefilter("ignore", ConvergenceWarning)
    model = make_pipeline(MinMaxScaler(), cnn).fit(X_train, y_train)
print(f"held-out accuracy: {model.score(X_test, y_test):.3f} after {len(cnn.history_)} epochs")
print(cnn.summary())
ConfusionMatrixDisplay.from_estimator(model, X_test, y_test, colorbar=False)
plt.tight_layout()

# %%
# One-row latency, the median of 300 calls each.
folder = Path(tempfile.mkdtemp()) / "digits_cnn"
export(model, folder)
served = load(folder)
assert (served.predict(X_test) == model.predict(X_test)).all()


def median_microseconds(predict, rows: np.ndarray) -> float:
    times = []
    for row in rows:
        started = time.perf_counter()
        predict(row[None])
        times.append(time.perf_counter() - started)
    return 1e6 * float(np.median(times))


rows = X_test[:300]
print(f"onnxruntime: {median_microseconds(served.predict, rows):.0f} us per row")
print(f"the torch pipeline: {median_microseconds(model.predict, rows):.0f} us per row")
