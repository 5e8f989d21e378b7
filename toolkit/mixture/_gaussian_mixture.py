"""``GaussianMixture``: scikit-learn's Gaussian mixture, fitted by EM in torch, in chunks."""

from __future__ import annotations

import contextlib
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from toolkit._dask import is_dask_collection
from toolkit._export_spec import CONVERTED_MIN_OPSET, InferenceSpec, OutputSpec
from toolkit._fit_state import fitting
from toolkit._input_checks import reject_non_numeric_columns
from toolkit._param_validation import Interval, StrOptions
from toolkit._progress import progress_bar
from toolkit._training import resolve_device
from toolkit.mixture import _fused_pass
from toolkit.mixture._gaussian_math import (
    MomentFeatures,
    estimate_parameters,
    mixture_density,
    n_parameters,
    precision_cholesky_from_covariances,
    precision_cholesky_from_precisions,
    precisions_from_cholesky,
    sample_mixture,
    torch_pass,
)
from toolkit.mixture._initial_parameters import (
    check_means,
    check_precisions,
    check_weights,
    initial_responsibility_blocks,
    scikit_learn_tied_start,
)
from toolkit.nn.mixture import MixtureDensity

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class InMemoryRows:
    """The training rows of an in-memory fit (arrays, DataFrames), validated as scikit-learn
    does; ``_dask_em.DaskRows`` is the same for dask collections."""

    def __init__(self, model, X, *, reset: bool) -> None:
        reject_non_numeric_columns(X)
        self.X_np = validate_data(model, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=reset)
        self.n_samples, self.n_features = self.X_np.shape
        self.dtype = self.X_np.dtype
        self._tensor = None

    def device(self, model) -> torch.device:
        return resolve_device(model.device)

    def tensor(self, model) -> torch.Tensor:
        """The rows as the working tensor (made once; shares X's memory when the dtype matches)."""
        if self._tensor is None:
            self._tensor = model._tensor(self.X_np)
        return self._tensor

    def mean(self) -> np.ndarray:
        return self.X_np.mean(axis=0)

    def initial_rows(self, random_state) -> np.ndarray:
        return self.X_np

    def e_step(self, model):
        """(callable () -> (mean log-likelihood, statistics), the context to run EM in).

        Fits on the CPU take the compiled pass (toolkit/mixture/_fused_pass.py) on torch's
        threads, while torch itself runs the small M-step on one thread: its OpenMP workers
        spin for a while after every parallel op and would take a core from the kernel.
        Everything else takes the torch pass.
        """
        X = self.tensor(model)
        if _fused_pass.applies(model._device):
            fused = _fused_pass.FusedPass(X.numpy(), model.covariance_type, model.n_components)
            return (
                lambda: fused(*model._state(), model._shift, model.covariance_type),
                _fused_pass.single_threaded_torch(),
            )
        return (lambda: model._e_step_pass(X)), contextlib.nullcontext()

    def labels(self, model) -> np.ndarray:
        return model._labels(self.tensor(model))


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by expectation-maximisation, a drop-in for scikit-learn's.

    p(x) = sum_k pi_k N(x | mu_k, Sigma_k). The EM loop runs in torch (CPU or CUDA), in log
    space with Cholesky-based log-densities, vectorised over components, over ``batch_size``
    rows at a time: each iteration is one pass over X that accumulates the sufficient
    statistics, so memory does not grow with n_samples * n_components * n_features. On a
    CPU with AVX-512 or AVX2 that pass is a compiled kernel (the same arithmetic in float64, fused
    per tile of 128 rows; toolkit/mixture/_fused_pass.py) when the install could build it.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        EM stops when the average log-likelihood gains less than this.
    reg_covar : float, default=1e-6
        Added to the covariances' diagonals.
    max_iter : int, default=100
    n_init : int, default=1
        Initialisations tried; the one with the highest lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
    weights_init : array-like of shape (n_components,), optional
    means_init : array-like of shape (n_components, n_features), optional
    precisions_init : array-like, optional
        Shapes by covariance type: full (K, D, D), tied (D, D), diag (K, D), spherical (K,).
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
    verbose : int, default=0
        A tqdm bar over EM iterations showing the lower bound.
    verbose_interval : int, default=10
        Iterations between progress-bar updates.
    device : str, default="auto"
        "auto" is CUDA when torch sees a GPU.
    dtype : {"float64", "float32"}, default="float64"
        Of X and the parameters: float64 for parity with scikit-learn; float32 halves X's
        memory and speeds up CUDA fits (the CPU's compiled pass computes in float64 either
        way; its sufficient statistics are float64 in every case).
    batch_size : int, default=4096
        Rows per chunk in the torch E-step / statistics pass (and in inference): small
        enough that a chunk's intermediates stay in the CPU's cache. The compiled pass
        works in tiles of 128 rows whatever this is.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        As scikit-learn's: numpy, in the fitted X's dtype (float32 X gives float32
        attributes, as scikit-learn's; the statistics are accumulated in float64 either way).
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Average log-likelihood of the best initialisation at its last E-step.
    lower_bounds_ : list of float
        The lower bound at each EM iteration of the best initialisation.
    n_features_in_, feature_names_in_
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions({"full", "tied", "diag", "spherical"})],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"kmeans", "random", "random_from_data", "k-means++"})],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "dtype": [StrOptions({"float64", "float32"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        device="auto",
        dtype="float64",
        batch_size=4096,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size

    # ------------------------------------------------------------ helpers
    def _tensor(self, array) -> torch.Tensor:
        with warnings.catch_warnings():  # read-only input (a memmap, pandas' copy-on-write): X is never written
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.as_tensor(np.asarray(array), dtype=DTYPES[self.dtype], device=self._device)

    def _state(self):
        return self._weights, self._means, self._precisions_cholesky

    def _moment_features(self, X: torch.Tensor, dtype=None) -> MomentFeatures:
        rows = min(self.batch_size, X.shape[0])
        return MomentFeatures(rows, X.shape[1], self.covariance_type, dtype or X.dtype, self._device)

    def _e_step_pass(self, X: torch.Tensor) -> tuple[float, dict]:
        """One torch pass: mean log-likelihood under the current parameters and the sufficient
        statistics of the responsibilities they give (see ``_gaussian_math.torch_pass``)."""
        features = self._moment_features(X)
        total, moments = torch_pass(X, *self._state(), self._shift, features, self.batch_size)
        return total.item() / X.shape[0], features.statistics(moments)

    def _m_step(self, stats: dict) -> None:
        """Parameters from float64 statistics, computed in float64 (E[x x'] - mu mu' cancels
        in float32 for tight components), then cast to the working dtype."""
        self._set_parameters(*estimate_parameters(stats, self.reg_covar, self.covariance_type))

    def _set_parameters(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> None:
        working = DTYPES[self.dtype]
        self._weights, self._means, self._covariances = weights.to(working), means.to(working), covariances
        self._precisions_cholesky = precision_cholesky_from_covariances(covariances, self.covariance_type).to(working)

    # ------------------------------------------------------- initialisation
    def _initialize(self, rows, random_state) -> None:
        """Initial parameters: those given, the rest from ``rows.initial_rows`` (all rows in
        memory; a sample of a dask array's)."""
        all_given = all(v is not None for v in (self.weights_init, self.means_init, self.precisions_init))
        if not all_given:
            X_np = rows.initial_rows(random_state)
            X = self._tensor(X_np)
            features, moments = self._moment_features(X, torch.float64), 0.0
            blocks = initial_responsibility_blocks(
                X_np, self.n_components, self.init_params, self.batch_size, random_state
            )
            for start, block in zip(range(0, X.shape[0], self.batch_size), blocks):
                resp = torch.as_tensor(block, dtype=torch.float64, device=self._device)
                moments = moments + resp.T @ features(X[start : start + self.batch_size], self._shift)
            stats = features.statistics(moments)
            weights, means, covariances = estimate_parameters(stats, self.reg_covar, self.covariance_type)
            if self.covariance_type == "tied" and self.init_params in ("k-means++", "random_from_data"):
                means, covariances = scikit_learn_tied_start(X, stats, self._shift, self.reg_covar, self.batch_size)
            # scikit-learn divides the initial N_k by n_samples without renormalising: k / n in
            # all for the one-hot starts of k chosen rows. Only the first lower bound sees it.
            weights = (stats["nk"] + 10 * torch.finfo(torch.float64).eps) / X.shape[0]
            self._set_parameters(weights, means, covariances)
        if self.weights_init is not None:
            self._weights = self._tensor(self.weights_init)
        if self.means_init is not None:
            self._means = self._tensor(self.means_init) - self._shift
        if self.precisions_init is not None:
            self._precisions_cholesky = precision_cholesky_from_precisions(
                self._tensor(self.precisions_init), self.covariance_type
            )

    def _check_initial_parameters(self, n_features: int) -> None:
        """scikit-learn's checks of the given initial parameters (see ``_initial_parameters``)."""
        k = self.n_components
        if self.weights_init is not None:
            check_weights(self.weights_init, k)
        if self.means_init is not None:
            check_means(self.means_init, k, n_features)
        if self.precisions_init is not None:
            check_precisions(self.precisions_init, self.covariance_type, k, n_features)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Estimate the mixture by EM (``n_init`` initialisations, the best one kept).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), or a dask array / DataFrame
            A dask collection is fitted where its blocks live: each EM iteration is one pass in
            which every block's sufficient statistics are computed by its worker (the compiled
            pass, no torch there) and summed across workers; the client only runs the M-step.
            Data-driven initialisations (``init_params``) use a random sample of at most
            100,000 rows; given ``weights_init`` / ``means_init`` / ``precisions_init`` give
            the in-memory fit's result. Computations run on the distributed Client current at
            fit (dask's local scheduler without one); a cluster lost mid-fit raises
            ``toolkit._dask.ClusterLost`` and leaves the estimator as it was.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self.fit_predict(X, y)
        return self

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit, then return the component of each sample (after a final E-step).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            A dask array (lazy) when X is a dask collection.
        """
        self._validate_params()
        with fitting(self):  # a failed fit leaves the estimator as it was (fitted or not)
            return self._fit_predict(X)

    def _fit_predict(self, X):
        continuing = self.warm_start and hasattr(self, "converged_")
        if is_dask_collection(X):
            from toolkit.mixture._dask_em import DaskRows

            rows = DaskRows(self, X, reset=not continuing)
        else:
            rows = InMemoryRows(self, X, reset=not continuing)
        if rows.n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {rows.n_samples}"
            )
        self._check_initial_parameters(rows.n_features)
        self._input_dtype = rows.dtype
        self._device = rows.device(self)
        if not continuing:
            self._shift = self._tensor(rows.mean())
        random_state = check_random_state(self.random_state)
        best, best_bound = None, -np.inf
        self.converged_ = False
        for _ in range(1 if continuing else self.n_init):
            if not continuing:
                self._initialize(rows, random_state)
            bounds, converged = self._em(rows, start=self.lower_bound_ if continuing else -np.inf)
            bound = bounds[-1] if bounds else (self.lower_bound_ if continuing else -np.inf)
            if bound > best_bound or best is None:
                best, best_bound = (self._state(), self._covariances if hasattr(self, "_covariances") else None), bound
                self.converged_, self.n_iter_, self.lower_bounds_ = converged, len(bounds), bounds
        (self._weights, self._means, self._precisions_cholesky), covariances = best
        if covariances is not None:
            self._covariances = covariances
        self.lower_bound_ = best_bound
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, "
                "or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._publish()
        return rows.labels(self)

    def _em(self, rows, start: float) -> tuple[list[float], bool]:
        """EM iterations from the current parameters; (lower bound of each iteration, converged)."""
        bound, converged, bounds = start, False, []
        e_step, threads = rows.e_step(self)
        bar = progress_bar(
            range(1, self.max_iter + 1), verbose=self.verbose, unit="iter", leave=False, desc=type(self).__name__
        )
        with threads:
            for n_iter in bar:
                previous = bound
                bound, stats = e_step()
                bounds.append(bound)
                self._m_step(stats)
                if n_iter % self.verbose_interval == 0:
                    bar.set_postfix(lower_bound=f"{bound:.6g}", change=f"{bound - previous:.3g}")
                if abs(bound - previous) < self.tol:
                    converged = True
                    break
        return bounds, converged

    def _publish(self) -> None:
        """Expose the parameters as scikit-learn's numpy attributes (means in input units, in
        the dtype of the X fitted, as scikit-learn keeps float32 input's attributes in float32)."""
        as_numpy = lambda t: t.detach().cpu().numpy().astype(self._input_dtype)  # noqa: E731
        self.weights_ = as_numpy(self._weights)
        self.means_ = as_numpy(self._means + self._shift)
        self.precisions_cholesky_ = as_numpy(self._precisions_cholesky)
        precisions = precisions_from_cholesky(self._precisions_cholesky, self.covariance_type)
        self.precisions_ = as_numpy(precisions)
        covariances = getattr(self, "_covariances", None)
        if covariances is None:  # all three initial values given and max_iter == 0
            covariances = torch.linalg.inv(precisions) if self.covariance_type in ("full", "tied") else 1.0 / precisions
        self.covariances_ = as_numpy(covariances)

    # ------------------------------------------------------------ inference
    def _check_X(self, X) -> tuple[torch.Tensor, np.dtype]:
        """X as the working tensor, and its own dtype (float32 or float64: the outputs' dtype)."""
        check_is_fitted(self, "weights_")
        reject_non_numeric_columns(X)
        X_np = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self._tensor(X_np), X_np.dtype

    def _density(self) -> MixtureDensity:
        return mixture_density(*self._state(), self._shift, self.covariance_type)

    @torch.no_grad()
    def _per_chunk(self, X: torch.Tensor, reduce) -> torch.Tensor:
        """``reduce`` applied to each block's (rows, K) log pi_k N(x | k), concatenated:
        no (n, K) intermediate beyond what the result itself holds."""
        density, size = self._density(), self.batch_size
        return torch.cat([reduce(density.log_prob(X[start : start + size])) for start in range(0, X.shape[0], size)])

    def _lazily(self, X, method: str):
        """``method`` over a dask collection's blocks, as a dask array (nothing computed yet)."""
        from toolkit.mixture._dask_em import DaskRows

        check_is_fitted(self, "weights_")
        return DaskRows(self, X, reset=False).map(self, method)

    def score_samples(self, X) -> np.ndarray:
        """Log-density log p(x) of each sample; shape (n_samples,). A dask array or DataFrame
        gives a dask array, computed lazily (as ``predict`` and ``predict_proba``)."""
        if is_dask_collection(X):
            return self._lazily(X, "score_samples")
        X, dtype = self._check_X(X)
        return self._per_chunk(X, lambda log_prob: torch.logsumexp(log_prob, dim=1)).cpu().numpy().astype(dtype)

    def score(self, X, y=None) -> float:
        """Average log-likelihood of X (computed now, also for a dask collection)."""
        mean = self.score_samples(X).mean()
        return float(mean.compute() if is_dask_collection(mean) else mean)

    def predict_proba(self, X) -> np.ndarray:
        """Posterior p(z = k | x) of each component; shape (n_samples, n_components)."""
        if is_dask_collection(X):
            return self._lazily(X, "predict_proba")
        X, dtype = self._check_X(X)
        return self._per_chunk(X, lambda log_prob: torch.softmax(log_prob, dim=1)).cpu().numpy().astype(dtype)

    def _labels(self, X: torch.Tensor) -> np.ndarray:
        """Most probable component per row."""
        return self._per_chunk(X, lambda log_prob: log_prob.argmax(dim=1)).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        """Most probable component of each sample; shape (n_samples,)."""
        if is_dask_collection(X):
            return self._lazily(X, "predict")
        return self._labels(self._check_X(X)[0])

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture, as scikit-learn does (same random stream).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample.
        """
        check_is_fitted(self, "weights_")
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires at least one sample."
            )
        rng = check_random_state(self.random_state)
        return sample_mixture(rng, n_samples, self.weights_, self.means_, self.covariances_, self.covariance_type)

    def __onnx_spec__(self):
        """Component, posterior and log-density as a module in the fit's dtype (skl2onnx's
        output names ``label``, ``probabilities``, ``score_samples``)."""
        check_is_fitted(self, "weights_")
        module = self._density().cpu()
        tolerance = {"atol": 1e-5, "rtol": 1e-5} if self.dtype == "float64" else {"atol": 1e-4, "rtol": 1e-4}
        n_features = self.means_.shape[1]
        return InferenceSpec(
            module=module.eval(),
            sample_shape=(n_features,),
            outputs=[
                OutputSpec("label", self.predict, 1, exact=True),
                OutputSpec("probabilities", self.predict_proba, 2, tolerance=tolerance),
                OutputSpec("score_samples", self.score_samples, 1, tolerance=tolerance),
            ],
            example=np.zeros((2, n_features), dtype=self.dtype),
            classes=np.arange(self.n_components),
            feature_names=[str(c) for c in self.feature_names_in_] if hasattr(self, "feature_names_in_") else None,
            dtype=self.dtype,
            min_opset=CONVERTED_MIN_OPSET,
            full_precision="its labels are differences of log-densities that int8 or float16 rounding changes",
        )

    def _n_parameters(self) -> int:
        return n_parameters(self.n_components, self.means_.shape[1], self.covariance_type)

    def bic(self, X) -> float:
        """Bayesian information criterion: -2 log L + n_parameters log n."""
        return -2 * self.score(X) * X.shape[0] + self._n_parameters() * np.log(X.shape[0])

    def aic(self, X) -> float:
        """Akaike information criterion: -2 log L + 2 n_parameters."""
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()
