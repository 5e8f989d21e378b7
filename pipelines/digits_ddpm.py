"""A U-Net DDPM on the 8x8 digits: 1,000 samples labelled by a CNN, the held-out denoising loss."""

import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

from toolkit.generative import DDPM
from toolkit.jobs import Job, import_file

digits = import_file(Path(__file__).with_name("_digits.py"))


def run(full: bool = False) -> Job:
    X_train, X_test, y_train, _ = digits.split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs, on purpose
        model = DDPM(image_shape=(8, 8), channels=(32, 64), batch_size=64, max_epochs=600 if full else 200, n_iter_no_change=10_000, random_state=0).fit(X_train)
        judge = digits.classifier(X_train, y_train)
    samples = model.sample(1000, random_state=0)
    judged, probabilities = digits.judged(samples, judge)
    confident = float((probabilities.max(axis=1) >= 0.9).mean())
    details = f"{judged}; held-out denoising loss {model.denoising_loss(X_test):.4f}; DDPM sampler, 1000 steps"

    def plot(folder: Path) -> None:
        digits.save_grid(samples, probabilities, folder / "samples.png", "DDPM samples (1000 steps), CNN label (probability)")

    return Job(model, X_test, "share_p>=0.9", confident, details=details, plot=plot)
