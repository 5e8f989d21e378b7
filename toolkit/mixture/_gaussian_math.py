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


# ------------------------------------------------------------- log-densities
def _log_det(precisions_cholesky: torch.Tensor, covariance_type: str, n_features: int) -> torch.Tensor:
    """log |precision|^(1/2) per component: the sum of log-diagonals of its Cholesky factor."""
    if covariance_type == "full":
        return torch.log(torch.diagonal(precisions_cholesky, dim1=1, dim2=2)).sum(dim=1)  # (K,)
    if covariance_type == "tied":
        return torch.log(torch.diagonal(precisions_cholesky)).sum()
    if covariance_type == "diag":
        return torch.log(precisions_cholesky).sum(dim=1)
    return n_features * torch.log(precisions_cholesky)


def quadratic_features(X: torch.Tensor) -> torch.Tensor:
    """phi(x) = vec(x x^T); (N, D^2). (All D^2 entries: a broadcast product is far faster
    than gathering the D(D+1)/2 distinct ones.)"""
    return (X[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)


def _squared_mahalanobis_full(X, means, precisions_cholesky, features=None):
    """(x - mu)' L (x - mu) = phi(x) . vec(L) - 2 x' L mu + mu' L mu for L = C C'.

    GEMMs with (N, K) outputs and no (N, K, D) intermediate: the quadratic term reads
    phi(x), which the sufficient statistics of the same chunk reuse.
    """
    precisions = precisions_cholesky @ precisions_cholesky.mT  # (K, D, D)
    weights = precisions.reshape(len(precisions), -1)  # (K, D^2)
    features = quadratic_features(X) if features is None else features
    precision_means = torch.einsum("kde,ke->kd", precisions, means)  # (K, D)
    return features @ weights.T - 2.0 * X @ precision_means.T + (means * precision_means).sum(dim=1)


def _squared_mahalanobis_tied(X, means, precisions_cholesky):
    y = (X @ precisions_cholesky).unsqueeze(1) - (means @ precisions_cholesky).unsqueeze(0)  # (N, K, D)
    return (y * y).sum(dim=2)


def _squared_mahalanobis_diag(X, means, precisions_cholesky):
    precisions = precisions_cholesky**2  # (K, D)
    return (
        (means**2 * precisions).sum(dim=1)
        - 2.0 * X @ (means * precisions).T
        + (X**2) @ precisions.T
    )


def _squared_mahalanobis_spherical(X, means, precisions_cholesky):
    precisions = precisions_cholesky**2  # (K,)
    return (
        (means**2).sum(dim=1) * precisions
        - 2.0 * (X @ means.T) * precisions
        + torch.outer((X**2).sum(dim=1), precisions)
    )


SQUARED_MAHALANOBIS = {
    "full": _squared_mahalanobis_full,
    "tied": _squared_mahalanobis_tied,
    "diag": _squared_mahalanobis_diag,
    "spherical": _squared_mahalanobis_spherical,
}


def log_gaussian_prob(X, means, precisions_cholesky, covariance_type: str, features=None) -> torch.Tensor:
    """log N(x_n | mu_k, Sigma_k) for every row and component; (N, K). ``features`` are
    the chunk's quadratic features (full covariances), when already computed."""
    n_features = X.shape[1]
    if covariance_type == "full":
        distance = _squared_mahalanobis_full(X, means, precisions_cholesky, features)
    else:
        distance = SQUARED_MAHALANOBIS[covariance_type](X, means, precisions_cholesky)
    # A tensor of X's dtype: a Python float would become a float32 constant in an exported graph.
    normaliser = X.new_tensor(n_features * math.log(2 * math.pi))
    return -0.5 * (normaliser + distance) + _log_det(precisions_cholesky, covariance_type, n_features)


def weighted_log_prob(X, weights, means, precisions_cholesky, covariance_type: str, features=None) -> torch.Tensor:
    """log pi_k + log N(x_n | mu_k, Sigma_k); (N, K)."""
    return log_gaussian_prob(X, means, precisions_cholesky, covariance_type, features) + torch.log(weights)


# ------------------------------------------------------- sufficient statistics
def sufficient_statistics(X, resp, covariance_type: str, features=None) -> dict[str, torch.Tensor]:
    """Sums over the rows of one chunk: resp_k, resp_k x, and the second moments the
    covariance type needs (full: resp_k vec(x x^T); tied: x x^T; diag / spherical: resp_k x^2)."""
    stats = {"nk": resp.sum(dim=0), "sx": resp.T @ X}
    if covariance_type == "full":
        stats["sxx"] = resp.T @ (quadratic_features(X) if features is None else features)  # (K, D^2)
    elif covariance_type == "tied":
        stats["sxx"] = X.T @ X
    else:
        stats["sxx"] = resp.T @ (X * X)
    return stats


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
        second = stats["sxx"].reshape(len(nk), n_features, n_features)
        covariances = second / nk[:, None, None] - means[:, :, None] * means[:, None, :] + reg_covar * eye
    elif covariance_type == "tied":
        covariances = (stats["sxx"] - (nk[:, None] * means).T @ means) / nk.sum() + reg_covar * eye
    else:
        covariances = stats["sxx"] / nk[:, None] - means**2 + reg_covar
        if covariance_type == "spherical":
            covariances = covariances.mean(dim=1)
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
        log_prob = weighted_log_prob(x - self.shift, self.weights, self.means, self.precisions_cholesky, self.covariance_type)
        score = torch.logsumexp(log_prob, dim=1)  # (B,)
        probabilities = torch.exp(log_prob - score.unsqueeze(1))  # (B, K)
        return log_prob.argmax(dim=1), probabilities, score
