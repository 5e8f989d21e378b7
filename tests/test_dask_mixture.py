"""GaussianMixture on dask arrays and DataFrames, on a 2-process LocalCluster: the same fit as
in memory, lazily evaluated predictions, memory limits below X's size, clear errors."""

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from toolkit._dask import ClusterLost
from toolkit.mixture import GaussianMixture

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def local_cluster(**options):
    return distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0", **options
    )


@pytest.fixture(scope="module")
def client():
    with local_cluster() as cluster, distributed.Client(cluster) as client:
        yield client


def overlapping_blobs(n=30_000, d=4, seed=0):
    """Three overlapping Gaussian clusters: EM needs a few dozen iterations."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.2, (3, d))
    labels = rng.integers(0, 3, n)
    return centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.6, 1.4, (3, d))[labels]


def starting_point(X, covariance_type):
    """Initial parameters from a 2-iteration fit on the first rows, as the *_init arguments."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = GaussianMixture(3, covariance_type=covariance_type, max_iter=2, random_state=0).fit(X[:2000])
    return {"weights_init": start.weights_, "means_init": start.means_, "precisions_init": start.precisions_}


def assert_same_fit(a, b, rtol=1e-8):
    assert a.n_iter_ == b.n_iter_ and a.converged_ == b.converged_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=rtol, atol=rtol, err_msg=name)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=rtol)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_on_a_dask_array_equals_the_in_memory_fit(client, covariance_type):
    X = overlapping_blobs()
    options = {"covariance_type": covariance_type, "tol": 1e-6, "max_iter": 300, **starting_point(X, covariance_type)}
    in_memory = GaussianMixture(3, **options).fit(X)
    on_cluster = GaussianMixture(3, **options).fit(da.from_array(X, chunks=(4_000, 2)))  # columns split too
    assert in_memory.n_iter_ > 10
    assert_same_fit(in_memory, on_cluster)


def test_fit_on_a_dask_dataframe_keeps_feature_names_and_predicts_lazily(client):
    frame = pd.DataFrame(overlapping_blobs(), columns=["a", "b", "c", "d"])
    options = {"tol": 1e-6, "max_iter": 500, **starting_point(frame.to_numpy(), "full")}
    in_memory = GaussianMixture(3, **options).fit(frame)
    ddf = dd.from_pandas(frame, npartitions=5)
    on_cluster = GaussianMixture(3, **options).fit(ddf)
    assert_same_fit(in_memory, on_cluster)
    assert list(on_cluster.feature_names_in_) == ["a", "b", "c", "d"]

    labels, posteriors, log_density = (
        on_cluster.predict(ddf),
        on_cluster.predict_proba(ddf),
        on_cluster.score_samples(ddf),
    )
    assert all(isinstance(out, da.Array) for out in (labels, posteriors, log_density))
    np.testing.assert_array_equal(labels.compute(), in_memory.predict(frame))
    np.testing.assert_allclose(posteriors.compute(), in_memory.predict_proba(frame), atol=1e-10)
    np.testing.assert_allclose(log_density.compute(), in_memory.score_samples(frame), rtol=1e-10)
    assert on_cluster.score(ddf) == pytest.approx(in_memory.score(frame), rel=1e-12)
    fitted_labels = GaussianMixture(3, **options).fit_predict(ddf)
    np.testing.assert_array_equal(fitted_labels.compute(), in_memory.predict(frame))


def test_data_driven_initialisation_from_a_sample_reaches_the_in_memory_optimum(client):
    X = overlapping_blobs(n=60_000)
    in_memory = GaussianMixture(3, random_state=0, n_init=2).fit(X)
    on_cluster = GaussianMixture(3, random_state=0, n_init=2).fit(da.from_array(X, chunks=10_000))
    assert on_cluster.lower_bound_ == pytest.approx(in_memory.lower_bound_, abs=1e-3)


# A process's peak resident memory in bytes (VmHWM: reset at exec, unlike ru_maxrss). A lambda,
# so that cloudpickle sends it by value: a worker unpickling a function of this module by
# reference would import the module, and with it torch.
peak_memory = lambda: next(  # noqa: E731
    int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")
)


