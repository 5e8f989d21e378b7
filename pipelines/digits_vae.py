"""A VAE on the 8x8 digits: held-out ELBO against independent pixels, reconstructions beside PCA's, samples
scored by a CNN."""

import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from toolkit.generative import VAE
from toolkit.jobs import Baseline, Job, import_file

digits = import_file(Path(__file__).with_name("_digits.py"))

SECONDS = {"quick": 11, "full": 26}
LATENT = 8


def independent_pixels_loglik(X_train: np.ndarray, X_test: np.ndarray) -> float:
    """Mean held-out log-likelihood (nats per image) of independent Bernoulli pixels with the
    training means, on pixels / 16: the VAE's likelihood without a latent code."""
    p = np.clip(X_train.mean(axis=0) / 16, 1e-6, 1 - 1e-6)
    x = X_test / 16
    return float((x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1).mean())


def run(full: bool = False) -> Job:
    X_train, X_test, y_train, _ = digits.split()
    n_samples = 1000 if full else 500
    model = VAE(
        LATENT,
        image_shape=(8, 8),
        likelihood="bernoulli",
        batch_size=64,
        max_epochs=600 if full else 200,
        n_iter_no_change=10_000,
        random_state=0,
        verbose=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs, on purpose
        model.fit(X_train)
        judge = digits.classifier(X_train, y_train, full)
    reconstruction = model.inverse_transform(model.transform(X_test))
    vae_mse = float(np.mean((reconstruction - X_test) ** 2))
    pca = PCA(LATENT).fit(X_train)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))
    samples = model.sample(n_samples, random_state=0)
    score, probabilities = digits.judged(samples, judge)
    references = digits.mixture_scores(X_train, X_test, judge, n_samples)
    details = (
        f"ELBO in nats per image, Bernoulli on pixels / 16; reconstruction MSE {vae_mse:.3f} vs PCA-{LATENT} "
        f"{pca_mse:.3f} "
        f"(pixel units 0..16); {n_samples} samples: classifier score {score:.2f} ("
        + ", ".join(f"{name} {value:.2f}" for name, value in references.items())
        + f"), {digits.describe(probabilities)}"
    )

    def plot(folder: Path) -> None:
        digits.save_grid(
            samples, probabilities, folder / "samples.png", f"VAE (latent {LATENT}) samples, CNN label (probability)"
        )

    return Job(
        model,
        X_test,
        "heldout_elbo",
        model.score(X_test),
        Baseline("independent pixels", independent_pixels_loglik(X_train, X_test)),
        floor=-26.0,  # independent pixels -27.2, a VAE trained 1 epoch -30.0
        details=details,
        plot=plot,
    )
