"""``export(..., precision="int8" | "float16")``: the nets' graphs made by onnxruntime's tools,
validated against the float32 estimator with what they cost, refused for the statistical
families, and served side by side with their float32 graph."""

import json
import warnings

import numpy as np
import onnx
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tests._estimators import SMALL
from tests._server import start_server, stop_server
from tests._warnings import SHORT_TRAINING
from toolkit.neural_network import CNNClassifier, MLPClassifier, MLPRegressor
from toolkit.onnx import ValidationError, export, load, validate
from toolkit.onnx._precision import MIN_QUANTIZED_WEIGHTS

pytestmark = SHORT_TRAINING


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split((X / 16).astype(np.float32), y, random_state=0)


@pytest.fixture(scope="module")
def wide_mlp(digits):
    X, _, y, _ = digits
    return MLPClassifier((512, 512), max_epochs=4, random_state=0).fit(X, y)


def graph_ops(path) -> set[str]:
    return {node.op_type for node in onnx.load(path).graph.node}


def test_int8_quantizes_the_large_matrix_products_and_reports_its_cost(wide_mlp, digits, tmp_path):
    _, X_test, _, y_test = digits
    export(wide_mlp, tmp_path / "float32")
    result = export(wide_mlp, tmp_path / "int8", precision="int8")
    reduction = result.metadata["graphs"]["model"]["reduction"]
    # 64 x 512 and 512 x 512 are quantized; the 512 x 10 output layer is too small to gain
    assert len(reduction["quantized_nodes"]) == 2 and reduction["calibration_rows"] is None
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= graph_ops(tmp_path / "int8" / "model.onnx")
    size = (tmp_path / "int8" / "model.onnx").stat().st_size / (tmp_path / "float32" / "model.onnx").stat().st_size
    assert size < 0.4
    report = validate(wide_mlp, tmp_path / "int8", X_test, y_test)
    assert report.passed and report.precision == "int8"
    label = report.outputs["label"]
    assert label.agreement >= 0.99 and label.mismatches == round((1 - label.agreement) * len(X_test))
    proba = report.outputs["probabilities"]
    assert 0 < proba.mean_abs_error <= proba.max_abs_error < 0.1  # int8 moved them, a little
    assert report.score["metric"] == "accuracy" and report.score["drop"] <= 0.005
    assert report.score["estimator"] == pytest.approx(wide_mlp.score(X_test, y_test))
    recorded = json.loads((tmp_path / "int8" / "model.json").read_text())
    assert recorded["precision"] == "int8"
    assert recorded["accuracy_budget"] == {"label_agreement": 0.99, "score_drop": 0.005, "relative_error": 0.02}
    assert recorded["validation"]["score"] == report.score and recorded["validation"]["passed"]
    assert load(tmp_path / "int8").precision == "int8" and load(tmp_path / "float32").precision == "float32"


def test_int8_at_the_lowest_opset_of_its_family(wide_mlp, digits, tmp_path):
    _, X_test, _, y_test = digits
    result = export(wide_mlp, tmp_path, precision="int8", target_opset=14)
    assert result.metadata["graphs"]["model"]["opset"]["ai.onnx"] == 14
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= graph_ops(tmp_path / "model.onnx")
    assert validate(wide_mlp, tmp_path, X_test, y_test).passed


def test_static_int8_quantizes_a_large_convolution_with_calibration_rows(digits, tmp_path):
    X, X_test, y, y_test = digits
    images = X.reshape(-1, 8, 8)
    model = CNNClassifier((64, 128), max_epochs=3, random_state=0).fit(images, y)
    result = export(model, tmp_path, precision="int8", calibration=images[:256])
    reduction = result.metadata["graphs"]["model"]["reduction"]
    assert reduction["calibration_rows"] == 256 and "convolutions static QDQ" in reduction["method"]
    graph = onnx.load(tmp_path / "model.onnx")
    convs = [node for node in graph.graph.node if node.op_type == "Conv"]
    # the 128 x 64 x 3 x 3 convolution is large enough, and the chain is quantized whole: both convolutions;
    # the 128 x 10 output layer is not
    assert reduction["quantized_nodes"] == [node.name for node in convs] and len(convs) == 2
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.graph.node}
    report = validate(model, tmp_path, X_test.reshape(-1, 8, 8), y_test)
    assert report.passed, report
    assert report.outputs["label"].agreement >= 0.99


