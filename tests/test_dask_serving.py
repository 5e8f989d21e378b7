"""toolkit.serving.dask: batch scoring on a 2-process LocalCluster equals OnnxModel in memory,
one session per worker, no torch or scikit-learn on the workers."""

import os
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from toolkit.neural_network import MLPClassifier
from toolkit.onnx import export
from toolkit.serving import OnnxModel

dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
scoring = pytest.importorskip("toolkit.serving.dask")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    frame = load_breast_cancer(as_frame=True)
    model = make_pipeline(StandardScaler(), MLPClassifier((16,), max_epochs=5, random_state=0, device="cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a short fit is all the test needs
        model.fit(frame.data, frame.target)
    path = tmp_path_factory.mktemp("export") / "cancer"
    export(model, path)
    return path


@pytest.fixture(scope="module")
def client():
    options = {"n_workers": 2, "processes": True, "threads_per_worker": 1, "dashboard_address": ":0"}
    with distributed.LocalCluster(**options) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def rows():
    return load_breast_cancer(as_frame=True).data


# Lambdas, so that cloudpickle sends them by value (a function of this module would be imported
# on the worker by reference, and this module imports torch).
loaded_modules = lambda: sorted(m for m in ("torch", "sklearn", "toolkit.onnx") if m in sys.modules)  # noqa: E731
cached_sessions = lambda: {k[0]: id(v[1].session) for k, v in sys.modules["toolkit.serving.dask"]._sessions.items()}  # noqa: E731
session_threads = lambda: [  # noqa: E731
    (model.session.get_session_options().intra_op_num_threads, sys.modules["toolkit._cpu_budget"].cpu_budget().source)
    for _, model in sys.modules["toolkit.serving.dask"]._sessions.values()
]


def test_scoring_a_dask_dataframe_equals_the_in_memory_model_and_keeps_the_index(client, folder, rows):
    ddf = dd.from_pandas(rows, npartitions=6)
    local = OnnxModel(folder)
    labels = scoring.predict(ddf, folder)
    assert isinstance(labels, dd.Series) and labels.dtype == local.predict(rows).dtype
    pd.testing.assert_series_equal(labels.compute(), local.predict(rows))
    pd.testing.assert_frame_equal(scoring.predict(ddf, folder, "predict_proba").compute(), local.predict_proba(rows))
    everything = scoring.predict(ddf, folder, "run").compute()
    assert list(everything.columns) == ["label", "probabilities[0]", "probabilities[1]"]
    np.testing.assert_array_equal(everything["label"], local.predict(rows).to_numpy())


def test_a_dask_array_is_scored_block_by_block(client, folder, rows):
    X = da.from_array(rows.to_numpy(), chunks=(100, 10))
    local = OnnxModel(folder)
    np.testing.assert_array_equal(scoring.predict(X, folder).compute(), local.predict(rows.to_numpy()))
    proba = scoring.predict(X, folder, "predict_proba")
    assert proba.chunks[1] == (2,)
    np.testing.assert_array_equal(proba.compute(), local.predict_proba(rows.to_numpy()))


def test_each_worker_makes_one_session_and_imports_no_torch_or_sklearn(client, folder, rows):
    ddf = dd.from_pandas(rows, npartitions=8)
    scoring.predict(ddf, folder).compute()
    first = client.run(cached_sessions)
    scoring.predict(ddf, folder, "predict_proba").compute()
    assert client.run(cached_sessions) == first
    assert all(len(sessions) == 1 for sessions in first.values())
    assert client.run(loaded_modules) == {worker: [] for worker in first}


def test_a_workers_sessions_take_its_cpu_budget(client, folder, rows):
    """Dask's nanny gives each worker process OMP_NUM_THREADS=1 (one thread per worker thread):
    its sessions take that budget, not the host's cores (on a host of one CPU, onnxruntime's own
    choice, 0, is that already)."""
    scoring.predict(dd.from_pandas(rows, npartitions=4), folder).compute()
    expected = [(1 if os.cpu_count() > 1 else 0, "OMP_NUM_THREADS=1")]
    assert all(threads == expected for threads in client.run(session_threads).values())


def test_bad_input_is_named(client, folder, rows):
    with pytest.raises(ValueError, match="method must be one of"):
        scoring.predict(dd.from_pandas(rows, npartitions=2), folder, "score")
    with pytest.raises(FileNotFoundError):
        scoring.predict(dd.from_pandas(rows, npartitions=2), folder.parent / "missing")
    renamed = dd.from_pandas(rows.rename(columns={"mean radius": "radius"}), npartitions=2)
    with pytest.raises(ValueError, match="columns do not match"):
        scoring.predict(renamed, folder).compute()
    with pytest.raises(TypeError, match="dask DataFrame or array"):
        scoring.predict(rows, folder)
