"""The export protocol seen from outside the package: an estimator written here, not in toolkit/,
exports, validates and is served through ``__onnx_spec__`` alone."""

import asyncio
import json

import httpx
import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from toolkit.onnx import (
    InferenceSpec,
    OutputSpec,
    SupportsOnnxExport,
    ValidationError,
    export,
    load,
    validate,
)


class QuadraticFeatures(torch.nn.Module):
    """X -> ([X, X^2] @ W + b, the features [X, X^2])."""

    def __init__(self, weights: np.ndarray, intercept: float) -> None:
        super().__init__()
        self.register_buffer("weights", torch.from_numpy(weights.astype(np.float32)))
        self.register_buffer("intercept", torch.tensor(intercept, dtype=torch.float32))

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.cat([X, X * X], dim=1)  # (B, 2F)
        return features @ self.weights + self.intercept, features


class QuadraticRegressor(RegressorMixin, TransformerMixin, BaseEstimator):
    """Least squares on the features and their squares; ``transform`` gives those features.

    ``predict_offset`` shifts ``predict`` (not the graph): a model whose export must fail
    validation.
    """

    def __init__(self, predict_offset: float = 0.0):
        self.predict_offset = predict_offset

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        design = np.c_[np.ones(len(X)), X, X**2]
        solution = np.linalg.lstsq(design, y, rcond=None)[0]
        self.intercept_, self.coef_ = float(solution[0]), solution[1:]
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return np.c_[X, X * X]

    def predict(self, X):
        return self.transform(X).astype(np.float64) @ self.coef_ + self.intercept_ + self.predict_offset

    def __onnx_spec__(self) -> InferenceSpec:
        check_is_fitted(self)
        return InferenceSpec(
            module=QuadraticFeatures(self.coef_, self.intercept_).eval(),
            sample_shape=(self.n_features_in_,),
            outputs=[
                OutputSpec("variable", self.predict, 1, tolerance={"atol": 1e-4, "rtol": 1e-4}),
                OutputSpec("features", self.transform, 2),
            ],
            example=np.zeros((2, self.n_features_in_), dtype=np.float32),
        )


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = 1.5 + X @ [1.0, -2.0, 0.5] + (X**2) @ [0.3, 0.0, -0.7] + rng.normal(0, 0.01, 300)
    return X, y


def test_a_class_outside_toolkit_satisfies_the_protocol():
    assert isinstance(QuadraticRegressor(), SupportsOnnxExport)
    assert not isinstance(StandardScaler(), SupportsOnnxExport)


def test_it_exports_and_validates_through_its_own_callables(data, tmp_path):
    X, y = data
    model = QuadraticRegressor().fit(X, y)
    export(model, tmp_path)
    report = validate(model, tmp_path, X)
    assert report.passed and set(report.outputs) == {"variable", "features"}
    assert report.outputs["variable"].max_abs_error < 1e-4
    entry = json.loads((tmp_path / "model.json").read_text())["graphs"]["model"]
    assert [(o["name"], o["method"]) for o in entry["outputs"]] == [("variable", "predict"), ("features", "transform")]
    onnx_model = load(tmp_path)
    np.testing.assert_allclose(onnx_model.predict(X[:5]), model.predict(X[:5]), atol=1e-4)


def test_validation_calls_the_spec_callables_so_a_disagreeing_predict_fails(data, tmp_path):
    X, y = data
    shifted = QuadraticRegressor(predict_offset=0.5).fit(X, y)
    export(shifted, tmp_path)
    with pytest.raises(ValidationError, match=r"variable vs predict: max abs 0\.5"):
        validate(shifted, tmp_path, X)


def test_it_exports_inside_a_pipeline_as_a_step_and_as_the_last_step(data, tmp_path):
    X, y = data
    last = make_pipeline(StandardScaler(), QuadraticRegressor()).fit(X, y)
    export(last, tmp_path / "last")
    assert validate(last, tmp_path / "last", X).passed
    middle = make_pipeline(QuadraticRegressor(), StandardScaler()).fit(X, y)
    export(middle, tmp_path / "middle")
    assert validate(middle, tmp_path / "middle", X, tolerances={"variable": {"atol": 1e-3, "rtol": 1e-4}}).passed


def test_it_is_served_over_the_v2_protocol(data, tmp_path):
    pytest.importorskip("starlette")
    from toolkit.serving import create_app

    X, y = data
    model = QuadraticRegressor().fit(X, y)
    export(model, tmp_path / "quadratic")
    app = create_app(tmp_path)
    request = {"inputs": [{"name": "X", "shape": [4, 3], "datatype": "FP32", "data": X[:4].ravel().tolist()}]}

    async def ask():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            metadata = await client.get("/v2/models/quadratic")
            answer = await client.post("/v2/models/quadratic/infer", json=request)
            return metadata.json(), answer.json()

    metadata, answer = asyncio.run(ask())
    assert [o["name"] for o in metadata["outputs"]] == ["variable", "features"]
    outputs = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in answer["outputs"]}
    np.testing.assert_allclose(outputs["variable"].ravel(), model.predict(X[:4]), atol=1e-4)
    np.testing.assert_allclose(outputs["features"], model.transform(X[:4]), atol=1e-6)