def test_an_x_larger_than_each_workers_memory_limit_is_fitted_without_torch_on_the_workers():
    limit = 192 * 2**20
    X = da.random.default_rng(0).normal(size=(4_000_000, 8), chunks=(62_500, 8))  # 256 MB, made per block
    assert X.nbytes > limit
    options = {"weights_init": [0.5, 0.5], "means_init": [[-1] * 8, [1] * 8], "precisions_init": [np.eye(8)] * 2}
    options |= {"max_iter": 4, "tol": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with local_cluster(memory_limit=limit) as cluster, distributed.Client(cluster) as client:
            on_cluster = GaussianMixture(2, **options).fit(X)
            peaks = client.run(peak_memory)
            torch_loaded = client.run(lambda: "torch" in sys.modules)
        in_memory = GaussianMixture(2, **options).fit(X.compute())
    assert_same_fit(in_memory, on_cluster)
    assert len(peaks) == 2 and max(peaks.values()) < 0.8 * limit  # below the pause threshold, let alone the limit
    assert not any(torch_loaded.values())


def test_nan_in_one_block_is_named(client):
    X = overlapping_blobs(n=10_000)
    X[7_321, 2] = np.nan
    with pytest.raises(ValueError, match=r"block 3 \(rows 6000 to 7999\), first at row 7321"):
        GaussianMixture(3).fit(da.from_array(X, chunks=(2_000, 4)))


def test_unknown_chunk_sizes_non_numeric_columns_and_wrong_shapes_are_refused(client):
    frame = pd.DataFrame(overlapping_blobs(n=1_000), columns=list("abcd"))
    ddf = dd.from_pandas(frame, npartitions=2)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        GaussianMixture(2).fit(ddf.values)
    with pytest.raises(TypeError, match=r"non-numeric column\(s\) \['label'\]"):
        GaussianMixture(2).fit(ddf.assign(label="x"))
    with pytest.raises(ValueError, match="Expected a 2-D dask array"):
        GaussianMixture(2).fit(da.zeros(100, chunks=10))
    with pytest.raises(TypeError, match="must hold numbers"):
        GaussianMixture(2).fit(da.from_array(np.array([["a", "b"]] * 4)))
    fitted = GaussianMixture(2, random_state=0).fit(ddf)
    with pytest.raises(ValueError, match="feature names"):
        fitted.predict(ddf.rename(columns={"a": "z"}))


def test_a_cluster_lost_mid_fit_raises_and_leaves_the_estimator_as_it_was(monkeypatch):
    from toolkit.mixture._dask_em import DaskRows

    X = overlapping_blobs(n=10_000)
    fitted = GaussianMixture(3, random_state=0).fit(X)
    before = (fitted.means_.copy(), fitted.predict(X))
    cluster = local_cluster()
    e_step = DaskRows.e_step

    def closing_after_two_iterations(self, model):
        run, context = e_step(self, model)
        calls = []

        def iteration():
            calls.append(1)
            if len(calls) == 3:
                cluster.close()
            return run()

        return iteration, context

    monkeypatch.setattr(DaskRows, "e_step", closing_after_two_iterations)
    with distributed.Client(cluster):
        with pytest.raises(ClusterLost, match="EM iteration 3"):
            fitted.set_params(tol=0.0, max_iter=50).fit(da.from_array(X, chunks=2_000))
    np.testing.assert_array_equal(fitted.means_, before[0])
    np.testing.assert_array_equal(fitted.predict(X), before[1])


def test_a_client_without_the_compiled_kernel_fits_by_the_torch_pass_on_the_workers(client, monkeypatch):
    from toolkit.mixture import _fused_pass, _kernel_pass

    monkeypatch.setattr(_kernel_pass, "kernel", None)
    monkeypatch.setattr(_fused_pass, "kernel", None)
    X = overlapping_blobs(n=12_000)
    options = {"tol": 1e-6, "max_iter": 300, **starting_point(X, "diag"), "covariance_type": "diag"}
    in_memory = GaussianMixture(3, **options).fit(X)
    on_cluster = GaussianMixture(3, **options).fit(da.from_array(X, chunks=(3_000, 4)))
    assert_same_fit(in_memory, on_cluster)
