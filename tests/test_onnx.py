"""ONNX export and validation for every estimator and every option that changes the graph."""

import json

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests._estimators import SMALL
from tests._warnings import SHORT_TRAINING
from toolkit.neural_network import (
    CNNClassifier,
    CNNRegressor,
    MLPClassifier,
    MLPRegressor,
    RNNClassifier,
    RNNRegressor,
)
from toolkit.onnx import ValidationError, export, load, validate

pytestmark = SHORT_TRAINING

FAST = dict(max_epochs=2, random_state=0, device="cpu")
WORDS = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:300].astype(np.float32), y[:300]


CASES = {
    "mlp-relu": (lambda: MLPClassifier((16, 8), **FAST), "flat", "int"),
    "mlp-batchnorm-strings": (
        lambda: MLPClassifier((16,), norm="batch", activation="tanh", dropout=0.2, **FAST),
        "flat",
        "str",
    ),
    "mlp-layernorm-sigmoid": (lambda: MLPClassifier((16,), norm="layer", activation="sigmoid", **FAST), "flat", "int"),
    "mlp-regressor-multi": (lambda: MLPRegressor((16,), activation="leaky_relu", **FAST), "flat", "multi"),
    "mlp-regressor-single": (lambda: MLPRegressor((16,), **FAST), "flat", "single"),
    "cnn-batch-max": (lambda: CNNClassifier((8, 8), image_shape=(8, 8), **FAST), "flat", "int"),
    "cnn-layer-avg": (lambda: CNNClassifier((8,), norm="layer", pool="avg", **FAST), "images4d", "str"),
    "cnn-group-stride": (
        lambda: CNNClassifier((8, 16), norm="group", groups=4, stride=(1, 2), padding=(1, 0), **FAST),
        "images3d",
        "int",
    ),
    "cnn-instance-nopool": (
        lambda: CNNRegressor((8,), norm="instance", pool=None, kernel_size=5, image_shape=(1, 8, 8), **FAST),
        "flat",
        "multi",
    ),
    "cnn-none": (lambda: CNNClassifier((4,), norm=None, dropout=0.1, image_shape=(8, 8), **FAST), "flat", "int"),
    "cnn-notes-three-layer": (
        lambda: CNNClassifier((8,), norm=None, head="flatten", dense=(16,), image_shape=(8, 8), **FAST),
        "flat",
        "int",
    ),
    "rnn-tanh": (lambda: RNNClassifier(8, cell="rnn", sequence_length=8, **FAST), "flat", "int"),
    "lstm-bidirectional-2layers": (
        lambda: RNNClassifier(8, cell="lstm", num_layers=2, bidirectional=True, **FAST),
        "sequences",
        "str",
    ),
    "gru-masked": (
        lambda: RNNClassifier(8, cell="gru", bidirectional=True, mask_value=0.0, **FAST),
        "sequences",
        "int",
    ),
    "gru-regressor": (lambda: RNNRegressor(8, cell="gru", sequence_length=8, **FAST), "flat", "single"),
}

LAYOUTS = {
    "flat": lambda X: X,
    "images4d": lambda X: X.reshape(-1, 1, 8, 8),
    "images3d": lambda X: X.reshape(-1, 8, 8),
    "sequences": lambda X: X.reshape(-1, 8, 8),
}


def targets(kind, X, y):
    return {"int": y, "str": WORDS[y], "multi": np.c_[X[:, 20], X[:, 30]], "single": X[:, 20] * 3 + 1}[kind]