@pytest.mark.parametrize("name", ["MLPRegressor", "CNNClassifier", "RNNClassifier", "VAE", "CaptionGenerator"])
def test_float16_nets_keep_float32_inputs_and_outputs_and_validate(name, tmp_path):
    small = SMALL[name]
    model = small.make()
    data = small.fit_data()
    model.fit(*data)
    result = export(model, tmp_path, precision="float16")
    for graph, entry in result.metadata["graphs"].items():
        proto = onnx.load(tmp_path / entry["file"])
        assert onnx.TensorProto.FLOAT16 in {init.data_type for init in proto.graph.initializer}
        assert all(
            value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT16
            for value in [*proto.graph.input, *proto.graph.output]
        )
        assert entry["precision"] == "float16"
        assert all(o["tolerance"] == {"atol": 1e-2, "rtol": 1e-2} for o in entry["outputs"] if not o["exact"])
    report = validate(model, tmp_path, small.rows(model, data))
    assert report.passed, report


def test_int8_vae_reports_each_graphs_values_against_the_relative_error_budget(digits, tmp_path):
    """A VAE's graphs have no labels: each value output is judged by its mean difference relative
    to the estimator's mean absolute value (its 512-wide layers are quantized, in both graphs)."""
    from toolkit.generative import VAE

    X, X_test, _, _ = digits
    model = VAE(2, hidden=(512,), max_epochs=5, random_state=0).fit(X)
    result = export(model, tmp_path, precision="int8")
    assert all(entry["reduction"]["quantized_nodes"] for entry in result.metadata["graphs"].values())
    report = validate(model, tmp_path, X_test, raise_on_failure=False)
    assert set(report.outputs) == {"encoder.mean", "encoder.log_var", "decoder.reconstruction"}
    for check in report.outputs.values():
        assert 0 < check.relative_error and check.passed == (check.relative_error <= 0.02)
    assert report.passed == all(check.relative_error <= 0.02 for check in report.outputs.values())


@pytest.mark.parametrize("name", ["RNNClassifier", "CaptionGenerator"])
def test_int8_of_a_net_with_no_large_product_is_its_float32_graph_and_says_so(name, tmp_path):
    small = SMALL[name]
    data = small.fit_data()
    model = small.make().fit(*data)
    with pytest.warns(UserWarning, match=f"no MatMul / Gemm node has {MIN_QUANTIZED_WEIGHTS} weights"):
        result = export(model, tmp_path, precision="int8")
    assert all(entry["reduction"]["quantized_nodes"] == [] for entry in result.metadata["graphs"].values())
    assert validate(model, tmp_path, small.rows(model, data)).passed


@pytest.mark.parametrize(
    ("name", "precision", "reason"),
    [
        ("GaussianMixture", "int8", "differences of log-densities"),
        ("ARForecaster", "float16", "rounding grows over the horizon"),
        ("DDPM", "int8", "runs the denoiser once per step"),
    ],
)
def test_the_statistical_families_refuse_reduced_precision_saying_why(name, precision, reason, tmp_path):
    small = SMALL[name]
    model = small.make().fit(*small.fit_data())
    with pytest.raises(ValueError, match=f"{name} cannot be exported at {precision}: .*{reason}"):
        export(model, tmp_path, precision=precision)
    assert not any(tmp_path.iterdir())


