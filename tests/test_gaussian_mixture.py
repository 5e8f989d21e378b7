"""GaussianMixture against scikit-learn's: identical-init parity, default fits, chunking, errors."""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_iris, load_wine, make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.preprocessing import StandardScaler

from toolkit.mixture import GaussianMixture, _fused_pass

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture(scope="module")
def wine():
    return StandardScaler().fit_transform(load_wine().data)


BUILDS = ["avx512", "avx2"]  # the compiled pass's builds, widest first


def use_pass(name: str, monkeypatch) -> None:
    """Route CPU fits through one build of the compiled pass, or through the torch pass."""
    if name == "torch":
        monkeypatch.setattr(_fused_pass, "kernel", None)
        return
    available = _fused_pass.kernel.instruction_set() if _fused_pass.kernel is not None else "none"
    if available not in BUILDS or BUILDS.index(name) < BUILDS.index(available):
        pytest.skip(f"this CPU does not run the {name} build")
    monkeypatch.setenv(_fused_pass.BUILD_VARIABLE, name)


@pytest.fixture(params=[*BUILDS, "torch"])
def em_pass(request, monkeypatch):
    """Each test with every build of the compiled EM pass this CPU runs, and with the torch pass."""
    use_pass(request.param, monkeypatch)
    return request.param


def test_the_compiled_pass_was_built_and_serves_cpu_fits():
    assert _fused_pass.kernel is not None, (
        "toolkit/mixture/_em_kernel.c is built by `pip install -e .` (needs a C compiler)"
    )
    if not _fused_pass.kernel.supported():
        pytest.skip("this CPU has neither AVX-512 nor AVX2: the torch pass serves every fit")
    assert _fused_pass.applies(torch.device("cpu"))
    assert not _fused_pass.applies(torch.device("cuda"))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n_features", [13, 12, 1])  # odd, even (a duplicated offset in the circulant layout), one
def test_identical_initialisation_gives_sklearns_iterates(wine, covariance_type, n_features, em_pass):
    wine = np.ascontiguousarray(wine[:, :n_features])
    start = SklearnGaussianMixture(3, covariance_type=covariance_type, max_iter=0, random_state=0).fit(wine)
    params = dict(
        covariance_type=covariance_type,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
        max_iter=25,
        tol=0,
    )
    with pytest.warns(Warning, match="did not converge"):
        ref = SklearnGaussianMixture(3, **params).fit(wine)
    with pytest.warns(Warning, match="did not converge"):
        ours = GaussianMixture(3, batch_size=50, **params).fit(wine)  # several chunks per pass
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.precisions_, ref.precisions_, rtol=1e-6, atol=1e-8)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-8)
    assert ours.n_iter_ == ref.n_iter_ == 25
    np.testing.assert_allclose(ours.predict_proba(wine), ref.predict_proba(wine), atol=1e-8)
    np.testing.assert_allclose(ours.score_samples(wine), ref.score_samples(wine), rtol=1e-10)
    assert ours.bic(wine) == pytest.approx(ref.bic(wine), rel=1e-10)
    assert ours.aic(wine) == pytest.approx(ref.aic(wine), rel=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_default_fits_reach_sklearns_likelihood(covariance_type, init_params):
    X, _ = make_blobs(600, n_features=4, centers=4, cluster_std=0.7, random_state=3)
    ref = SklearnGaussianMixture(
        4, covariance_type=covariance_type, init_params=init_params, n_init=2, random_state=0
    ).fit(X)
    ours = GaussianMixture(4, covariance_type=covariance_type, init_params=init_params, n_init=2, random_state=0).fit(X)
    assert ours.score(X) >= ref.score(X) - 1e-3
    assert ours.converged_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_the_same_random_state_gives_sklearns_fit(covariance_type, init_params):
    """A drop-in: the same seed, the same start (scikit-learn's quirks included: the tied start
    of k chosen rows sums X'X over every row, and initial weights are N_k / n unnormalised),
    the same iterations and lower bounds. The case once found wrong was tied + k-means++: scikit-learn
    3 iterations to -7.458, ours 18 to -6.134."""
    X, _ = make_blobs(500, n_features=3, centers=3, cluster_std=[1, 2, 0.5], random_state=1)
    for seed in range(3):
        settings = dict(covariance_type=covariance_type, init_params=init_params, random_state=seed)
        ref = SklearnGaussianMixture(3, **settings).fit(X)
        ours = GaussianMixture(3, **settings).fit(X)
        assert ours.n_iter_ == ref.n_iter_ and ours.converged_ == ref.converged_
        # The first bound of a start from k single rows has variances of reg_covar (1e-6):
        # about -2.5e7, where the expanded quadratic form (one GEMM) keeps 7-8 digits.
        assert ours.lower_bounds_[0] == pytest.approx(ref.lower_bounds_[0], rel=1e-6)
        np.testing.assert_allclose(ours.lower_bounds_[1:], ref.lower_bounds_[1:], rtol=1e-9)
        assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-9)
        np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-7, atol=1e-9)


