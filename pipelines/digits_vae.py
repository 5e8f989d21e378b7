"""A VAE on the 8x8 digits: held-out ELBO, reconstructions beside PCA's, and samples labelled by a CNN."""

import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from toolkit.generative import VAE
from toolkit.jobs import Job, import_file

digits = import_file(Path(__file__).with_name("_digits.py"))

LATENT = 8


def run(full: bool = False) -> Job:
    X_train, X_test, y_train, _ = digits.split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs, on purpose
        model = VAE(LATENT, image_shape=(8, 8), likelihood="bernoulli", batch_size=64, max_epochs=600 if full else 200, n_iter_no_change=10_000, random_state=0).fit(X_train)
        judge = digits.classifier(X_train, y_train)
    reconstruction = model.inverse_transform(model.transform(X_test))
    vae_mse = float(np.mean((reconstruction - X_test) ** 2))
    pca = PCA(LATENT).fit(X_train)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))
    samples = model.sample(1000, random_state=0)
    judged, probabilities = digits.judged(samples, judge)
    elbo = model.score(X_test)
    details = (
        f"held-out ELBO {elbo:.2f} nats per image (Bernoulli on pixels / 16); reconstruction MSE {vae_mse:.3f} "
        f"vs PCA-{LATENT} {pca_mse:.3f} (pixel units 0..16); {judged}"
    )

    def plot(folder: Path) -> None:
        digits.save_grid(samples, probabilities, folder / "samples.png", f"VAE (latent {LATENT}) samples, CNN label (probability)")

    return Job(model, X_test, "heldout_elbo_nats", elbo, details=details, plot=plot)
