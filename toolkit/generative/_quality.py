"""Two-sample distances for judging generated data against held-out data."""

from __future__ import annotations

import numpy as np
import torch


def _mean_distance(a: torch.Tensor, b: torch.Tensor, *, same: bool) -> float:
    """Mean Euclidean distance between rows of a and rows of b (off-diagonal pairs when ``same``)."""
    distances = torch.cdist(a, b)
    if same:
        n = len(a)
        return float(distances.sum() / (n * (n - 1)))
    return float(distances.mean())


def energy_distance(X, Y) -> float:
    """Squared energy distance 2 E||X - Y|| - E||X - X'|| - E||Y - Y'|| between two samples.

    Zero exactly when the two distributions are equal (Szekely & Rizzo); the within-sample
    terms average over distinct pairs only (U-statistics), so the estimate is unbiased.

    Parameters
    ----------
    X : array-like of shape (n, d) (or (n, ...), flattened)
    Y : array-like of shape (m, d)

    Returns
    -------
    float
    """
    x = torch.as_tensor(np.asarray(X, dtype=np.float64).reshape(len(X), -1))
    y = torch.as_tensor(np.asarray(Y, dtype=np.float64).reshape(len(Y), -1))
    if x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(
            f"energy_distance needs two samples of >= 2 rows of the same width, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    return 2 * _mean_distance(x, y, same=False) - _mean_distance(x, x, same=True) - _mean_distance(y, y, same=True)


def shuffled_columns(X, random_state=0) -> np.ndarray:
    """X with each column permuted independently: right marginals, no dependence between
    features. The baseline a generator has to beat."""
    rng = np.random.default_rng(random_state)
    X = np.array(X, dtype=np.float64).reshape(len(X), -1)
    return np.column_stack([rng.permutation(column) for column in X.T])
