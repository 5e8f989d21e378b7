"""A VAE on the 8x8 digits: held-out ELBO against independent pixels, its importance-weighted likelihood,
reconstructions beside a plain AutoEncoder's and PCA's, samples scored by a CNN."""

from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from toolkit.generative import VAE, AutoEncoder
from toolkit.jobs import Baseline, Job, import_file, latent_figure, reconstruction_figure

digits = import_file(Path(__file__).with_name("_digits.py"))

SECONDS = {"quick": 13, "full": 26}
LATENT = 8


def independent_pixels_loglik(X_train: np.ndarray, X_test: np.ndarray) -> float:
    """Mean held-out log-likelihood (nats per image) of independent Bernoulli pixels with the
    training means, on pixels / 16: the VAE's likelihood without a latent code."""
    p = np.clip(X_train.mean(axis=0) / 16, 1e-6, 1 - 1e-6)
    x = X_test / 16
    return float((x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1).mean())


def run(full: bool = False) -> Job:
    X_train, X_test, y_train, y_test = digits.split()
    n_samples = 1000 if full else 500
    budget = {} if full else {"max_steps": 4_000}  # the default budget is 10,000 optimizer steps
    model = VAE(LATENT, image_shape=(8, 8), likelihood="bernoulli", random_state=0, verbose=True, **budget)
    model.fit(X_train)
    judge = digits.classifier(X_train, y_train, full)
    autoencoder = AutoEncoder(LATENT, random_state=0).fit(X_train)
    pca = PCA(LATENT).fit(X_train)
    mse = {
        "VAE": model.inverse_transform(model.transform(X_test)),
        "AutoEncoder": autoencoder.inverse_transform(autoencoder.transform(X_test)),
        "PCA": pca.inverse_transform(pca.transform(X_test)),
    }
    mse = {name: float(np.mean((rebuilt - X_test) ** 2)) for name, rebuilt in mse.items()}
    samples = model.sample(n_samples, random_state=0)
    score, probabilities = digits.judged(samples, judge)
    references = digits.mixture_scores(X_train, X_test, judge, n_samples)
    details = (
        "ELBO in nats per image, Bernoulli on pixels / 16; importance-weighted log p(x) (1,000 draws) "
        f"{model.log_likelihood(X_test, n_samples=1_000).mean():.2f}; reconstruction MSE with {LATENT} codes: "
        + ", ".join(f"{name} {value:.3f}" for name, value in mse.items())
        + f" (pixel units 0..16); {n_samples} samples: classifier score {score:.2f} ("
        + ", ".join(f"{name} {value:.2f}" for name, value in references.items())
        + f"), {digits.describe(probabilities)}"
    )

    def plot(folder: Path) -> None:
        digits.save_grid(
            samples, probabilities, folder / "samples.png", f"VAE (latent {LATENT}) samples, CNN label (probability)"
        )
        latent_figure(
            model.transform(X_test), y_test, folder / "latent.png", f"held-out digits' latent means (z in R^{LATENT})"
        )
        reconstruction_figure(
            X_test.reshape(-1, 8, 8),
            np.asarray(model.inverse_transform(model.transform(X_test))).reshape(-1, 8, 8),
            folder / "reconstructions.png",
            f"held-out digits (top) and the VAE's reconstructions E[x | z = mean(x)] (bottom), MSE {mse['VAE']:.2f}",
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
