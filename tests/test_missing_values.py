"""Pipelines that impute missing values are exported, validated, loaded and served with them:
``model.json`` says which inputs accept NaN, and those inputs (only those) take NaN, JSON null
and empty record fields; infinity stays refused everywhere."""

import asyncio
import json
import warnings

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export, load, validate
from toolkit.onnx._missing_values import accepts_missing_values

NUMERIC, CATEGORICAL = ["age", "income"], ["city"]


@pytest.fixture(scope="module")
def people():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 300).astype(float),
            "income": rng.normal(50, 15, 300),
            "city": rng.choice(["paris", "lyon", "nice"], 300),
        }
    )
    y = ((frame["age"] > 45) ^ (frame["city"] == "nice")).astype(int).to_numpy()
    frame.loc[rng.random(300) < 0.15, "age"] = np.nan
    frame.loc[rng.random(300) < 0.15, "income"] = np.nan
    return frame, y


@pytest.fixture(scope="module")
def imputing(people, tmp_path_factory):
    """The Pipeline a data scientist writes for such data, fitted and exported."""
    frame, y = people
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_pipeline(prep, MLPClassifier((16,), max_epochs=30, random_state=0)).fit(frame, y)
    folder = tmp_path_factory.mktemp("imputing") / "people"
    export(model, folder)
    return model, folder


def test_model_json_says_which_inputs_accept_missing_values(imputing):
    _, folder = imputing
    inputs = json.loads((folder / "model.json").read_text())["graphs"]["model"]["inputs"]
    assert {spec["name"]: spec["allow_nan"] for spec in inputs} == {"age": True, "income": True, "city": False}


def test_the_rule_follows_each_value_through_its_steps():
    imputer, scaler, net = SimpleImputer(), StandardScaler(), MLPClassifier()
    assert accepts_missing_values([make_pipeline(imputer, scaler), net])  # filled before the net
    assert not accepts_missing_values([scaler, net])  # a scaler passes NaN on; the net refuses it
    assert accepts_missing_values(["drop", net])  # a dropped column is never read
    assert not accepts_missing_values(["passthrough", net])


def test_load_predicts_on_rows_with_missing_values_as_the_pipeline_does(imputing, people):
    model, folder = imputing
    frame, _ = people
    rows = frame[frame.isna().any(axis=1)].iloc[:20]
    assert len(rows) == 20
    onnx = load(folder)
    np.testing.assert_array_equal(np.asarray(onnx.predict(rows)), model.predict(rows))
    np.testing.assert_allclose(np.asarray(onnx.predict_proba(rows)), model.predict_proba(rows), atol=1e-5)
    infinite = rows.assign(income=np.inf)
    with pytest.raises(ValueError, match="input 'income' contains infinity"):
        onnx.predict(infinite)
    with pytest.raises((TypeError, ValueError), match="city"):
        onnx.predict(rows.assign(city=None))


def test_validation_adds_rows_with_missing_values_and_compares_them(imputing, people):
    model, folder = imputing
    frame, _ = people
    complete = frame.dropna()
    report = validate(model, folder, complete)
    assert report.passed and report.missing_value_rows == 16 and report.n_rows == len(complete) + 16
    assert json.loads((folder / "model.json").read_text())["validation"]["missing_value_rows"] == 16


def test_an_export_that_does_not_handle_missing_values_fails_validation_on_them(imputing, people, tmp_path):
    """The claim is checked: a model.json that says an input takes NaN while the graph does not
    impute it gives NaN outputs, which validation counts as failures (NaN is no match)."""
    frame, y = people
    complete = frame.dropna()
    prep = ColumnTransformer([("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), CATEGORICAL)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_pipeline(prep, MLPClassifier((8,), max_epochs=5, random_state=0)).fit(complete, y[complete.index])
    export(model, tmp_path)
    metadata = json.loads((tmp_path / "model.json").read_text())
    assert not any(spec["allow_nan"] for spec in metadata["graphs"]["model"]["inputs"])
    for spec in metadata["graphs"]["model"]["inputs"][:2]:
        spec["allow_nan"] = True  # a false claim
    (tmp_path / "model.json").write_text(json.dumps(metadata))
    with pytest.raises(Exception, match="(?s)disagrees|NaN|Input contains"):
        validate(model, tmp_path, complete)


def test_inputs_that_do_not_accept_missing_values_keep_their_error(imputing, people, tmp_path):
    frame, y = people
    complete = frame.dropna()
    prep = ColumnTransformer([("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), CATEGORICAL)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_pipeline(prep, MLPClassifier((8,), max_epochs=5, random_state=0)).fit(complete, y[complete.index])
    export(model, tmp_path)
    with pytest.raises(ValueError, match="input 'age' contains NaN or infinity"):
        load(tmp_path).predict(frame[frame["age"].isna()].iloc[:3])


def test_the_server_takes_null_and_nan_where_the_input_accepts_them(imputing, people):
    from toolkit.serving import create_app

    model, folder = imputing
    frame, _ = people
    rows = frame[frame.isna().any(axis=1)].iloc[:4]
    app = create_app(folder.parent)

    def column(name, datatype="FP32"):
        values = [None if pd.isna(v) else (v if datatype == "BYTES" else float(v)) for v in rows[name]]
        return {"name": name, "shape": [len(rows), 1], "datatype": datatype, "data": values}

    infer = {"inputs": [column("age"), column("income"), column("city", "BYTES")]}
    records = {"records": [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict("records")]}
    binary = np.asarray(rows[["age"]], dtype=np.float32)
    binary_request = {
        "inputs": [
            {"name": "age", "shape": [len(rows), 1], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
            column("income"),
            column("city", "BYTES"),
        ]
    }
    header = json.dumps(binary_request).encode()
    infinite = {"inputs": [column("age"), {**column("income"), "data": [1e39] * len(rows)}, column("city", "BYTES")]}
    no_city = {"records": [{**records["records"][0], "city": None}]}

    async def ask():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            url = "/v2/models/people"
            return (
                await client.post(f"{url}/infer", json=infer),
                await client.post(f"{url}/predict", json=records),
                await client.post(
                    f"{url}/infer",
                    content=header + binary.tobytes(),
                    headers={"Inference-Header-Content-Length": str(len(header))},
                ),
                await client.post(f"{url}/infer", json=infinite),
                await client.post(f"{url}/predict", json=no_city),
            )

    by_infer, by_records, by_binary, too_large, missing_city = asyncio.run(ask())
    expected = model.predict(rows).tolist()
    assert by_infer.status_code == 200, by_infer.text
    assert next(o for o in by_infer.json()["outputs"] if o["name"] == "label")["data"] == expected
    assert by_records.status_code == 200 and by_records.json()["outputs"]["label"] == expected
    assert by_binary.status_code == 200, by_binary.text
    assert next(o for o in by_binary.json()["outputs"] if o["name"] == "label")["data"] == expected
    assert too_large.status_code == 400 and "overflows FP32" in too_large.json()["error"]
    assert missing_city.status_code == 400 and missing_city.json()["error"].endswith("missing values: city")
