"""
A pandas pipeline with missing values, exported and served to tritonclient
==========================================================================

The pipeline a data scientist writes for a table of mixed columns with gaps: a
``ColumnTransformer`` that imputes and scales the numbers and one-hot encodes the city, then an
:class:`~toolkit.neural_network.MLPClassifier`. It exports as one ONNX graph with one input per
column; the numeric inputs accept NaN (the graph imputes them), and validation checks rows with
missing values too. ``toolkit serve`` then answers the Open Inference Protocol (V2) over HTTP and
gRPC, so NVIDIA's ``tritonclient`` works unchanged, and takes DataFrame records at ``/predict``.
"""

import atexit
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export, validate

rng = np.random.default_rng(0)
people = pd.DataFrame(
    {
        "age": rng.integers(18, 80, 600).astype(float),
        "income": rng.normal(50, 15, 600),
        "city": rng.choice(["paris", "lyon", "nice"], 600),
    }
)
y = ((people["age"] > 45) ^ (people["city"] == "nice")).astype(int)
people.loc[rng.random(600) < 0.15, "age"] = np.nan  # 15 % of the ages and incomes are missing
people.loc[rng.random(600) < 0.15, "income"] = np.nan
prepare = ColumnTransformer(
    [
        ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
        ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
    ]
)
net = MLPClassifier((32,), max_epochs=300, early_stopping=True, random_state=0)
model = make_pipeline(prepare, net).fit(people, y)
print(f"training accuracy: {model.score(people, y):.3f} (a missing age hides the answer)")

root = Path(tempfile.mkdtemp())
export(model, root / "people")
print(validate(model, root / "people", people))  # also on rows with NaN in age and income

# %%
# Serve the folder of models on free ports (from a shell: ``toolkit serve exports/``).


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


http_port, grpc_port = free_port(), free_port()
server = subprocess.Popen(
    [sys.executable, "-m", "toolkit.cli", "serve", str(root), "--port", str(http_port), "--grpc-port", str(grpc_port)]
    + ["--quiet"],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
atexit.register(server.terminate)  # stopped however this script ends
client = triton_http.InferenceServerClient(f"127.0.0.1:{http_port}")
deadline = time.monotonic() + 120
while True:
    try:
        if client.is_model_ready("people"):
            break
    except Exception:  # not listening yet
        pass
    if server.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError("toolkit serve did not come up")
    time.sleep(0.2)
metadata = client.get_model_metadata("people")
print([(tensor["name"], tensor["datatype"], tensor["shape"]) for tensor in metadata["inputs"]])

# %%
# tritonclient over HTTP and gRPC: one tensor per column, NaN for a missing value.
rows = pd.DataFrame({"age": [62.0, np.nan, 30.0], "income": [np.nan, 41.0, 75.0], "city": ["lyon", "nice", "paris"]})
for module, url in ((triton_http, f"127.0.0.1:{http_port}"), (triton_grpc, f"127.0.0.1:{grpc_port}")):
    inputs = []
    for column, datatype in (("age", "FP32"), ("income", "FP32"), ("city", "BYTES")):
        values = rows[[column]].to_numpy().astype(np.float32 if datatype == "FP32" else object)
        tensor = module.InferInput(column, list(values.shape), datatype)
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    answer = module.InferenceServerClient(url).infer("people", inputs)
    print(module.__name__, "labels", answer.as_numpy("label"), "P(1)", answer.as_numpy("probabilities")[:, 1].round(3))
print("the pipeline itself", model.predict(rows), model.predict_proba(rows)[:, 1].round(3))

# %%
# The records endpoint takes DataFrame rows as JSON objects, matched to the columns by name
# (null for a missing value).
records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
print(httpx.post(f"http://127.0.0.1:{http_port}/v2/models/people/predict", json={"records": records}).json())
server.terminate()
server.wait()
