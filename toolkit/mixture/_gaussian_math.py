"""EM for Gaussian mixtures in torch: log-densities and sufficient statistics per covariance type.

Every function works on one chunk of rows, so that a fit never holds more than
(chunk x n_components x n_features) values; the M-step reads only the accumulated
sufficient statistics. Shapes: X (N, D), resp (N, K), means (K, D); precision Cholesky
factors: full (K, D, D), tied (D, D), diag (K, D), spherical (K,).
"""

from __future__ import annotations

import math

import torch

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
CHOLESKY_FAILED = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar, or scale the input data."
)


# ---------------------------------------------- log-densities and moments, fused
# For every covariance type, log pi_k + log N(x | mu_k, Sigma_k) is linear in a few features
# of x: z(x) = [second-order terms, x], so that a chunk's E-step is ONE GEMM, Z @ A + c, and
# the M-step's sufficient statistics are ONE more, resp' Z. Expanding
# (x - mu)' L (x - mu) = x' L x - 2 x' L mu + mu' L mu costs no (N, K, D) intermediate; the
# caller centres the data so that the expansion does not cancel.
#   full / tied: z = [vec(x x'), x], A = [-vec(L) / 2, L mu]
#   diag:        z = [x * x, x],     A = [-prec / 2, prec * mu]
#   spherical:   z = [x' x, x],      A = [-prec / 2, prec * mu]


def moment_features(X: torch.Tensor, covariance_type: str, out: torch.Tensor | None = None) -> torch.Tensor:
    """z(x) per row; (N, F) with F = D^2 + D (full, tied), 2D (diag), 1 + D (spherical).

    (All D^2 products for full / tied: a broadcast product is far faster than gathering
    the D(D+1)/2 distinct ones.) ``out``, a reusable (N', F) buffer with N' >= N, spares
    an allocation and a concatenation per chunk.
    """
    n_samples, n_features = X.shape
    width = {"full": n_features**2, "tied": n_features**2, "diag": n_features, "spherical": 1}[covariance_type]
    features = X.new_empty((n_samples, width + n_features)) if out is None else out[:n_samples]
    second = features[:, :width]
    if covariance_type in ("full", "tied"):
        torch.mul(X[:, :, None], X[:, None, :], out=second.view(n_samples, n_features, n_features))
    elif covariance_type == "diag":
        torch.mul(X, X, out=second)
    else:
        torch.sum(X * X, dim=1, keepdim=True, out=second)
    features[:, width:] = X
    return features


def _log_det(precisions_cholesky: torch.Tensor, covariance_type: str, n_features: int) -> torch.Tensor:
    """log |precision|^(1/2) per component: the sum of log-diagonals of its Cholesky factor."""
    if covariance_type == "full":
        return torch.log(torch.diagonal(precisions_cholesky, dim1=1, dim2=2)).sum(dim=1)  # (K,)
    if covariance_type == "tied":
        return torch.log(torch.diagonal(precisions_cholesky)).sum()
    if covariance_type == "diag":
        return torch.log(precisions_cholesky).sum(dim=1)
    return n_features * torch.log(precisions_cholesky)


def log_prob_coefficients(weights, means, precisions_cholesky, covariance_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(A (F, K), c (K,)) with log pi_k + log N(x | mu_k, Sigma_k) = z(x) @ A + c."""
    n_components, n_features = means.shape
    if covariance_type in ("full", "tied"):
        precisions = (precisions_cholesky @ precisions_cholesky.mT).expand(n_components, n_features, n_features)
        quadratic = precisions.reshape(n_components, -1)  # (K, D^2)
        linear = torch.einsum("kde,ke->kd", precisions, means)  # (K, D)
    else:
        precisions = precisions_cholesky**2  # (K, D) or (K,)
        if covariance_type == "spherical":
            precisions = precisions[:, None]
            quadratic = precisions  # (K, 1)
        else:
            quadratic = precisions
        linear = precisions * means
    centre = (means * linear).sum(dim=1)  # mu' L mu
    # A tensor of the data's dtype: a Python float would become a float32 constant in a graph.
    normaliser = means.new_tensor(n_features * math.log(2 * math.pi))
    constant = -0.5 * (normaliser + centre) + _log_det(precisions_cholesky, covariance_type, n_features) + torch.log(weights)
    return torch.cat([-0.5 * quadratic, linear], dim=1).T, constant


def weighted_log_prob(X, weights, means, precisions_cholesky, covariance_type: str) -> torch.Tensor:
    """log pi_k + log N(x_n | mu_k, Sigma_k); (N, K)."""
    coefficients, constant = log_prob_coefficients(weights, means, precisions_cholesky, covariance_type)
    return moment_features(X, covariance_type) @ coefficients + constant


# ------------------------------------------------------- sufficient statistics
def sufficient_statistics(moments: torch.Tensor, nk: torch.Tensor, covariance_type: str) -> dict[str, torch.Tensor]:
    """Split accumulated resp' z (K, F) into sum resp_k x and the second moments:
    full (K, D, D), tied (D, D) = sum_n x x', diag (K, D), spherical (K,) = sum resp_k x'x."""
    n_components = moments.shape[0]
    if covariance_type in ("full", "tied"):
        n_features = int(round((-1 + math.sqrt(1 + 4 * moments.shape[1])) / 2))
        second = moments[:, : n_features**2].reshape(n_components, n_features, n_features)
        second = second.sum(dim=0) if covariance_type == "tied" else second
    elif covariance_type == "diag":
        n_features = moments.shape[1] // 2
        second = moments[:, :n_features]
    else:
        n_features = moments.shape[1] - 1
        second = moments[:, 0]
    return {"nk": nk, "sx": moments[:, moments.shape[1] - n_features :], "sxx": second}


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


class MixtureDensity(torch.nn.Module):
    """A fitted mixture for inference: x -> (component, posterior probabilities, log p(x)).

    Parameters are buffers; ``shift`` is subtracted from x first (the fit centres the data).
    """

    def __init__(self, weights, means, precisions_cholesky, shift, covariance_type: str) -> None:
        super().__init__()
        self.register_buffer("weights", weights)  # (K,)
        self.register_buffer("means", means)  # (K, D), centred
        self.register_buffer("precisions_cholesky", precisions_cholesky)
        self.register_buffer("shift", shift)  # (D,)
        self.covariance_type = covariance_type

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        log_prob = weighted_log_prob(x - self.shift, self.weights, self.means, self.precisions_cholesky, self.covariance_type)  # (B, K)
        score = torch.logsumexp(log_prob, dim=1)  # (B,)
        probabilities = torch.exp(log_prob - score.unsqueeze(1))  # (B, K)
        return log_prob.argmax(dim=1), probabilities, score