@pytest.mark.parametrize("case", list(CASES))
def test_export_validates_at_batch_sizes_1_prime_and_large(case, data, tmp_path):
    make, layout, kind = CASES[case]
    X, y = data
    X = LAYOUTS[layout](X)
    model = make().fit(X, targets(kind, X.reshape(len(X), -1), y))
    result = export(model, tmp_path)
    onnx.checker.check_model(onnx.load(result.model_path), full_check=True)
    report = validate(model, tmp_path, X)
    assert report.passed and report.batch_sizes == [1, 7, 256]
    assert report.max_abs_error <= 1e-4
    stored = json.loads((tmp_path / "model.json").read_text())
    assert stored["validation"]["passed"] is True
    assert stored["estimator"]["class"] == f"toolkit.neural_network.{type(model).__name__}"
    names = [o["name"] for o in stored["graphs"]["model"]["outputs"]]
    assert names == (["label", "probabilities"] if hasattr(model, "classes_") else ["variable"])
    loaded = load(tmp_path)
    np.testing.assert_array_equal(loaded.predict(X[:5]).shape, model.predict(X[:5]).shape)
    if hasattr(model, "classes_"):
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_rnn_export_keeps_the_time_axis_free(data, tmp_path):
    X, y = data
    sequences = X.reshape(-1, 8, 8)
    model = RNNClassifier(8, cell="lstm", bidirectional=True, **FAST).fit(sequences, y)
    export(model, tmp_path)
    for steps in (3, 8, 13):
        longer = np.concatenate([sequences, sequences], axis=1)[:, :steps]
        report = validate(model, tmp_path, longer, batch_sizes=(1, 5, 64))
        assert report.passed, report


def test_pipeline_exports_as_one_graph_with_named_columns(data, tmp_path):
    X, y = data
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    pipeline = make_pipeline(StandardScaler(), MLPClassifier((16,), **FAST)).fit(frame, WORDS[y])
    export(pipeline, tmp_path)
    report = validate(pipeline, tmp_path, frame)
    assert report.passed
    model = load(tmp_path)
    assert model.entry["feature_names"] == list(frame.columns)
    predicted = model.predict(frame.iloc[:10])
    assert isinstance(predicted, pd.Series) and list(predicted.index) == list(range(10))
    np.testing.assert_array_equal(predicted.to_numpy(), pipeline.predict(frame.iloc[:10]))
    proba = model.predict_proba(frame.iloc[:3])
    assert list(proba.columns) == sorted(set(WORDS[y]))
    with pytest.raises(ValueError, match="in another order"):
        model.predict(frame[frame.columns[::-1]])
    with pytest.raises(ValueError, match=r"missing \['px63'\]"):
        model.predict(frame.drop(columns="px63"))
    with pytest.raises(ValueError, match=r"input 'X' has shape \[3, 63\]; the model expects \[-1, 64\]"):
        model.predict(X[:3, :63])
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((1, 64), np.nan, np.float32))


def test_validation_failure_raises_with_the_numbers(data, tmp_path):
    X, y = data
    model = MLPClassifier((16,), **FAST).fit(X, y)
    export(model, tmp_path)
    other = MLPClassifier((16,), max_epochs=2, random_state=1, device="cpu").fit(X, y)
    with pytest.raises(ValidationError, match=r"probabilities vs predict_proba: max abs .* -> FAIL"):
        validate(other, tmp_path, X)
    assert json.loads((tmp_path / "model.json").read_text())["validation"]["passed"] is False


def test_export_refuses_what_it_cannot_export(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(NotFittedError):
        export(MLPClassifier(), tmp_path)
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(TypeError, match="LogisticRegression does not implement the export protocol"):
        export(LogisticRegression().fit(X, y), tmp_path)
    assert not any(tmp_path.iterdir())


def test_export_replaces_files_atomically(data, tmp_path):
    X, y = data
    model = MLPClassifier((8,), **FAST).fit(X, y)
    export(model, tmp_path)
    export(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.onnx"]


def test_exported_files_get_the_mode_a_plain_write_gives(data, tmp_path):
    """New files: 0o666 less the umask (not mkstemp's 0o600, which a server running as another
    user could not read); a file written over keeps the mode it had."""
    import os

    X, y = data
    model = MLPClassifier((8,), **FAST).fit(X, y)
    previous = os.umask(0o022)
    try:
        export(model, tmp_path / "new")
        assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "new").iterdir()} == {
            "model.json": 0o644,
            "model.onnx": 0o644,
        }
        (tmp_path / "new" / "model.onnx").chmod(0o664)
        os.umask(0o077)
        export(model, tmp_path / "new")
        assert (tmp_path / "new" / "model.onnx").stat().st_mode & 0o777 == 0o664
        export(model, tmp_path / "private")
        assert (tmp_path / "private" / "model.onnx").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(previous)


