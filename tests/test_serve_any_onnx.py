"""Graphs made elsewhere (skl2onnx, ``torch.onnx.export``) served without a model.json: a folder
of ``model.onnx``, Triton's ``<model>/<n>/model.onnx`` versions, and one ``.onnx`` file."""

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
import tritonclient.http as triton_http
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests._server import start_server, stop_server
from toolkit.serving import OnnxModel

IRIS = load_iris().data.astype(np.float32)


def torch_graph(seed: int) -> bytes:
    """A small torch net exported by ``torch.onnx.export`` itself, batch axis free."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net,
            (torch.zeros(2, 4),),
            input_names=["features"],
            output_names=["scores"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
        )
    program.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """A repository of graphs made elsewhere: skl2onnx's classifier (ZipMap probabilities), a
    torch net in two Triton versions (beside a config.pbtxt), and a loose .onnx file."""
    root = tmp_path_factory.mktemp("repository")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(IRIS, load_iris().target)
    (root / "iris_skl2onnx").mkdir()
    (root / "iris_skl2onnx" / "model.onnx").write_bytes(to_onnx(classifier, IRIS[:1]).SerializeToString())
    for version in (1, 2):
        (root / "iris_torch" / str(version)).mkdir(parents=True)
        (root / "iris_torch" / str(version) / "model.onnx").write_bytes(torch_graph(version))
    (root / "iris_torch" / "config.pbtxt").write_text('name: "iris_torch"\nplatform: "onnxruntime_onnx"\n')
    loose = tmp_path_factory.mktemp("loose") / "iris_scores.onnx"
    loose.write_bytes(torch_graph(3))
    return root, loose


def in_process(path, feed: dict) -> dict:
    """onnxruntime's answers in this process: what a served graph must equal."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def infer(client, model: str, rows: np.ndarray, **options) -> dict:
    body = {"inputs": [{"name": options.pop("input", "X"), "shape": list(rows.shape), "datatype": "FP32"}]}
    body["inputs"][0]["data"] = rows.reshape(-1).tolist()
    body |= options
    return client.post(f"/v2/models/{model}/infer", json=body)


def test_onnx_model_reads_a_graph_made_elsewhere_from_a_folder_or_a_file(graphs):
    root, loose = graphs
    skl = OnnxModel(root / "iris_skl2onnx")
    assert skl.estimator_class is None and "a graph made elsewhere" in repr(skl)
    assert skl.inputs == [{"name": "X", "dtype": "float32", "shape": [None, 4], "allow_nan": True}]
    assert list(skl.outputs) == ["output_label"]  # the ZipMap is no tensor
    assert skl.entry["other_outputs"] == {"output_probability": "seq(map(int64,tensor(float)))"}
    expected = in_process(root / "iris_skl2onnx" / "model.onnx", {"X": IRIS[:5]})
    np.testing.assert_array_equal(skl.run(IRIS[:5])["output_label"], expected["output_label"])
    with pytest.raises(ValueError, match=r"input 'X' has shape \[5, 3\]; the model expects \[-1, 4\]"):
        skl.run(IRIS[:5, :3])
    alone = OnnxModel(loose)
    assert alone.inputs[0]["name"] == "features" and list(alone.outputs) == ["scores"]
    np.testing.assert_array_equal(alone.run(IRIS[:7])["scores"], in_process(loose, {"features": IRIS[:7]})["scores"])
    with pytest.raises(FileNotFoundError, match="neither a toolkit export folder nor a folder of model.onnx"):
        OnnxModel(root)


def test_graphs_made_elsewhere_are_served_and_answer_as_onnxruntime_in_process(graphs, tmp_path):
    root, _ = graphs
    process, client = start_server(root, tmp_path / "serve.log", "--quiet")
    try:
        metadata = client.get("/v2/models/iris_skl2onnx").json()
        assert metadata["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
        assert metadata["outputs"] == [{"name": "output_label", "datatype": "INT64", "shape": [-1]}]
        assert metadata["parameters"]["estimator"] is None
        answer = infer(client, "iris_skl2onnx", IRIS[:9]).json()
        expected = in_process(root / "iris_skl2onnx" / "model.onnx", {"X": IRIS[:9]})["output_label"]
        assert answer["outputs"][0]["data"] == expected.tolist()
        refused = infer(client, "iris_skl2onnx", IRIS[:2], outputs=[{"name": "output_probability"}])
        assert refused.status_code == 400
        assert "'output_probability' is a seq(map(int64,tensor(float)))" in refused.json()["error"]
        wrong = infer(client, "iris_skl2onnx", IRIS[:2, :3])
        assert wrong.status_code == 400 and "expects [-1, 4]" in wrong.json()["error"], wrong.text

        assert client.get("/v2/models/iris_torch").json()["versions"] == ["1", "2"]
        for version in ("1", "2"):
            got = infer(client, f"iris_torch/versions/{version}", IRIS[:6], input="features").json()
            scores = in_process(root / "iris_torch" / version / "model.onnx", {"features": IRIS[:6]})["scores"]
            np.testing.assert_array_equal(np.float32(got["outputs"][0]["data"]).reshape(6, 3), scores)
        triton = triton_http.InferenceServerClient(str(client.base_url).split("//")[1])
        features = triton_http.InferInput("features", [3, 4], "FP32")
        features.set_data_from_numpy(IRIS[10:13])
        result = triton.infer("iris_torch", [features]).as_numpy("scores")
        np.testing.assert_array_equal(
            result, in_process(root / "iris_torch" / "2" / "model.onnx", {"features": IRIS[10:13]})["scores"]
        )
    finally:
        stop_server(process, client)


def test_toolkit_serve_serves_one_onnx_file_by_its_name(graphs, tmp_path):
    _, loose = graphs
    process, client = start_server(loose, tmp_path / "serve.log")
    try:
        index = client.post("/v2/repository/index").json()
        assert [(entry["name"], entry["state"]) for entry in index] == [("iris_scores", "READY")]
        got = infer(client, "iris_scores", IRIS[:4], input="features").json()
        expected = in_process(loose, {"features": IRIS[:4]})["scores"]
        np.testing.assert_array_equal(np.float32(got["outputs"][0]["data"]).reshape(4, 3), expected)
    finally:
        stop_server(process, client)
    assert "iris_scores: features FP32 [-1, 4] -> scores FP32 [-1, 3]" in (tmp_path / "serve.log").read_text()


def test_one_folder_is_served_alone_by_its_name_or_the_one_given(graphs, capsys):
    """As KServe mounts one model's folder and passes the InferenceService's name."""
    from toolkit.cli import main
    from toolkit.serving._repository import ModelRepository

    root, _ = graphs
    assert list(ModelRepository(root / "iris_skl2onnx").models) == ["iris_skl2onnx"]
    versions = ModelRepository(root / "iris_torch", model_name="flowers")  # a folder of versions
    assert list(versions.models) == ["flowers"] and versions.models["flowers"].versions == ["1", "2"]
    expected = in_process(root / "iris_torch" / "2" / "model.onnx", {"features": IRIS[:3]})
    np.testing.assert_array_equal(versions.get("flowers").model.run(IRIS[:3])["scores"], expected["scores"])
    with pytest.raises(ValueError, match="a model name is for one model served alone"):
        ModelRepository(root, model_name="flowers")
    assert main(["serve", str(root), "--model-name", "flowers"]) == 2
    assert "is a folder of models, each served by its folder's name" in capsys.readouterr().err
