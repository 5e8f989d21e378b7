"""Least-squares AR(p) fitting for one or many series at once, without a lag matrix.

The model, for series m and time t (0-based) in the estimation sample t = h, ..., n - 1:

    y[m, t] = c[m] + d[m] * (t + 1) + sum_{l in lags} phi[m, l] * y[m, t - l] + u[m, t]

(the constant and trend columns present according to ``trend``; h = hold_back >= max(lags)).

Instead of building the (n - h) x k regressor matrix, the normal equations are assembled
from k(k + 1) / 2 sums. A product of two lags, sum_t y[t - a] y[t - b], is a lag-(b - a)
autocovariance sum over the whole series minus at most h edge terms at each end: one pass
over the data per distinct lag difference instead of one per pair of regressors. The
system is solved after scaling to unit diagonal; where it is ill-conditioned, one step of
iterative refinement on the exact residuals brings the solution to what a QR least-squares
solve gives.

The passes over the data (the lag-product sums, and r'r and X'r of the residuals) run in
the compiled _ar_kernel.c, one series at a time in cache-sized chunks; where the install
found no C compiler, numpy makes them, one temporary array per lag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit._kernels import load_kernel

kernel = load_kernel("toolkit.timeseries._ar_kernel", "numpy's passes")  # None: the numpy passes below


TREND_TERMS = {
    "n": [],
    "c": ["const"],
    "t": ["trend"],
    "ct": ["const", "trend"],
    "ctt": ["const", "trend", "trend_squared"],
}


def deterministic_columns(trend: str) -> list[str]:
    """Names of the deterministic regressors of ``trend`` in {"n", "c", "t", "ct"} (the fast path;
    "ctt" goes through the regressor matrix)."""
    return TREND_TERMS[trend]


def _lag_product_sums(Y: np.ndarray, max_lag: int) -> np.ndarray:
    """full[:, d] = sum_{s=d}^{n-1} y[s] y[s-d] for d = 0..max_lag; shape (M, max_lag + 1)."""
    M, n = Y.shape
    if kernel is not None:
        full = np.empty((M, max_lag + 1))
        kernel.lag_product_sums(np.ascontiguousarray(Y, dtype=np.float64), full, M, n, max_lag)
        return full
    return np.stack([np.einsum("ms,ms->m", Y[:, d:], Y[:, : n - d]) for d in range(max_lag + 1)], axis=1)


def _edge_sums(Y: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative lag products at both ends of each series, for every lag d = 0..h.

    head[:, d, j] = sum_{s < j} y[s] y[s - d]      (s >= d, j = 0..h)
    tail[:, d, j] = sum_{i < j} y[n-1-i] y[n-1-i-d]  (j = 0..h)
    """
    M, n = Y.shape
    if kernel is not None:
        head, tail = np.empty((M, h + 1, h + 1)), np.empty((M, h + 1, h + 1))
        kernel.edge_sums(np.ascontiguousarray(Y, dtype=np.float64), head, tail, M, n, h)
        return head, tail
    padded = np.concatenate([np.zeros((M, h)), Y], axis=1)  # y[s] at padded[s + h]; zeros before 0
    d = np.arange(h + 1)[:, None]  # (h + 1, 1)
    i = np.arange(h)[None, :]  # (1, h)
    # head products y[s] y[s - d] for s = i; tail products y[n-1-i] y[n-1-i-d].
    head_products = padded[:, h + i] * padded[:, h + i - d]  # (M, h + 1, h)
    tail_products = padded[:, n + h - 1 - i] * padded[:, n + h - 1 - i - d]  # (M, h + 1, h)
    head = np.zeros((M, h + 1, h + 1))
    tail = np.zeros((M, h + 1, h + 1))
    head[:, :, 1:] = np.cumsum(head_products, axis=2)
    tail[:, :, 1:] = np.cumsum(tail_products, axis=2)
    return head, tail


def _window_sums(Y: np.ndarray, lags: np.ndarray, h: int) -> np.ndarray:
    """sum_{s=h-l}^{n-1-l} y[s] for each lag l (M, len(lags)): the row total minus prefix and
    suffix sums, which only span the first and last h values."""
    n = Y.shape[1]
    prefix = np.concatenate([np.zeros((len(Y), 1)), np.cumsum(Y[:, :h], axis=1)], axis=1)  # sums of y[:j]
    suffix = np.concatenate(
        [np.zeros((len(Y), 1)), np.cumsum(Y[:, n - h :][:, ::-1], axis=1)], axis=1
    )  # sums of the last j
    return Y.sum(axis=1, keepdims=True) - prefix[:, h - lags] - suffix[:, lags]


