"""
A scikit-learn pipeline exported, validated and served from onnxruntime
=======================================================================

An :class:`~toolkit.neural_network.MLPClassifier` behind a ``StandardScaler`` on the breast
cancer data, as one :class:`~sklearn.pipeline.Pipeline`; :func:`toolkit.onnx.export` writes the
whole pipeline as one ONNX graph (scaler, net, softmax, labels), :func:`toolkit.onnx.validate`
runs it under onnxruntime against the fitted pipeline, and :func:`toolkit.onnx.load` predicts
from the file alone, checking the DataFrame's columns by name.
"""

import tempfile
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export, load, validate

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
model = make_pipeline(StandardScaler(), MLPClassifier((64, 32), early_stopping=True, random_state=0))
model.fit(X_train, y_train)
print(f"held-out accuracy: {model.score(X_test, y_test):.3f}")

# %%
# Export and validation. The report gives, per output and batch size, the largest difference
# between onnxruntime's answer and the pipeline's own, against the tolerance it is held to.
folder = Path(tempfile.mkdtemp()) / "breast_cancer"
export(model, folder)  # one ONNX graph: scaler + net + softmax + labels
print(validate(model, folder, X_test))  # onnxruntime vs model, batch sizes 1, 7, 256

# %%
# Serving needs only onnxruntime, numpy and pandas: ``load`` reads the folder, and checks a
# DataFrame's columns against those the pipeline was fitted on.
served = load(folder)
print(served.predict(X_test.iloc[:5]))
print(served.predict_proba(X_test.iloc[:5]).round(4))
try:
    served.predict(X_test.iloc[:5, ::-1])
except ValueError as error:
    print(str(error)[:80], "...")
