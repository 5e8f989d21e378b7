"""``export(..., target_opset=N)``: every family at the lowest opset it states and at the newest,
validated; Pipelines with their scikit-learn steps at the same opset; the refusals."""

import json

import numpy as np
import onnx
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tests._estimators import SMALL
from tests._warnings import SHORT_TRAINING
from toolkit._export_spec import inference_specs
from toolkit.mixture import GaussianMixture
from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export, load, validate
from toolkit.onnx._opset import NEWEST_OPSET, lowest_opset

pytestmark = SHORT_TRAINING

# The lowest opset each family states (the docs' table says the same).
LOWEST = {
    "ARForecaster": 15,
    "AutoEncoder": 14,
    "CNNClassifier": 14,
    "CNNRegressor": 14,
    "CaptionGenerator": 20,
    "DDPM": 17,
    "GaussianMixture": 14,
    "MLPClassifier": 14,
    "MLPRegressor": 14,
    "RNNClassifier": 16,
    "RNNRegressor": 16,
    "VAE": 14,
}


def fitted(name: str):
    small = SMALL[name]
    model = small.make()
    data = small.fit_data()
    return model.fit(*data), small.rows(model, data)


def graph_opsets(folder) -> dict:
    return {
        name: entry["opset"]["ai.onnx"]
        for name, entry in json.loads((folder / "model.json").read_text())["graphs"].items()
    }


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_family_exports_and_validates_at_its_lowest_and_the_newest_opset(name, tmp_path):
    model, rows = fitted(name)
    assert lowest_opset(inference_specs(model, {})) == LOWEST[name]
    for opset in (LOWEST[name], NEWEST_OPSET):
        folder = tmp_path / str(opset)
        export(model, folder, target_opset=opset)
        assert set(graph_opsets(folder).values()) == {opset}
        for graph in graph_opsets(folder):
            assert onnx.load(folder / f"{graph}.onnx").opset_import[0].version == opset
        report = validate(model, folder, rows)
        assert report.passed, report


def test_below_a_familys_lowest_opset_is_refused_before_anything_is_written(tmp_path):
    model, _ = fitted("GaussianMixture")
    with pytest.raises(ValueError, match=r"GaussianMixture exports at opset 14 at the lowest; target_opset=13"):
        export(model, tmp_path, target_opset=13)
    with pytest.raises(ValueError, match=rf"above opset {NEWEST_OPSET}, the newest"):
        export(model, tmp_path, target_opset=NEWEST_OPSET + 1)
    with pytest.raises(TypeError, match="target_opset must be an integer"):
        export(model, tmp_path, target_opset="17")
    assert not any(tmp_path.iterdir())


def test_settings_that_need_a_newer_operator_say_the_lowest_opset_they_reach(tmp_path):
    """A layer-normalised MLP uses LayerNormalization (opset 17): the family's 14 does not hold,
    and the refusal says what does."""
    X, y = SMALL["MLPClassifier"].fit_data()
    model = MLPClassifier((8,), norm="layer", max_epochs=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"MLPClassifier's graph 'model' exports at opset 17 at the lowest with these"):
        export(model, tmp_path, target_opset=15)
    export(model, tmp_path, target_opset=17)
    assert validate(model, tmp_path, X).passed


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True, as_frame=True)
    frame = X.iloc[:, :5].copy()
    frame["region"] = np.where(X["alcohol"] > 13, "north", np.where(X["hue"] > 1, "south", "east"))
    return frame, y


@pytest.mark.parametrize("opset", [14, NEWEST_OPSET])
def test_a_pipeline_converts_its_scikit_learn_steps_at_the_same_opset(wine, opset, tmp_path):
    frame, y = wine
    prep = ColumnTransformer([("num", StandardScaler(), list(frame.columns[:5])), ("cat", OneHotEncoder(), ["region"])])
    pipeline = make_pipeline(prep, MLPClassifier((8,), max_epochs=3, random_state=0)).fit(frame, y)
    export(pipeline, tmp_path, target_opset=opset)
    graph = onnx.load(tmp_path / "model.onnx")
    versions = {entry.domain or "ai.onnx": entry.version for entry in graph.opset_import}
    # skl2onnx imports the ai.onnx.ml version its converters need, at most the one released with the opset
    assert versions["ai.onnx"] == opset and 1 <= versions["ai.onnx.ml"] <= (2 if opset < 16 else 3)
    assert graph_opsets(tmp_path) == {"model": opset}
    assert validate(pipeline, tmp_path, frame).passed
    np.testing.assert_array_equal(load(tmp_path).predict(frame).to_numpy(), pipeline.predict(frame))


def test_a_pipeline_below_its_steps_lowest_opset_names_the_step(wine, tmp_path):
    frame, _ = wine
    pipeline = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)).fit(frame.iloc[:, :5])
    with pytest.raises(ValueError, match=r"step 'gaussianmixture' \(GaussianMixture\) exports at opset 14"):
        export(pipeline, tmp_path, target_opset=12)