@dataclass
class NormalEquations:
    """X'X (M, k, k), X'y (M, k) and y'y (M,) of the AR regression of each series."""

    gram: np.ndarray
    cross: np.ndarray
    yy: np.ndarray
    nobs: int


def normal_equations(Y: np.ndarray, lags: list[int], trend: str, hold_back: int) -> NormalEquations:
    """Assemble the normal equations of every row of Y (M, n) without a lag matrix.

    One augmented cross-product matrix over the columns [deterministic terms, lags, y] is
    filled block by block with vectorised index arithmetic; X'X, X'y and y'y are its parts.
    """
    M, n = Y.shape
    h = hold_back
    nobs = n - h
    deterministic = deterministic_columns(trend)
    n_det = len(deterministic)
    all_lags = np.array([*lags, 0])  # the regressors' lags, then y itself (lag 0)
    size = n_det + len(all_lags)
    augmented = np.empty((M, size, size))

    # Lags x lags: sum_t y[t - a] y[t - b] = full_d - head - tail with a = min, d = |difference|
    # (s = t - a runs over [h - a, n - a); the lag-d full sum runs over [d, n)).
    full = _lag_product_sums(Y, h)
    head, tail = _edge_sums(Y, h)
    low = np.minimum.outer(all_lags, all_lags)
    gap = np.abs(np.subtract.outer(all_lags, all_lags))
    augmented[:, n_det:, n_det:] = full[:, gap] - head[:, gap, h - low] - tail[:, gap, low]

    if n_det:
        t1 = np.arange(h + 1, n + 1, dtype=np.float64)  # the trend column, t + 1
        sums = _window_sums(Y, all_lags, h)  # sum_t y[t - l]
        blocks = {"const": sums}
        if "trend" in deterministic:
            # sum_t (t + 1) y[t - l] = sum_s (s + 1) y[s] + l * sum_s y[s] with s = t - l
            blocks["trend"] = _window_sums(Y * np.arange(1, n + 1), all_lags, h) + all_lags * sums
        plain = {("const", "const"): nobs, ("trend", "trend"): t1 @ t1, ("const", "trend"): t1.sum()}
        for i, u in enumerate(deterministic):
            augmented[:, i, n_det:] = augmented[:, n_det:, i] = blocks[u]
            for j, v in enumerate(deterministic):
                augmented[:, i, j] = plain[tuple(sorted((u, v)))]
    k = size - 1
    return NormalEquations(augmented[:, :k, :k], augmented[:, :k, k], augmented[:, k, k], nobs)


def residuals(Y: np.ndarray, params: np.ndarray, lags: list[int], trend: str, hold_back: int) -> np.ndarray:
    """y[t] - fitted[t] for t = hold_back..n-1, one axpy per regressor; shape (M, nobs)."""
    n = Y.shape[1]
    h = hold_back
    resid = Y[:, h:].copy()
    column = 0
    for name in deterministic_columns(trend):
        regressor = 1.0 if name == "const" else np.arange(h + 1, n + 1, dtype=np.float64)
        resid -= params[:, column : column + 1] * regressor
        column += 1
    for lag in lags:
        resid -= params[:, column : column + 1] * Y[:, h - lag : n - lag]
        column += 1
    return resid


def _regressor_dot(Y: np.ndarray, vector: np.ndarray, lags: list[int], trend: str, hold_back: int) -> np.ndarray:
    """X' v for each series' regressor matrix X and a vector v (M, nobs); shape (M, k)."""
    n = Y.shape[1]
    h = hold_back
    parts = []
    for name in deterministic_columns(trend):
        parts.append(vector.sum(axis=1) if name == "const" else vector @ np.arange(h + 1, n + 1, dtype=np.float64))
    parts += [np.einsum("ms,ms->m", Y[:, h - lag : n - lag], vector) for lag in lags]
    return np.stack(parts, axis=1) if parts else np.empty((Y.shape[0], 0))