def test_float32_input_keeps_float32_attributes_as_sklearns():
    X = make_blobs(300, n_features=3, centers=2, random_state=0)[0].astype(np.float32)
    ours = GaussianMixture(2, random_state=0).fit(X)
    ref = SklearnGaussianMixture(2, random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(ours, name).dtype == getattr(ref, name).dtype == np.float32, name
    assert ours.predict_proba(X).dtype == ours.score_samples(X).dtype == np.float32
    assert ours.predict_proba(X.astype(np.float64)).dtype == np.float64
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-4)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize(
    "n_samples, n_features, n_components", [(5000, 16, 8), (3001, 5, 3), (2100, 1, 2), (130, 7, 1)]
)
def test_compiled_pass_gives_the_torch_pass_iterates(
    build, covariance_type, n_samples, n_features, n_components, monkeypatch
):
    # Row counts that are not multiples of the kernel's 128-row tile, split over threads
    # (n >= 2048), and a lower-triangular factor in the first pass (from precisions_init).
    rng = np.random.default_rng(n_features)
    X = rng.normal(size=(n_samples, n_features)) * rng.uniform(0.5, 3, n_features) + 100.0
    start = SklearnGaussianMixture(n_components, covariance_type=covariance_type, max_iter=0, random_state=0).fit(X)
    params = dict(
        covariance_type=covariance_type,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
        max_iter=6,
        tol=0,
    )
    use_pass(build, monkeypatch)
    with pytest.warns(Warning, match="did not converge"):
        compiled = GaussianMixture(n_components, device="cpu", **params).fit(X)
    use_pass("torch", monkeypatch)
    with pytest.warns(Warning, match="did not converge"):
        reference = GaussianMixture(n_components, device="cpu", **params).fit(X)
    np.testing.assert_allclose(compiled.weights_, reference.weights_, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(compiled.means_, reference.means_, rtol=1e-10)
    np.testing.assert_allclose(compiled.covariances_, reference.covariances_, rtol=1e-9, atol=1e-12)
    assert compiled.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-12)


def test_compiled_pass_rejects_inconsistent_buffers():
    kernel = _fused_pass.kernel
    if not kernel.supported():
        pytest.skip("this CPU has neither AVX-512 nor AVX2: the kernel refuses every call")
    d, k = 3, 2
    dp, kp, fp = kernel.layout(d, k, 1)
    X, shift, weight, bias = np.zeros((4, d)), np.zeros(d), np.zeros((k, dp, dp)), np.zeros((k, dp))
    constant, pair, moments = np.zeros(k), np.zeros(1, dtype=np.int64), np.zeros((kp, fp))
    with pytest.raises(ValueError, match="moments has 8 bytes"):
        kernel.pass_statistics(X, shift, weight, bias, constant, pair, pair, np.zeros(1), 4, d, k, False)
    with pytest.raises(ValueError, match=r"pair 0 is \(3, 0\), outside \[0, 3\)"):
        kernel.pass_statistics(X, shift, weight, bias, constant, pair + 3, pair, moments, 4, d, k, False)
    with pytest.raises(ValueError, match="X has 96 bytes, expected 15 float64 values"):
        kernel.pass_statistics(X, shift, weight, bias, constant, pair, pair, moments, 5, d, k, False)
    with pytest.raises(ValueError, match="X has 96 bytes, expected 12 float32 values"):
        kernel.pass_statistics(X, shift, weight, bias, constant, pair, pair, moments, 4, d, k, True)
    with pytest.raises(ValueError, match="instruction_set must be 'auto', 'avx512' or 'avx2', got 'sse'"):
        kernel.pass_statistics(X, shift, weight, bias, constant, pair, pair, moments, 4, d, k, False, "sse")


def test_chunk_size_does_not_change_the_fit(wine):
    whole = GaussianMixture(3, random_state=0, batch_size=10_000).fit(wine)
    chunked = GaussianMixture(3, random_state=0, batch_size=7).fit(wine)
    np.testing.assert_allclose(chunked.means_, whole.means_, rtol=1e-10)
    assert chunked.lower_bound_ == pytest.approx(whole.lower_bound_, rel=1e-12)


