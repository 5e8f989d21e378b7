"""Recurrent nets export to ONNX's own LSTM / GRU operators and an explicit Scan (Elman): every cell, one or two
directions, stacked, padded, as classifier and regressor, and the captioner's decoding step.
The graphs take any sequence length and batch size whatever the process exported before: the
check runs in a fresh interpreter that exports other models first."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from tests._warnings import SHORT_TRAINING
from toolkit.neural_network import RNNClassifier, RNNRegressor
from toolkit.neural_network._rnn_export import greedy_step_graph
from toolkit.nn.caption import CaptionDecoder
from toolkit.onnx import export, load, validate

pytestmark = SHORT_TRAINING

FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys, tempfile, warnings
    import numpy as np
    import onnx
    warnings.simplefilter("ignore")
    from sklearn.datasets import load_digits
    from toolkit.mixture import GaussianMixture
    from toolkit.neural_network import CNNClassifier, MLPClassifier, RNNClassifier, RNNRegressor
    from toolkit.onnx import export, load

    X, y = load_digits(return_X_y=True)
    X, y = (X[:200] / 16).astype(np.float32), y[:200]
    folder = tempfile.mkdtemp()
    # what a session may have exported before (it changed which strategy torch's exporter took)
    export(CNNClassifier((4,), image_shape=(8, 8), max_epochs=1, random_state=0).fit(X, y), folder + "/cnn")
    export(MLPClassifier((4,), max_epochs=1, random_state=0).fit(X, y), folder + "/mlp")
    export(GaussianMixture(2, random_state=0).fit(X.astype(np.float64)), folder + "/gmm")
    sequences = X.reshape(-1, 8, 8)
    rng = np.random.default_rng(0)
    results = []
    for cell in ("rnn", "lstm", "gru"):
        for bidirectional in (False, True):
            for Model, target in ((RNNClassifier, y), (RNNRegressor, y / 9.0)):
                options = dict(cell=cell, bidirectional=bidirectional, num_layers=2 if bidirectional else 1)
                model = Model(6, max_epochs=1, random_state=0, **options).fit(sequences, target)
                path = f"{folder}/{cell}-{bidirectional}-{Model.__name__}"
                export(model, path)
                ops = {node.op_type for node in onnx.load(path + "/model.onnx").graph.node}
                graph, worst = load(path), 0.0
                for steps in (3, 8, 13):
                    for batch in (1, 5):
                        rows = rng.random((batch, steps, 8)).astype(np.float32)
                        name = "probabilities" if Model is RNNClassifier else "variable"
                        got = graph.run(rows)[name]
                        want = model.predict_proba(rows) if Model is RNNClassifier else model.predict(rows)
                        worst = max(worst, float(np.abs(got.reshape(want.shape) - want).max()))
                results.append({"model": path.rsplit("/", 1)[1], "ops": sorted(ops), "max_error": worst})
    json.dump(results, sys.stdout)
    """
)


def test_every_cell_takes_any_length_and_batch_in_a_fresh_process_that_exported_others_first():
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)
    assert len(results) == 12
    for result in results:
        cell = result["model"].split("-")[0]
        assert {"rnn": "Scan", "lstm": "LSTM", "gru": "GRU"}[cell] in result["ops"], result  # Elman: a Scan
        assert "Loop" not in result["ops"]
        assert result["max_error"] < 1e-4, result


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_padded_sequences_of_every_length_match_in_both_directions(cell, digits, tmp_path):
    """Sequences padded at the end with mask_value: each row's valid length is found in the
    graph and fed to the operators (sequence_lens), so padding changes nothing."""
    X, y = digits
    sequences = X[:300].astype(np.float32).reshape(-1, 8, 8) + 0.1  # no real step is all zeros
    model = RNNClassifier(6, cell=cell, bidirectional=True, num_layers=2, mask_value=0.0, max_epochs=2, random_state=0)
    model.fit(sequences, y[:300])
    export(model, tmp_path)
    lengths = np.random.default_rng(1).integers(1, 12, 40)
    padded = np.zeros((40, 12, 8), dtype=np.float32)
    for row, length in enumerate(lengths):
        padded[row, :length] = sequences[row % len(sequences), np.arange(length) % 8]
    report = validate(model, tmp_path, padded, batch_sizes=(1, 7, 40))
    assert report.passed and report.max_abs_error < 1e-4
    np.testing.assert_allclose(
        load(tmp_path).predict_proba(padded[:5, :6]), model.predict_proba(padded[:5, :6]), atol=1e-5
    )


def test_flat_rows_with_a_sequence_length_export_too(digits, tmp_path):
    X, y = digits
    model = RNNRegressor(6, cell="gru", sequence_length=16, max_epochs=2, random_state=0).fit(X[:300], y[:300] / 9)
    export(model, tmp_path)
    assert validate(model, tmp_path, X[300:400]).passed


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_pipeline_around_a_recurrent_net_exports_as_one_graph(cell, digits, tmp_path):
    """digits_rnn's shape: a scaler, then the recurrent net reading flat rows as sequences."""
    X, y = digits
    model = make_pipeline(
        MinMaxScaler(), RNNClassifier(6, cell=cell, sequence_length=8, bidirectional=True, max_epochs=2, random_state=0)
    ).fit(X[:300] * 16, y[:300])
    export(model, tmp_path)
    report = validate(model, tmp_path, X[300:400] * 16)
    assert report.passed and report.max_abs_error < 1e-4
    np.testing.assert_array_equal(load(tmp_path).predict(X[300:310] * 16), model.predict(X[300:310] * 16))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_caption_step_graph_equals_the_decoders_step(cell):
    torch.manual_seed(3)
    decoder = CaptionDecoder(n_features=3, vocabulary_size=9, embedding_dim=4, hidden_size=5, cell=cell).eval()
    state = decoder.initial_state(torch.randn(6, 3))
    words = torch.tensor([1, 4, 2, 0, 7, 8])
    graph = greedy_step_graph(decoder)
    onnx.checker.check_model(graph, full_check=True)
    assert {node.op_type for node in graph.graph.node} >= {{"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell]}
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {"word": words.numpy(), **{f"state{k}": s.detach().numpy() for k, s in enumerate(state)}}
    got = session.run(None, feed)
    with torch.no_grad():
        scores, want = decoder.step(words, state)
    np.testing.assert_array_equal(got[0], scores.argmax(dim=1).numpy())
    for ours, theirs in zip(got[1:], want):
        np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-6)


def test_the_export_module_builds_graphs_without_torchs_exporter():
    """The recurrent layers are translated, not traced: nothing in the module calls torch.onnx."""
    source = (Path(__file__).parents[1] / "toolkit" / "neural_network" / "_rnn_export.py").read_text()
    assert "torch.onnx" not in source and "torch.export" not in source