def _residual_statistics(
    Y: np.ndarray, params: np.ndarray, lags: list[int], trend: str, hold_back: int
) -> tuple[np.ndarray, np.ndarray]:
    """(r'r (M,), X'r (M, k)) of the residuals r = y - X params over t = hold_back..n-1."""
    if kernel is not None:
        M, n = Y.shape
        ssr, gradient = np.empty(M), np.empty(params.shape)
        columns = deterministic_columns(trend)
        kernel.residual_statistics(
            np.ascontiguousarray(Y, dtype=np.float64),
            np.ascontiguousarray(params, dtype=np.float64),
            np.asarray(lags, dtype=np.int64),
            ssr,
            gradient,
            M,
            n,
            hold_back,
            "const" in columns,
            "trend" in columns,
        )
        return ssr, gradient
    resid = residuals(Y, params, lags, trend, hold_back)
    return np.einsum("mt,mt->m", resid, resid), _regressor_dot(Y, resid, lags, trend, hold_back)


REFINE_ABOVE_CONDITION = 0.0


def _scaled_system(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gram scaled to a unit diagonal, the scale) per series: D^-1/2 G D^-1/2 and D^-1/2."""
    scale = 1.0 / np.sqrt(np.einsum("mii->mi", gram))  # (M, k)
    return gram * scale[:, :, None] * scale[:, None, :], scale


def _solve(inverse_scaled: np.ndarray, scale: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """x = G^-1 rhs from the inverse of G's scaled form: D^-1/2 (D^-1/2 G D^-1/2)^-1 D^-1/2 rhs."""
    return np.einsum("mkl,ml->mk", inverse_scaled, rhs * scale) * scale