def test_float32_fit_is_close_to_float64(em_pass):
    X = StandardScaler().fit_transform(load_iris().data)
    exact = GaussianMixture(3, random_state=0).fit(X)
    fast = GaussianMixture(3, random_state=0, dtype="float32").fit(X)
    assert fast.score(X) == pytest.approx(exact.score(X), abs=1e-3)


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_compiled_pass_reads_float32_rows_without_a_copy(build, covariance_type, monkeypatch):
    use_pass(build, monkeypatch)
    X, _ = make_blobs(3000, n_features=6, centers=4, cluster_std=1.0, random_state=2)
    X32 = X.astype(np.float32)
    assert np.shares_memory(_fused_pass.FusedPass(X32, covariance_type, 4).X, X32)
    start = SklearnGaussianMixture(4, covariance_type=covariance_type, max_iter=0, random_state=0).fit(X32)
    params = dict(
        covariance_type=covariance_type,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
        max_iter=8,
        tol=0,
    )
    with pytest.warns(Warning, match="did not converge"):
        single = GaussianMixture(4, device="cpu", dtype="float32", **params).fit(X32)
    with pytest.warns(Warning, match="did not converge"):
        double = GaussianMixture(4, device="cpu", **params).fit(X32.astype(np.float64))
    # The same float32 values, parameters rounded to float32 between iterations.
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(single.covariances_, double.covariances_, rtol=1e-4, atol=1e-5)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-6)


def test_dataframes_sample_and_fit_predict():
    frame = pd.DataFrame(load_iris().data, columns=load_iris().feature_names)
    model = GaussianMixture(3, random_state=0)
    labels = model.fit_predict(frame)
    np.testing.assert_array_equal(labels, model.predict(frame))
    assert list(model.feature_names_in_) == list(frame.columns)
    X, y = model.sample(500)
    assert X.shape == (500, 4) and set(np.unique(y)) <= {0, 1, 2}
    ref = SklearnGaussianMixture(3, random_state=0).fit(frame)
    np.testing.assert_allclose(model.sample(20)[0], ref.sample(20)[0], rtol=1e-6)


def test_warm_start_continues(wine):
    model = GaussianMixture(3, random_state=0, max_iter=1, tol=0.0, warm_start=True)
    with pytest.warns(Warning, match="did not converge"):
        model.fit(wine)
    first, means = model.lower_bound_, model.means_.copy()
    model.set_params(max_iter=100, tol=1e-3).fit(wine)
    assert model.lower_bound_ > first and not np.allclose(model.means_, means)


def test_degenerate_data():
    rng = np.random.default_rng(0)
    duplicates = np.repeat(rng.normal(size=(5, 2)), 20, axis=0)
    model = GaussianMixture(5, random_state=0).fit(duplicates)  # collapsed components held up by reg_covar
    assert np.all(np.linalg.eigvalsh(model.covariances_) > 0)
    constant = np.c_[rng.normal(size=200), np.full(200, 3.0)]
    assert np.isfinite(GaussianMixture(2, random_state=0).fit(constant).score(constant))
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(5, reg_covar=0.0, random_state=0).fit(duplicates)


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).fit(np.where(X > 2, np.nan, X))
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2).fit(np.where(X > 2, np.inf, X))
    with pytest.raises(ValueError, match="Expected 2D array"):
        GaussianMixture(2).fit(X[:, 0])
    with pytest.raises(ValueError, match="n_components = 60, n_samples = 50"):
        GaussianMixture(60).fit(X)
    with pytest.raises(ValueError, match="'covariance_type' parameter"):
        GaussianMixture(2, covariance_type="banana").fit(X)
    with pytest.raises(ValueError, match=r"'means' should have the shape of \(2, 3\), but got \(3, 3\) \(means_init\)"):
        GaussianMixture(2, means_init=np.zeros((3, 3))).fit(X)
    with pytest.raises(NotFittedError):
        GaussianMixture(2).predict(X)
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.predict(X[:, :2])
    with pytest.raises(TypeError, match=r"non-numeric column\(s\) \['b'\]"):
        GaussianMixture(2).fit(pd.DataFrame({"a": X[:, 0], "b": ["x"] * 50}))


BAD_PRECISIONS = [
    (
        "spherical",
        np.array([1.0, -2.0]),
        r"'spherical precision' should be positive, but precisions_init\[1\] = -2 "
        r"\(component 1\)",
    ),
    (
        "diag",
        np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]),
        r"'diag precision' should be positive, but "
        r"precisions_init\[1, 1\] = 0 \(component 1, feature 1\)",
    ),
    (
        "full",
        np.stack([np.eye(3), np.diag([1.0, -1.0, 1.0])]),
        r"'full precision' should be symmetric, positive-definite, but precisions_init\[1\] \(component 1\) "
        r"is not positive-definite \(smallest eigenvalue -1\)",
    ),
    (
        "full",
        np.stack([np.eye(3), np.eye(3) + np.triu(np.ones((3, 3)), 1)]),
        r"precisions_init\[1\] \(component 1\) "
        r"is not symmetric",
    ),
    (
        "tied",
        np.diag([1.0, 1.0, 0.0]),
        r"'tied precision' should be symmetric, positive-definite, but precisions_init "
        r"is not positive-definite \(smallest eigenvalue 0\)",
    ),
    ("tied", np.eye(2), r"'tied precision' should have the shape of \(3, 3\), but got \(2, 2\) \(precisions_init\)"),
    ("diag", np.full((2, 3), np.nan), r"precisions_init: Input precisions_init contains NaN"),
]