def test_bad_precision_options_are_refused(wide_mlp, digits, tmp_path):
    X = digits[0]
    with pytest.raises(ValueError, match=r"precision must be one of \['float32', 'int8', 'float16'\]"):
        export(wide_mlp, tmp_path, precision="int4")
    with pytest.raises(ValueError, match="calibration rows are for static int8"):
        export(wide_mlp, tmp_path, precision="float16", calibration=X[:10])
    with pytest.raises(ValueError, match="calibration has no rows"):
        export(wide_mlp, tmp_path, precision="int8", calibration=X[:0])
    with pytest.raises(ValueError, match=r"unknown keys \['agreement'\]"):
        export(wide_mlp, tmp_path, precision="int8", accuracy_budget={"agreement": 0.9})
    with pytest.raises(ValueError, match="fractions between 0 and 1"):
        export(wide_mlp, tmp_path, precision="int8", accuracy_budget={"score_drop": 5})


def test_a_reduced_export_over_its_budget_is_reported_as_failing(digits, tmp_path):
    X, X_test, _, _ = digits
    model = MLPRegressor((512, 512), max_epochs=3, random_state=0).fit(X, X[:, 20])
    export(model, tmp_path, precision="int8", accuracy_budget={"relative_error": 0.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = validate(model, tmp_path, X_test, raise_on_failure=False)
    assert not report.passed
    check = report.outputs["variable"]  # a regressor's output, in skl2onnx's name
    assert check.relative_error > 0 and not check.passed
    assert json.loads((tmp_path / "model.json").read_text())["validation"]["passed"] is False
    with pytest.raises(ValidationError, match="int8 against the float32 estimator"):
        validate(model, tmp_path, X_test)
    # the same export judged by a looser budget passes
    assert validate(model, tmp_path, X_test, accuracy_budget={"relative_error": 0.05}).passed


def test_float32_and_int8_served_side_by_side_as_two_versions(wide_mlp, digits, tmp_path):
    X_test = digits[1]
    export(wide_mlp, tmp_path / "digits" / "1")
    export(wide_mlp, tmp_path / "digits" / "2", precision="int8")
    process, client = start_server(tmp_path, tmp_path / "serve.log", "--quiet")
    try:
        answers = {}
        for version, precision in (("1", "float32"), ("2", "int8")):
            metadata = client.get(f"/v2/models/digits/versions/{version}").json()
            assert metadata["parameters"]["precision"] == precision
            body = {
                "inputs": [{"name": "X", "shape": [20, 64], "datatype": "FP32", "data": X_test[:20].ravel().tolist()}]
            }
            answer = client.post(f"/v2/models/digits/versions/{version}/infer", json=body).json()
            answers[version] = {o["name"]: np.asarray(o["data"]) for o in answer["outputs"]}
        np.testing.assert_array_equal(answers["1"]["label"], wide_mlp.predict(X_test[:20]))
        assert (answers["2"]["label"] == answers["1"]["label"]).mean() >= 0.95
        assert 0 < np.abs(answers["2"]["probabilities"] - answers["1"]["probabilities"]).max() < 0.1
    finally:
        stop_server(process, client)


def test_a_pipeline_with_column_inputs_exports_int8_calibrated_on_its_dataframe(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_wine
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = load_wine(return_X_y=True, as_frame=True)
    frame = X.iloc[:, :6].copy()
    frame["region"] = np.where(X["alcohol"] > 13, "north", "south")
    prepare = ColumnTransformer(
        [("numbers", StandardScaler(), list(frame.columns[:6])), ("region", OneHotEncoder(), ["region"])]
    )
    pipeline = make_pipeline(prepare, MLPClassifier((512, 512), max_epochs=10, random_state=0)).fit(frame, y)
    result = export(pipeline, tmp_path, precision="int8", calibration=frame)
    reduction = result.metadata["graphs"]["model"]["reduction"]
    assert len(reduction["quantized_nodes"]) == 1 and reduction["calibration_rows"] == len(frame)  # the 512 x 512
    assert [spec["name"] for spec in load(tmp_path).inputs] == list(frame.columns)
    report = validate(pipeline, tmp_path, frame, y)
    assert report.passed and report.outputs["label"].agreement >= 0.99, report