def _condition_1norm(matrix: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """||A||_1 ||A^-1||_1 per matrix: the 1-norm condition number, from A and its inverse."""
    return np.abs(matrix).sum(axis=1).max(axis=1) * np.abs(inverse).sum(axis=1).max(axis=1)


@dataclass
class ARFit:
    """Least-squares estimates for M series (leading axis) with the same specification."""

    params: np.ndarray  # (M, k)
    ssr: np.ndarray  # (M,): sum of squared residuals
    inverse_gram: np.ndarray  # (M, k, k): (X'X)^-1
    nobs: int

    @property
    def sigma2(self) -> np.ndarray:
        """sigma^2 = SSR / nobs (the maximum-likelihood estimate, as statsmodels' AutoReg)."""
        return self.ssr / self.nobs

    @property
    def cov_params(self) -> np.ndarray:
        """sigma^2 (X'X)^{-1}; shape (M, k, k)."""
        return self.sigma2[:, None, None] * self.inverse_gram

    @property
    def bse(self) -> np.ndarray:
        """Standard errors sqrt(diag(sigma^2 (X'X)^{-1})); shape (M, k)."""
        return np.sqrt(np.einsum("mii->mi", self.cov_params))

    @property
    def llf(self) -> np.ndarray:
        """Gaussian log-likelihood -nobs / 2 * (log(2 pi sigma^2) + 1)."""
        return -self.nobs / 2 * (np.log(2 * np.pi * self.sigma2) + 1)

    def information_criteria(self) -> dict[str, np.ndarray]:
        """aic, bic, hqic with df = k + 1 (the k regressors and sigma^2), statsmodels' AutoReg:
        aic = -2 llf + 2 df, bic = -2 llf + log(nobs) df, hqic = -2 llf + 2 log(log(nobs)) df."""
        df = self.params.shape[1] + 1
        llf = self.llf
        return {
            "aic": -2 * llf + 2 * df,
            "bic": -2 * llf + np.log(self.nobs) * df,
            "hqic": -2 * llf + 2 * np.log(np.log(self.nobs)) * df,
        }


BLOCK_BYTES = 1 << 20


def fit_ar(Y: np.ndarray, lags: list[int], trend: str, hold_back: int) -> ARFit:
    """Least-squares AR fit of every row of Y (M, n) with the same lags, trend and hold-back.

    A panel is fitted in blocks of rows of about 1 MiB, so that the k passes over each block
    (sums, residuals, refinement) run from cache rather than from main memory.
    """
    rows = max(1, BLOCK_BYTES // (8 * Y.shape[1]))
    if Y.shape[0] <= rows:
        return _fit_block(Y, lags, trend, hold_back)
    blocks = [_fit_block(Y[i : i + rows], lags, trend, hold_back) for i in range(0, Y.shape[0], rows)]
    return ARFit(
        np.concatenate([b.params for b in blocks]),
        np.concatenate([b.ssr for b in blocks]),
        np.concatenate([b.inverse_gram for b in blocks]),
        blocks[0].nobs,
    )


def _fit_block(Y: np.ndarray, lags: list[int], trend: str, hold_back: int) -> ARFit:
    equations = normal_equations(Y, lags, trend, hold_back)
    k = equations.gram.shape[1]
    if k == 0:
        return ARFit(np.empty((Y.shape[0], 0)), equations.yy, equations.gram, equations.nobs)
    scaled, scale = _scaled_system(equations.gram)
    inverse_scaled = np.linalg.inv(scaled)  # solves, standard errors and the condition number
    params = _solve(inverse_scaled, scale, equations.cross)
    # The normal equations square the condition number of the regressors: where the scaled
    # system is ill-conditioned, one step of iterative refinement on the exact residuals
    # recovers the accuracy of a QR least-squares solve.
    # The SSR after the step follows from ||r - X delta||^2 = r'r - 2 delta'X'r + delta'X'X delta.
    ssr, gradient = _residual_statistics(Y, params, lags, trend, hold_back)  # r'r, X'r
    if (_condition_1norm(scaled, inverse_scaled) > REFINE_ABOVE_CONDITION).any():
        step = _solve(inverse_scaled, scale, gradient)
        params = params + step
        ssr = ssr - 2 * np.einsum("mk,mk->m", step, gradient) + np.einsum("mk,mkl,ml->m", step, equations.gram, step)
    return ARFit(params, ssr, inverse_scaled * scale[:, :, None] * scale[:, None, :], equations.nobs)


def regression_offsets(
    deterministic: np.ndarray, params: np.ndarray, n_deterministic: int, n_lags: int, exog: np.ndarray | None
) -> np.ndarray:
    """The deterministic and exogenous part of every step, (M, H), for params laid out
    [deterministic terms, lags, exog] (M, k): ``deterministic`` (H, d) shared by the series or
    (M, H, d), ``exog`` (M, H, e) or None."""
    M, horizon = len(params), deterministic.shape[-2]
    rows = np.broadcast_to(deterministic, (M, horizon, n_deterministic))
    offsets = np.einsum("mhd,md->mh", rows, params[:, :n_deterministic])
    if exog is not None:
        offsets = offsets + np.einsum("mhe,me->mh", exog, params[:, n_deterministic + n_lags :])
    return offsets


def forecast_recursion(history: np.ndarray, ar: np.ndarray, lags: list[int], offsets: np.ndarray) -> np.ndarray:
    """Recursive point forecasts after the end of ``history`` (M, >= p): step s is
    offsets[:, s] (the deterministic and exogenous terms) + sum_i ar[:, i] y[t - lags[i]].
    ``ar`` is (M, len(lags)), ``offsets`` (M, horizon). Returns (M, horizon)."""
    p = max(lags, default=0)
    M, horizon = offsets.shape
    path = np.concatenate([history[:, history.shape[1] - p :], np.empty((M, horizon))], axis=1)
    for step in range(horizon):
        value = offsets[:, step].copy()
        for offset, lag in enumerate(lags):
            value += ar[:, offset] * path[:, p + step - lag]
        path[:, p + step] = value
    return path[:, p:]


def dynamic_predictions(
    history: np.ndarray, ar: np.ndarray, lags: list[int], offsets: np.ndarray, first: int, predicted_from: int
) -> np.ndarray:
    """Predictions at positions first..T-1 (T = offsets' length; NaN before ``first``), as
    AutoReg's ``predict(dynamic=...)``: the prediction at t reads y at t - lag, observed
    (``history`` (M, n)) before ``predicted_from``, its own earlier prediction from there on;
    (M, T)."""
    predictions = np.full(offsets.shape, np.nan)
    for t in range(first, offsets.shape[1]):
        value = offsets[:, t]
        for offset, lag in enumerate(lags):
            source = predictions if t - lag >= predicted_from else history
            value = value + ar[:, offset] * source[:, t - lag]
        predictions[:, t] = value
    return predictions


def psi_weights(ar: np.ndarray, lags: list[int], horizon: int) -> np.ndarray:
    """MA(inf) weights psi_0..psi_{horizon-1} (psi_0 = 1, psi_j = sum_i phi_i psi_{j-i}) of the AR
    coefficients ``ar`` (M, len(lags)); (M, horizon)."""
    psi = np.zeros((ar.shape[0], horizon))
    psi[:, 0] = 1.0
    for j in range(1, horizon):
        for offset, lag in enumerate(lags):
            if lag <= j:
                psi[:, j] += ar[:, offset] * psi[:, j - lag]
    return psi


def forecast_variance(ar: np.ndarray, sigma2: np.ndarray, lags: list[int], horizon: int) -> np.ndarray:
    """Variance of the h-step forecast error, sigma^2 * sum_{j<h} psi_j^2; (M, horizon)."""
    psi = psi_weights(ar, lags, horizon)
    return sigma2[:, None] * np.cumsum(psi**2, axis=1)


def design_matrix(
    Y: np.ndarray, lags: list[int], deterministic: np.ndarray, exog: np.ndarray | None, hold_back: int
) -> np.ndarray:
    """The regressors [deterministic terms, lags, exog] of rows t = hold_back..n-1 of every series,
    statsmodels' AutoReg column order; (M, nobs, k). ``deterministic`` (n, d) is shared, ``exog``
    (M, n, e) per series."""
    M, n = Y.shape
    parts = [np.broadcast_to(deterministic[hold_back:], (M, n - hold_back, deterministic.shape[1]))]
    parts += [Y[:, hold_back - lag : n - lag, None] for lag in lags]
    if exog is not None:
        parts.append(exog[:, hold_back:])
    return np.concatenate(parts, axis=2)


def fit_design(
    Y: np.ndarray, lags: list[int], deterministic: np.ndarray, exog: np.ndarray | None, hold_back: int
) -> ARFit:
    """Least squares with an explicit regressor matrix Z, for the terms the lag-product sums do
    not cover (seasonal dummies, a user's deterministic process, exogenous regressors).

    Per block of series: Z'Z and Z'y by batched matrix products (one pass over Z each), the
    scaled system inverted, and, as in the fast path, one step of iterative refinement on the
    exact residuals, which brings the solution to a QR solve's accuracy (with numpy's batched
    QR instead, the seasonal AR-X fit of benchmarks/ar_fit.py (c) took 1.5 s against 0.9 s).
    A rank-deficient Z (a regressor repeating another) is an error rather than an arbitrary
    solution.
    """
    width = deterministic.shape[1] + len(lags) + (0 if exog is None else exog.shape[2])
    rows = max(1, 8 * BLOCK_BYTES // (8 * Y.shape[1] * (width + 1)))
    parts = []
    for first in range(0, Y.shape[0], rows):
        block = slice(first, first + rows)
        Z = design_matrix(Y[block], lags, deterministic, None if exog is None else exog[block], hold_back)
        target = Y[block, hold_back:]
        gram = Z.transpose(0, 2, 1) @ Z
        scaled, scale = _scaled_system(gram)
        eigenvalues = np.linalg.eigvalsh(scaled)
        if (eigenvalues[:, 0] <= eigenvalues[:, -1] * width * 1e-13).any():
            raise ValueError(
                f"the regressors are linearly dependent ({width} columns): a deterministic term or exogenous "
                "column repeats another (e.g. a constant in exog with trend 'c')"
            )
        inverse_scaled = np.linalg.inv(scaled)
        params = _solve(inverse_scaled, scale, np.einsum("mnk,mn->mk", Z, target))
        resid = target - np.einsum("mnk,mk->mn", Z, params)
        params = params + _solve(inverse_scaled, scale, np.einsum("mnk,mn->mk", Z, resid))  # refinement
        resid = target - np.einsum("mnk,mk->mn", Z, params)
        inverse_gram = inverse_scaled * scale[:, :, None] * scale[:, None, :]
        parts.append(ARFit(params, np.einsum("mn,mn->m", resid, resid), inverse_gram, Z.shape[1]))
    return ARFit(
        np.concatenate([p.params for p in parts]),
        np.concatenate([p.ssr for p in parts]),
        np.concatenate([p.inverse_gram for p in parts]),
        parts[0].nobs,
    )


def ar_roots(ar: np.ndarray, lags: list[int]) -> np.ndarray:
    """Roots of the AR polynomial 1 - sum_l phi_l z^l of each row of ``ar`` (M, len(lags)), as
    statsmodels computes them: the inverses of the eigenvalues of the lag polynomial's
    companion matrix (np.roots' method), batched over series; (M, p), empty without lags."""
    p = max(lags, default=0)
    if p == 0:
        return np.empty((len(ar), 0), dtype=complex)
    companion = np.zeros((len(ar), p, p))
    companion[:, 0, np.asarray(lags) - 1] = ar
    companion[:, np.arange(1, p), np.arange(p - 1)] = 1.0
    return np.linalg.eigvals(companion).astype(complex) ** -1
