"""
An int8 export beside its float32 graph, validated by what it costs and served as two versions
===============================================================================================

``export(..., precision="int8")`` quantizes the matrix products large enough to run faster in
int8 (onnxruntime's dynamic quantization: int8 weights, each batch's activations quantized as it
runs). Validation holds a reduced-precision graph to an accuracy budget instead of float32
tolerances and reports what the precision costs: how many labels agree, how far the
probabilities moved, and the score with and without it. ``toolkit serve`` then serves the two
exports as versions 1 and 2 of one model (Triton's layout), so they can be compared live.
"""

import atexit
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tritonclient.http as triton_http
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export, validate

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split((X / 16).astype(np.float32), y, random_state=0)
net = MLPClassifier((512, 512), max_epochs=20, random_state=0).fit(X_train, y_train)

root = Path(tempfile.mkdtemp())
export(net, root / "digits" / "1")
result = export(net, root / "digits" / "2", precision="int8")
print(result.metadata["graphs"]["model"]["reduction"])
sizes = [(root / "digits" / v / "model.onnx").stat().st_size for v in ("1", "2")]
print(f"file: {sizes[0] / 1e3:.0f} kB float32, {sizes[1] / 1e3:.0f} kB int8 ({sizes[1] / sizes[0]:.2f}x)")

# %%
# The cost, against the float32 estimator on held-out rows.
print(validate(net, root / "digits" / "2", X_test, y_test))

# %%
# One thread, a batch of 64 rows: the int8 graph against the float32 one.
options = ort.SessionOptions()
options.intra_op_num_threads = 1
for version in ("1", "2"):
    session = ort.InferenceSession(str(root / "digits" / version / "model.onnx"), options)
    session.run(None, {"X": X_test[:64]})
    started = time.perf_counter()
    for _ in range(200):
        session.run(None, {"X": X_test[:64]})
    print(f"version {version}: {(time.perf_counter() - started) / 200 * 1e6:.0f} us per batch of 64")

# %%
# Serve both versions (from a shell: ``toolkit serve exports/``) and compare them live.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
server = subprocess.Popen(
    [sys.executable, "-m", "toolkit.cli", "serve", str(root), "--port", str(port), "--quiet"],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
atexit.register(server.terminate)  # stopped however this script ends
client = triton_http.InferenceServerClient(f"127.0.0.1:{port}")
deadline = time.monotonic() + 120
while True:
    try:
        if client.is_model_ready("digits"):
            break
    except Exception:  # not listening yet
        pass
    if server.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError("toolkit serve did not come up")
    time.sleep(0.2)
rows = triton_http.InferInput("X", [10, 64], "FP32")
rows.set_data_from_numpy(X_test[:10])
answers = {}
for version in ("1", "2"):
    precision = client.get_model_metadata("digits", model_version=version)["parameters"]["precision"]
    answers[version] = client.infer("digits", [rows], model_version=version)
    print(f"version {version} ({precision}): labels {answers[version].as_numpy('label')}")
moved = np.abs(answers["1"].as_numpy("probabilities") - answers["2"].as_numpy("probabilities")).max()
print(f"largest change of a probability between the versions: {moved:.4f}")
server.terminate()
server.wait()