def test_a_reader_never_loads_a_mixed_export(data, tmp_path, monkeypatch):
    """model.json records each graph's SHA-256; a reader that meets an old model.json beside a new
    graph (an export between two renames) reads again, and a folder that stays mixed is an error."""
    import hashlib
    import shutil

    from toolkit.serving import _format

    X, y = data
    first, second = (MLPClassifier((8,), **{**FAST, "random_state": seed}).fit(X, y) for seed in (0, 1))
    export(first, tmp_path / "first")
    export(second, tmp_path / "second")
    entry = json.loads((tmp_path / "first" / "model.json").read_text())["graphs"]["model"]
    assert entry["sha256"] == hashlib.sha256((tmp_path / "first" / "model.onnx").read_bytes()).hexdigest()

    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "first", mixed)
    shutil.copy(tmp_path / "second" / "model.onnx", mixed / "model.onnx")  # the new graph, the old model.json
    real_sleep, sleeps = _format.time.sleep, []

    def export_finishes(seconds):  # the export's last rename lands while the reader waits
        sleeps.append(seconds)
        shutil.copy(tmp_path / "second" / "model.json", mixed / "model.json")
        real_sleep(0)

    monkeypatch.setattr(_format.time, "sleep", export_finishes)
    np.testing.assert_allclose(load(mixed).predict_proba(X[:20]), second.predict_proba(X[:20]), atol=1e-5)
    assert len(sleeps) == 1
    monkeypatch.undo()

    shutil.copy(tmp_path / "first" / "model.json", mixed / "model.json")  # and no export finishes: damaged
    with pytest.raises(
        ValueError, match="does not match the SHA-256 that model.json records: .* holds a mixed or damaged"
    ):
        load(mixed)


def test_a_new_export_removes_the_graph_files_only_the_previous_one_listed(data, tmp_path):
    from toolkit.generative import VAE

    X, y = data
    export(MLPClassifier((8,), **FAST).fit(X, y), tmp_path)
    (tmp_path / "notes.txt").write_text("kept")
    export(VAE(latent_dim=2, max_epochs=1, device="cpu", random_state=0).fit(X), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder.onnx", "encoder.onnx", "model.json", "notes.txt"]


def test_a_failed_write_leaves_the_previous_export_whole(data, tmp_path, monkeypatch):
    import os

    X, y = data
    model = MLPClassifier((8,), **FAST).fit(X, y)
    export(model, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    retrained = MLPClassifier((8,), **{**FAST, "random_state": 3}).fit(X, y)
    real_replace = os.replace

    def fail_on_metadata(source, target):
        if str(target).endswith("model.json"):
            raise OSError("disk full")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", fail_on_metadata)
    with pytest.raises(OSError, match="disk full"):
        export(retrained, tmp_path)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(after) == sorted(before)  # no temporary files left behind
    assert after == before  # model.onnx, already replaced, was restored


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_public_estimator_exports_and_validates(name, tmp_path):
    """Each estimator of the registry (tests/_estimators.py), fitted briefly, exports through its
    export protocol and its graphs agree with it (the per-family tests cover the options)."""
    small = SMALL[name]
    model = small.make()
    data = small.fit_data()
    model.fit(*data)
    export(model, tmp_path)
    report = validate(model, tmp_path, small.rows(model, data))
    assert report.passed, report
