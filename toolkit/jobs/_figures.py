"""Figures the pipelines and the run's report share (matplotlib, Agg backend, one PNG each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    _pyplot().close(fig)


def training_curves(history: list[dict], path: Path) -> None:
    """Loss and score per epoch from a fitted net's ``history_`` (training and, when recorded,
    validation)."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "metric", "score")):
        for part in ("train", "valid"):
            values = [h.get(f"{part}_{key}") for h in history]
            if any(v is not None and v == v for v in values):  # v == v: not NaN
                ax.plot(epochs, values, label="validation" if part == "valid" else "training")
        ax.set_xlabel("epoch")
        ax.set_title(label)
        if ax.get_legend_handles_labels()[0]:  # a net without a score (the generative ones) has no curve here
            ax.legend()
    _save(fig, path)


def confusion_matrix_figure(model, X, y, path: Path, title: str = "") -> None:
    """The held-out confusion matrix of a fitted classifier (rows: true class, columns: predicted)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ConfusionMatrixDisplay.from_estimator(model, X, y, ax=ax, colorbar=False)
    ax.set_title(title or "held-out confusion matrix", fontsize=9)
    _save(fig, path)


def mixture_figure(X, labels, means, covariances, path: Path, title: str = "") -> None:
    """Points coloured by component on the first two principal axes of X, with each component's
    1- and 2-sigma covariance ellipse projected onto them.

    ``covariances`` is (K, D, D) (expand a tied / diagonal / spherical mixture's first).
    """
    from matplotlib.patches import Ellipse

    plt = _pyplot()
    X = np.asarray(X, dtype=np.float64)
    centre = X.mean(axis=0)
    _, _, axes_t = np.linalg.svd(X - centre, full_matrices=False)
    basis = axes_t[:2].T  # (D, 2)
    points = (X - centre) @ basis
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(points[:, 0], points[:, 1], c=[f"C{int(k) % 10}" for k in labels], s=6, alpha=0.6)  # as the ellipses
    for k, (mean, covariance) in enumerate(zip(means, covariances)):
        m2 = (np.asarray(mean) - centre) @ basis
        c2 = basis.T @ np.asarray(covariance) @ basis
        values, vectors = np.linalg.eigh(c2)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        for sigmas in (1, 2):
            width, height = 2 * sigmas * np.sqrt(np.maximum(values[::-1], 0))
            ax.add_patch(Ellipse(m2, width, height, angle=angle, fill=False, color=f"C{k % 10}", lw=1.2))
    ax.set_xlabel("principal axis 1")
    ax.set_ylabel("principal axis 2")
    ax.set_title(title or "mixture components", fontsize=9)
    _save(fig, path)


def latent_figure(Z, labels, path: Path, title: str = "") -> None:
    """Latent codes coloured by label: the first two coordinates, or the first two principal
    axes of the codes when there are more than two."""
    plt = _pyplot()
    Z = np.asarray(Z, dtype=np.float64)
    axes_names = ("z0", "z1")
    if Z.shape[1] > 2:
        centred = Z - Z.mean(axis=0)
        Z = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
        axes_names = ("principal axis 1 of z", "principal axis 2 of z")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    scatter = ax.scatter(Z[:, 0], Z[:, 1], c=labels, s=6, cmap="tab10", alpha=0.7)
    ax.legend(*scatter.legend_elements(), fontsize=7, loc="best", markerscale=0.8)
    ax.set_xlabel(axes_names[0])
    ax.set_ylabel(axes_names[1])
    ax.set_title(title or "latent codes", fontsize=9)
    _save(fig, path)


def reconstruction_figure(originals, reconstructions, path: Path, title: str = "", n: int = 10) -> None:
    """The first ``n`` images (top row) above their reconstructions (bottom row), on one grey scale."""
    plt = _pyplot()
    originals, reconstructions = np.asarray(originals)[:n], np.asarray(reconstructions)[:n]
    low, high = float(originals.min()), float(originals.max())
    fig, axes = plt.subplots(2, len(originals), figsize=(0.9 * len(originals), 2.2), squeeze=False)
    for column, (image, rebuilt) in enumerate(zip(originals, reconstructions)):
        for row, picture in enumerate((image, rebuilt)):
            axes[row, column].imshow(np.squeeze(picture), cmap="gray_r", vmin=low, vmax=high)
            axes[row, column].axis("off")
    fig.suptitle(title or "images (top) and reconstructions (bottom)", fontsize=9)
    _save(fig, path)


def full_covariances(mixture) -> np.ndarray:
    """A fitted GaussianMixture's covariances as (K, D, D) whatever its covariance type."""
    k, d = mixture.means_.shape
    covariances = np.asarray(mixture.covariances_, dtype=np.float64)
    if mixture.covariance_type == "tied":
        return np.broadcast_to(covariances, (k, d, d))
    if mixture.covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    if mixture.covariance_type == "spherical":
        return np.stack([np.eye(d) * c for c in covariances])
    return covariances
