"""What the digits generators share: the data split, a CNN that labels generated images, its score, a sample grid."""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from toolkit.mixture import GaussianMixture
from toolkit.neural_network import CNNClassifier


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, X_test, y_train, y_test): flat 64-pixel rows in 0..16, the digits_cnn split."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def cnn(max_epochs: int, **options) -> CNNClassifier:
    """The digits_cnn pipeline's net: two conv blocks over the 8x8 image, early stopping."""
    return CNNClassifier(
        (32, 64),
        image_shape=(8, 8),
        dropout=0.1,
        early_stopping=True,
        n_iter_no_change=5,
        max_epochs=max_epochs,
        batch_size=64,
        random_state=0,
        **options,
    )


def classifier(X_train: np.ndarray, y_train: np.ndarray, full: bool) -> Pipeline:
    """The digits_cnn model (test accuracy 0.98-0.99) on a shorter budget, to label generated images."""
    return Pipeline([("scale", MinMaxScaler()), ("cnn", cnn(60 if full else 20))]).fit(X_train, y_train)


def classifier_score(probabilities: np.ndarray) -> float:
    """exp(mean KL(p(y | x) || p(y))): the Inception score (Salimans et al. 2016) with the digits
    CNN in place of Inception. 1 when the labels are unsure or all alike, 10 when every image
    gets a confident label and the labels spread evenly over the ten digits."""
    marginal = probabilities.mean(axis=0)
    kl = (probabilities * (np.log(probabilities + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
    return float(np.exp(kl.mean()))


def judged(images: np.ndarray, judge: Pipeline) -> tuple[float, np.ndarray]:
    """(classifier score, label probabilities) of images as 64-pixel rows, clipped to 0..16."""
    rows = np.clip(np.asarray(images).reshape(len(images), 64), 0, 16)
    probabilities = judge.predict_proba(rows)
    return classifier_score(probabilities), probabilities


def describe(probabilities: np.ndarray) -> str:
    """Share labelled with probability >= 0.9 and the label counts."""
    counts = np.bincount(probabilities.argmax(axis=1), minlength=10)
    confident = float((probabilities.max(axis=1) >= 0.9).mean())
    return f"{confident:.0%} labelled with p >= 0.9, {int((counts > 0).sum())}/10 classes (counts {counts.tolist()})"


def mixture_scores(X_train: np.ndarray, X_test: np.ndarray, judge: Pipeline, n_samples: int) -> dict[str, float]:
    """Classifier scores of the references: one Gaussian, a 10-component mixture, held-out digits."""
    return {
        "one Gaussian": judged(GaussianMixture(1, random_state=0).fit(X_train).sample(n_samples)[0], judge)[0],
        "GaussianMixture(10)": judged(GaussianMixture(10, random_state=0).fit(X_train).sample(n_samples)[0], judge)[0],
        "held-out digits": judged(X_test, judge)[0],
    }


def save_grid(samples: np.ndarray, probabilities: np.ndarray, path: Path, title: str) -> None:
    """The first 100 samples as a 10 x 10 grid, each titled with the judge's label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(10, 10, figsize=(8, 8.6))
    for ax, image, p in zip(axes.ravel(), np.asarray(samples).reshape(-1, 8, 8), probabilities):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=16)
        ax.set_title(f"{p.argmax()} ({p.max():.2f})", fontsize=6)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
