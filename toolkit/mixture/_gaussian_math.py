"""EM for Gaussian mixtures in torch: log-densities and sufficient statistics per covariance type.

Every function works on one chunk of rows, so that a fit never holds more than
(chunk x n_components x n_features) values; the M-step reads only the accumulated
sufficient statistics. Shapes: X (N, D), resp (N, K), means (K, D); precision Cholesky
factors: full (K, D, D), tied (D, D), diag (K, D), spherical (K,).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from toolkit.nn.mixture import MixtureDensity

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
CHOLESKY_FAILED = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar, or scale the input data."
)


# ---------------------------------------------- log-densities and moments, fused
# For every covariance type, log pi_k + log N(x | mu_k, Sigma_k) is linear in a few features
# of x: z(x) = [second-order terms, x, 1], so that a chunk's E-step is ONE GEMM, A z, and the
# M-step's sufficient statistics are ONE more, resp' z (its last column is N_k). Expanding
# (x - mu)' L (x - mu) = x' L x - 2 x' L mu + mu' L mu costs no (N, K, D) intermediate; the
# caller centres the data so that the expansion does not cancel.
#   full / tied: z = [x_i x_(i+s mod D) for s in 0..D/2, x, 1]   (circulant layout, below)
#   diag, spherical: z = [x * x, x, 1]   (spherical sums the squares' statistics)
# The D(D+1)/2 distinct products of a full covariance are laid out by cyclic offset s: row i
# holds x_i * x_(i+s mod D) for s = 0..D//2. That is one broadcast product against a strided
# window of [x, x_0..x_(D//2 - 1)] (no gather, which is several times slower), and it covers
# every pair once, except that for even D the offset D/2 lists each of its pairs twice:
# D (D//2 + 1) columns, against D(D+1)/2 distinct and D^2 for the full outer product.


class MomentFeatures:
    """The features z(x) of blocks of up to ``n_rows`` rows, written into reused buffers.

    Parameters
    ----------
    n_rows, n_features : int
    covariance_type : str
    dtype, device
        Of the buffers (the rows are cast on the way in).
    """

    def __init__(self, n_rows: int, n_features: int, covariance_type: str, dtype, device) -> None:
        self.n_features, self.covariance_type = n_features, covariance_type
        self.n_offsets = n_features // 2 + 1 if covariance_type in ("full", "tied") else 0
        self.n_second = n_features * self.n_offsets if covariance_type in ("full", "tied") else n_features
        self.width = self.n_second + n_features + 1
        self._features = torch.empty((n_rows, self.width), dtype=dtype, device=device)
        self._features[:, -1] = 1
        # x followed by its first n_offsets - 1 columns again: windows of it are the cyclic shifts.
        self._wrapped = torch.empty((n_rows, n_features + max(self.n_offsets - 1, 0)), dtype=dtype, device=device)

    def __call__(self, block: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """z(block - shift), a view of the buffer of shape (len(block), width), valid until the next call."""
        n, d = block.shape
        x = self._wrapped[:n, :d]
        torch.sub(block, shift, out=x)
        features = self._features[:n]
        second = features[:, : self.n_second]
        if self.covariance_type in ("full", "tied"):
            wrapped = self._wrapped[:n]
            wrapped[:, d:] = x[:, : self.n_offsets - 1]
            window = wrapped.unfold(1, self.n_offsets, 1)[:, :d]  # (n, D, S): x_(i+s mod D)
            torch.mul(x[:, :, None], window, out=second.view(n, d, self.n_offsets))
        else:
            torch.mul(x, x, out=second)
        features[:, self.n_second : -1] = x
        return features

    def cyclic_columns(self, device) -> torch.Tensor:
        """(D, S) column index (i + s) mod D of each circulant product."""
        d = self.n_features
        return (torch.arange(d, device=device)[:, None] + torch.arange(self.n_offsets, device=device)) % d

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b): the second-order columns of z are x_a * x_b, in order."""
        rows = torch.arange(self.n_features)
        if self.covariance_type in ("full", "tied"):
            columns = self.cyclic_columns(rows.device)
            return rows[:, None].expand_as(columns).reshape(-1), columns.reshape(-1)
        return rows, rows

    def coefficients(self, weights, means, precisions_cholesky) -> torch.Tensor:
        """A (K, width) with log pi_k + log N(x | mu_k, Sigma_k) = A z(x)."""
        n_components, d = means.shape
        if self.covariance_type in ("full", "tied"):
            precisions = (precisions_cholesky @ precisions_cholesky.mT).expand(n_components, d, d)
            columns = self.cyclic_columns(means.device)
            # x' L x = sum_i L_ii x_i^2 + 2 sum_(i<j) L_ij x_i x_j; the offset D/2 of an even
            # D lists its pairs twice, so they keep weight 1 there.
            multiplicity = torch.full((self.n_offsets,), 2.0, dtype=means.dtype, device=means.device)
            multiplicity[0] = 1.0
            if d % 2 == 0 and self.n_offsets > 1:
                multiplicity[-1] = 1.0
            rows = torch.arange(d, device=means.device)[:, None].expand_as(columns)
            quadratic = (precisions[:, rows, columns] * multiplicity).reshape(n_components, -1)
            linear = torch.einsum("kde,ke->kd", precisions, means)
        else:
            precisions = (precisions_cholesky**2).reshape(n_components, -1).expand(n_components, d)
            quadratic = precisions
            linear = precisions * means
        centre = (means * linear).sum(dim=1)  # mu' L mu
        constant = log_normaliser(weights, precisions_cholesky, self.covariance_type, d) - 0.5 * centre
        return torch.cat([-0.5 * quadratic, linear, constant[:, None]], dim=1)

    def statistics(self, moments: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split accumulated resp' z (K, width) into N_k, sum_n resp_nk x_n and second moments:
        full (K, D, D), tied (D, D) = sum_n x x', diag (K, D), spherical (K,) = sum resp x'x."""
        n_components, d = moments.shape[0], self.n_features
        second = moments[:, : self.n_second]
        if self.covariance_type in ("full", "tied"):
            columns = self.cyclic_columns(moments.device)
            rows = torch.arange(d, device=moments.device)[:, None].expand_as(columns)
            matrix = moments.new_zeros((n_components, d, d))
            values = second.reshape(n_components, d, self.n_offsets)
            matrix[:, rows, columns] = values
            matrix[:, columns, rows] = values
            second = matrix.sum(dim=0) if self.covariance_type == "tied" else matrix
        elif self.covariance_type == "spherical":
            second = second.sum(dim=1)
        return {"nk": moments[:, -1], "sx": moments[:, self.n_second : -1], "sxx": second}


def torch_pass(X, weights, means, precisions_cholesky, shift, features: MomentFeatures, batch_size: int):
    """One EM pass in torch over X: (summed log-likelihood, moments resp' z of shape (K, width)),
    both float64.

    Per block of ``batch_size`` rows: the features z (one broadcast product), log-probabilities
    A z (one GEMM, components along rows), normalised in place, and resp z' (one GEMM) added
    to the float64 moments (sums over millions of rows lose digits in float32).
    """
    coefficients = features.coefficients(weights, means, precisions_cholesky)  # (K, F)
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    moments = torch.zeros(coefficients.shape, dtype=torch.float64, device=X.device)
    for start in range(0, X.shape[0], batch_size):
        z = features(X[start : start + batch_size], shift)  # (n, F)
        resp = coefficients @ z.T  # (K, n) log pi_k N(x | k), normalised in place below
        peak = resp.amax(dim=0)
        resp -= peak
        resp.exp_()
        norm = resp.sum(dim=0)
        resp /= norm
        total += (norm.log_() + peak).sum(dtype=torch.float64)
        if moments.dtype == z.dtype:
            moments.addmm_(resp, z)
        else:
            moments += (resp @ z).double()
    return total, moments


def whitening(means, precisions_cholesky, covariance_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) with (x - mu_k)' P_k (x - mu_k) / 2 = |x W_k + b_k|^2: W (K, D, D), b (K, D).

    W_k = C_k / sqrt(2) for the precision's Cholesky factor C_k (scikit-learn's Cholesky
    form), diagonal for diag / spherical.
    """
    n_components, d = means.shape
    if covariance_type in ("full", "tied"):
        factors = precisions_cholesky.expand(n_components, d, d) * math.sqrt(0.5)
    else:
        factors = torch.diag_embed(precisions_cholesky.reshape(n_components, -1).expand(n_components, d)) * math.sqrt(
            0.5
        )
    return factors, -torch.einsum("kd,kde->ke", means, factors)


def log_normaliser(weights, precisions_cholesky, covariance_type: str, n_features: int) -> torch.Tensor:
    """log pi_k + log |P_k|^(1/2) - D log(2 pi) / 2, per component (K,)."""
    log_det = _log_det(precisions_cholesky, covariance_type, n_features)
    return (-0.5 * n_features * math.log(2 * math.pi) + log_det + torch.log(weights)).expand(weights.shape)


def _log_det(precisions_cholesky: torch.Tensor, covariance_type: str, n_features: int) -> torch.Tensor:
    """log |precision|^(1/2) per component: the sum of log-diagonals of its Cholesky factor."""
    if covariance_type == "full":
        return torch.log(torch.diagonal(precisions_cholesky, dim1=1, dim2=2)).sum(dim=1)  # (K,)
    if covariance_type == "tied":
        return torch.log(torch.diagonal(precisions_cholesky)).sum()
    if covariance_type == "diag":
        return torch.log(precisions_cholesky).sum(dim=1)
    return n_features * torch.log(precisions_cholesky)


# ------------------------------------------------------------------- M-step
def estimate_parameters(stats: dict[str, torch.Tensor], reg_covar: float, covariance_type: str):
    """(weights, means, covariances) from accumulated sufficient statistics (the M-step).

    nk gets 10 * machine epsilon as in scikit-learn, so that an empty component keeps a
    finite mean. Covariances are E[x x^T] - mu mu^T per component (data are centred by the
    caller, which keeps this difference well conditioned), plus reg_covar on the diagonal.
    """
    nk = stats["nk"] + 10 * torch.finfo(stats["nk"].dtype).eps  # (K,)
    means = stats["sx"] / nk[:, None]  # (K, D)
    n_features = means.shape[1]
    eye = torch.eye(n_features, dtype=means.dtype, device=means.device)
    if covariance_type == "full":
        covariances = stats["sxx"] / nk[:, None, None] - means[:, :, None] * means[:, None, :] + reg_covar * eye
    elif covariance_type == "tied":
        covariances = (stats["sxx"] - (nk[:, None] * means).T @ means) / nk.sum() + reg_covar * eye
    elif covariance_type == "diag":
        covariances = stats["sxx"] / nk[:, None] - means**2 + reg_covar
    else:  # the mean over features of the diagonal variances
        covariances = (stats["sxx"] / nk - (means**2).sum(dim=1)) / n_features + reg_covar
    return nk / nk.sum(), means, covariances


# ------------------------------------------------------- Cholesky factors
def precision_cholesky_from_covariances(covariances, covariance_type: str) -> torch.Tensor:
    """Factors C with precision = C C^T: (L^-1)^T for the Cholesky L of each covariance."""
    if covariance_type in ("full", "tied"):
        try:
            lower = torch.linalg.cholesky(covariances)
        except RuntimeError:
            raise ValueError(CHOLESKY_FAILED) from None
        eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype, device=covariances.device)
        return torch.linalg.solve_triangular(lower, eye.expand_as(lower), upper=False).mT
    if (covariances <= 0).any():
        raise ValueError(CHOLESKY_FAILED)
    return 1.0 / torch.sqrt(covariances)


def precision_cholesky_from_precisions(precisions, covariance_type: str) -> torch.Tensor:
    """Factors C with precision = C C^T from given precisions (the lower Cholesky factor)."""
    if covariance_type in ("full", "tied"):
        return torch.linalg.cholesky(precisions)
    return torch.sqrt(precisions)


def precisions_from_cholesky(precisions_cholesky, covariance_type: str) -> torch.Tensor:
    if covariance_type in ("full", "tied"):
        return precisions_cholesky @ precisions_cholesky.mT
    return precisions_cholesky**2


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Free parameters: covariances + means + (n_components - 1) weights."""
    covariance = {
        "full": n_components * n_features * (n_features + 1) / 2.0,
        "tied": n_features * (n_features + 1) / 2.0,
        "diag": n_components * n_features,
        "spherical": n_components,
    }[covariance_type]
    return int(covariance + n_components * n_features + n_components - 1)


def mixture_density(weights, means, precisions_cholesky, shift, covariance_type: str) -> MixtureDensity:
    """The inference module of a fitted mixture, with everything that does not depend on x folded
    into its buffers (see :class:`toolkit.nn.mixture.MixtureDensity`).

    full / tied whiten x - mu_k by each precision's Cholesky factor C_k in ONE product for all
    components, y = x W + b with W = [C_1 ... C_K] / sqrt(2) (D, K D); diag / spherical expand
    sum_d p_kd (x_d - mu_kd)^2 / 2 into (x * x) W_2 + x W_1 + b, with the sign and
    log pi_k + log |P_k|^(1/2) - D log(2 pi) / 2 folded into W and b.
    """
    n_components, d = means.shape
    constant = log_normaliser(weights, precisions_cholesky, covariance_type, d)  # (K,)
    if covariance_type in ("full", "tied"):
        factors, bias = whitening(means, precisions_cholesky, covariance_type)
        weight = factors.permute(1, 0, 2).reshape(d, n_components * d)
        bias = bias.reshape(-1)
    else:  # linear in [x * x, x]: the constant and the sign fold into the product
        precisions = (precisions_cholesky**2).reshape(n_components, -1).expand(n_components, d)
        weight = -torch.cat([0.5 * precisions.T, -(means * precisions).T])  # (2D, K)
        bias = constant - 0.5 * (means * means * precisions).sum(dim=1)
    return MixtureDensity(shift, weight, bias, constant, covariance_type)


def sample_mixture(
    rng: np.random.RandomState,
    n_samples: int,
    weights: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    covariance_type: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(X (n_samples, D), component of each row) drawn as scikit-learn's ``sample`` draws them
    (the same random stream): the counts per component, then each component's rows."""
    counts = rng.multinomial(n_samples, weights)
    n_features = means.shape[1]
    if covariance_type == "full":
        draws = [rng.multivariate_normal(mean, cov, int(n)) for mean, cov, n in zip(means, covariances, counts)]
    elif covariance_type == "tied":
        draws = [rng.multivariate_normal(mean, covariances, int(n)) for mean, n in zip(means, counts)]
    else:
        scales = np.sqrt(covariances)
        draws = [
            mean + rng.standard_normal(size=(n, n_features)) * scale for mean, scale, n in zip(means, scales, counts)
        ]
    labels = np.concatenate([np.full(n, k, dtype=int) for k, n in enumerate(counts)])
    return np.vstack(draws), labels
