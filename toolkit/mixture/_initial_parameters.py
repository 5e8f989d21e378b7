"""A GaussianMixture's start: checks of the initial parameters a user gives (``weights_init``,
``means_init``, ``precisions_init``: the conditions scikit-learn checks, in scikit-learn's
words, so code matching its messages keeps working, followed by which parameter, which
component and what is wrong), and the initial responsibilities ``init_params`` draws."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.utils import check_array

from toolkit.mixture._gaussian_math import estimate_parameters

PRECISION_SHAPES = {
    "full": lambda k, d: (k, d, d),
    "tied": lambda k, d: (d, d),
    "diag": lambda k, d: (k, d),
    "spherical": lambda k, d: (k,),
}


def _as_array(value, name: str, covariance_type: str = "") -> np.ndarray:
    """A finite float array (scikit-learn's check_array: NaN, infinity and strings are errors)."""
    try:
        return check_array(
            value,
            dtype=[np.float64, np.float32],
            ensure_2d=False,
            allow_nd=covariance_type == "full",
            ensure_min_samples=0,
            input_name=name,
        )
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _check_shape(array: np.ndarray, shape: tuple[int, ...], label: str, name: str) -> None:
    if array.shape != shape:
        raise ValueError(f"The parameter '{label}' should have the shape of {shape}, but got {array.shape} ({name})")


def check_weights(weights, n_components: int) -> np.ndarray:
    weights = _as_array(weights, "weights_init")
    _check_shape(weights, (n_components,), "weights", "weights_init")
    if (weights < 0).any() or (weights > 1).any():
        raise ValueError(
            f"The parameter 'weights' should be in the range [0, 1], but got min value {weights.min():.5f}, "
            f"max value {weights.max():.5f} (weights_init[{int(np.argmax((weights < 0) | (weights > 1)))}])"
        )
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if not np.isclose(abs(1.0 - weights.sum()), 0.0, atol=atol):
        raise ValueError(
            f"The parameter 'weights' should be normalized, but got sum(weights) = {weights.sum():.5f} (weights_init)"
        )
    return weights


def check_means(means, n_components: int, n_features: int) -> np.ndarray:
    means = _as_array(means, "means_init")
    _check_shape(means, (n_components, n_features), "means", "means_init")
    return means


def _matrix_problem(matrix: np.ndarray) -> str | None:
    """Why ``matrix`` is not a precision (scikit-learn's tests: symmetric within isclose, eigenvalues > 0)."""
    if not np.isclose(matrix, matrix.T).all():
        return f"is not symmetric (largest |P - P'| {np.abs(matrix - matrix.T).max():.3g})"
    smallest = np.linalg.eigvalsh(matrix).min()
    if smallest <= 0:
        return f"is not positive-definite (smallest eigenvalue {smallest:.3g})"
    return None


def check_precisions(precisions, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    label = f"{covariance_type} precision"
    precisions = _as_array(precisions, "precisions_init", covariance_type)
    _check_shape(precisions, PRECISION_SHAPES[covariance_type](n_components, n_features), label, "precisions_init")
    if covariance_type in ("diag", "spherical"):
        bad = np.argwhere(precisions <= 0)
        if len(bad):
            where = bad[0]
            feature = f", feature {where[1]}" if covariance_type == "diag" else ""
            raise ValueError(
                f"'{label}' should be positive, but precisions_init[{', '.join(map(str, where))}] = "
                f"{precisions[tuple(where)]:.5g} (component {where[0]}{feature})"
            )
        return precisions
    matrices = [precisions] if covariance_type == "tied" else list(precisions)
    for k, matrix in enumerate(matrices):
        problem = _matrix_problem(matrix)
        if problem is not None:
            which = "precisions_init" if covariance_type == "tied" else f"precisions_init[{k}] (component {k})"
            raise ValueError(f"'{label}' should be symmetric, positive-definite, but {which} {problem}")
    return precisions


def initial_responsibility_blocks(
    X: np.ndarray, n_components: int, init_params: str, batch_size: int, random_state
) -> Iterator[np.ndarray]:
    """Responsibilities for ``init_params`` as scikit-learn draws them, one block of
    ``batch_size`` rows at a time (one-hot rows are built per block from labels; uniform
    draws per block continue one random stream, as a single draw would)."""
    n_samples, k = X.shape[0], n_components
    labels = None
    if init_params == "kmeans":
        labels = KMeans(n_clusters=k, n_init=1, random_state=random_state).fit(X).labels_
    elif init_params == "random_from_data":
        chosen = random_state.choice(n_samples, size=k, replace=False)
    elif init_params == "k-means++":
        _, chosen = kmeans_plusplus(X, k, random_state=random_state)
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
        if init_params == "random":
            block = random_state.uniform(size=(stop - start, k))
            yield block / block.sum(axis=1)[:, np.newaxis]
            continue
        block = np.zeros((stop - start, k))
        if labels is not None:
            block[np.arange(stop - start), labels[start:stop]] = 1
        else:
            inside = (chosen >= start) & (chosen < stop)
            block[chosen[inside] - start, np.arange(k)[inside]] = 1
        yield block


def scikit_learn_tied_start(
    X: torch.Tensor, stats: dict, shift: torch.Tensor, reg_covar: float, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(means, tied covariance) of a start from k chosen rows, as scikit-learn computes them.

    scikit-learn's tied covariance is (X'X - sum_k N_k mu_k mu_k') / sum_k N_k with X'X
    summed over EVERY row, whatever the responsibilities; for "k-means++" and
    "random_from_data" (one-hot rows for the k chosen points only, N_k = 1) that is not
    the chosen points' covariance, and it depends on where the origin is. A drop-in
    reproduces it, in the input's own coordinates (float64); ``X`` and the means are
    shifted by ``shift``.
    """
    shift = shift.double()
    gram = torch.zeros((X.shape[1], X.shape[1]), dtype=torch.float64, device=X.device)
    for start in range(0, X.shape[0], batch_size):
        block = X[start : start + batch_size].double()
        gram += block.T @ block
    raw = {"nk": stats["nk"], "sx": stats["sx"] + stats["nk"][:, None] * shift, "sxx": gram}
    _, means, covariances = estimate_parameters(raw, reg_covar, "tied")
    return means - shift, covariances
