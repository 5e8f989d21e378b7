"""Whole Pipelines as ONE graph: scikit-learn and toolkit steps in any order, DataFrame columns as inputs."""

import numpy as np
import onnx
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from tests._warnings import SHORT_TRAINING
from toolkit.generative import VAE
from toolkit.mixture import GaussianMixture
from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export, load, validate

pytestmark = SHORT_TRAINING


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def mixed(wine):
    X, y = wine
    frame = X.iloc[:, :5].copy()
    frame["region"] = np.where(X["alcohol"] > 13, "north", np.where(X["hue"] > 1, "south", "east"))
    return frame, y.map({0: "barolo", 1: "grignolino", 2: "barbera"})


def test_column_transformer_with_a_string_column_into_an_mlp(mixed, tmp_path):
    frame, y = mixed
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), list(frame.columns[:5])),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    pipeline = make_pipeline(prep, MLPClassifier((16,), max_epochs=30, random_state=0)).fit(frame, y)
    export(pipeline, tmp_path)
    model = load(tmp_path)
    assert [(i["name"], i["dtype"]) for i in model.inputs] == [(c, "float32") for c in frame.columns[:5]] + [
        ("region", "string")
    ]
    report = validate(pipeline, tmp_path, frame)
    assert report.passed and report.outputs["label"].mismatches == 0
    assert report.outputs["probabilities"].max_abs_error < 1e-5
    np.testing.assert_array_equal(model.predict(frame.iloc[:7]).to_numpy(), pipeline.predict(frame.iloc[:7]))
    with pytest.raises(ValueError, match=r"missing \['region'\]"):
        model.predict(frame.drop(columns="region"))


def test_scaler_and_gaussian_mixture(wine, tmp_path):
    X, _ = wine
    pipeline = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    export(pipeline, tmp_path)
    report = validate(pipeline, tmp_path, X)
    assert report.passed and report.outputs["probabilities"].max_abs_error < 1e-10
    assert load(tmp_path).inputs[0]["dtype"] == "float64"


def test_scaler_and_vae_transform(wine, tmp_path):
    X, _ = wine
    pipeline = make_pipeline(StandardScaler(), VAE(2, hidden=(16,), max_epochs=5, random_state=0)).fit(X)
    export(pipeline, tmp_path)
    assert [p.name for p in tmp_path.glob("*.onnx")] == ["encoder.onnx"]
    report = validate(pipeline, tmp_path, X)
    assert report.passed and set(report.outputs) == {"mean"} and report.outputs["mean"].max_abs_error < 1e-4


@pytest.mark.parametrize("last", ["gmm", "logistic"])
def test_toolkit_step_in_the_middle(wine, last, tmp_path):
    """StandardScaler -> VAE -> (toolkit GaussianMixture in float64 | scikit-learn LogisticRegression): one graph."""
    X, y = wine
    final = GaussianMixture(3, random_state=0) if last == "gmm" else LogisticRegression(max_iter=500)
    pipeline = make_pipeline(StandardScaler(), VAE(2, hidden=(16,), max_epochs=5, random_state=0), final).fit(X, y)
    export(pipeline, tmp_path)
    graph = onnx.load(tmp_path / "model.onnx")
    assert [i.name for i in graph.graph.input] == ["X"]
    assert "Cast" in {n.op_type for n in graph.graph.node} or last == "logistic"  # float32 latents -> float64 mixture
    report = validate(pipeline, tmp_path, X)
    assert report.passed and report.outputs["label"].mismatches == 0
    assert report.outputs["probabilities"].max_abs_error < 1e-4


def test_unsupported_steps_are_named(wine, tmp_path):
    X, _ = wine
    odd = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), GaussianMixture(2, random_state=0)).fit(X)
    with pytest.raises(TypeError, match=r"functiontransformer \(FunctionTransformer\)"):
        export(odd, tmp_path)
    scaler = StandardScaler().fit(X)
    gmm = GaussianMixture(2, random_state=0).fit(scaler.transform(X))
    judge = LogisticRegression().fit(gmm.predict_proba(scaler.transform(X)), gmm.predict(scaler.transform(X)))
    middle = Pipeline([("scale", scaler), ("gmm", gmm), ("judge", judge)])  # fitted step by step
    with pytest.raises(TypeError, match=r"step 'gmm' \(GaussianMixture\) is not a transformer"):
        export(middle, tmp_path)
    assert not (tmp_path / "model.onnx").exists()