@pytest.mark.parametrize("covariance_type, precisions, message", BAD_PRECISIONS)
def test_precisions_init_is_checked_as_scikit_learn_checks_it(covariance_type, precisions, message):
    """Each bad precision is a ValueError naming precisions_init, the component and the problem,
    with scikit-learn's message in front (scikit-learn fits negative diagonal precisions to NaN
    weights in ours before, and a non-positive-definite matrix raised torch's _LinAlgError)."""
    X = np.random.default_rng(0).normal(size=(50, 3))
    model = GaussianMixture(2, covariance_type=covariance_type, precisions_init=precisions, random_state=0)
    with pytest.raises(ValueError, match=message):
        model.fit(X)


def test_initial_weights_are_checked_in_scikit_learns_words():
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(
        ValueError, match=re.escape("The parameter 'weights' should have the shape of (2,), but got (2, 1)")
    ):
        GaussianMixture(2, weights_init=[[0.5], [0.5]]).fit(X)
    with pytest.raises(
        ValueError, match=re.escape("The parameter 'weights' should be normalized, but got sum(weights) = 0.90000")
    ):
        GaussianMixture(2, weights_init=[0.5, 0.4]).fit(X)
    # scikit-learn's message prints the minimum as "max value"; ours names them the right way round
    with pytest.raises(
        ValueError,
        match=re.escape("in the range [0, 1], but got min value -0.50000, max value 1.50000 (weights_init[0])"),
    ):
        GaussianMixture(2, weights_init=[-0.5, 1.5]).fit(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype, atol", [("float64", 1e-5), ("float32", 1e-4)])
def test_onnx_export_matches_the_estimator(wine, covariance_type, dtype, atol, tmp_path):
    from toolkit.onnx import export, load, validate

    model = GaussianMixture(3, covariance_type=covariance_type, dtype=dtype, random_state=0).fit(wine)
    result = export(model, tmp_path)
    assert [o["name"] for o in result.metadata["graphs"]["model"]["outputs"]] == [
        "label",
        "probabilities",
        "score_samples",
    ]
    report = validate(model, tmp_path, wine)
    assert report.outputs["label"].mismatches == 0
    assert report.outputs["probabilities"].max_abs_error <= atol
    np.testing.assert_array_equal(load(tmp_path).predict(wine), model.predict(wine))


def test_scaler_and_mixture_export_as_one_float64_graph(tmp_path):
    from sklearn.pipeline import make_pipeline

    from toolkit.onnx import export, validate

    frame = load_wine(as_frame=True).data
    pipeline = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(frame)
    export(pipeline, tmp_path)
    report = validate(pipeline, tmp_path, frame)
    assert report.passed and report.outputs["probabilities"].max_abs_error < 1e-10


PEAK_MEMORY_SCRIPT = """
import re, sys
import numpy as np
from toolkit.mixture import GaussianMixture

n, d, k = int(sys.argv[1]), 16, 8
rng = np.random.default_rng(0)
centres = rng.uniform(-10, 10, size=(k, d)).astype(np.float32)
X = rng.standard_normal((n, d), dtype=np.float32)
for start in range(0, n, 1_000_000):
    X[start : start + 1_000_000] += centres[rng.integers(k, size=len(X[start : start + 1_000_000]))]

def status(field):
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current RSS
GaussianMixture(k, dtype="float32", max_iter=3, tol=0, random_state=0).fit(X)
print(status("VmHWM") - before, X.nbytes)
"""


@pytest.mark.heavy
def test_ten_million_rows_fit_within_the_memory_bound():
    """10,000,000 x 16 float32 rows, k = 8 (kmeans init, 3 EM passes, labels): the process's
    peak resident memory grows by less than 2.5 GB beyond X."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_SCRIPT, "10000000"], capture_output=True, text=True, check=True
    )
    peak_above, x_bytes = map(int, result.stdout.split())
    assert x_bytes == 10_000_000 * 16 * 4
    assert peak_above < 2.5e9, f"peak {peak_above / 1e9:.2f} GB above X"
