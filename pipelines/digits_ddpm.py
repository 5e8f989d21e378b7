"""A U-Net DDPM on the 8x8 digits: samples scored by a digits CNN, against one Gaussian's samples."""

from pathlib import Path

from toolkit.generative import DDPM
from toolkit.jobs import Baseline, Job, import_file

digits = import_file(Path(__file__).with_name("_digits.py"))

SECONDS = {"quick": 31, "full": 513}


def run(full: bool = False) -> Job:
    X_train, X_test, y_train, _ = digits.split()
    n_samples, n_sampling_steps = (1000, None) if full else (500, 100)
    model = DDPM(
        image_shape=(8, 8),
        channels=(32, 64) if full else (16, 32),
        batch_size=64,
        max_steps=20_000 if full else 2_000,  # 20,000 is the default budget
        random_state=0,
        verbose=True,
    )
    model.fit(X_train)
    judge = digits.classifier(X_train, y_train, full)
    samples = model.sample(n_samples, random_state=0, n_sampling_steps=n_sampling_steps)
    score, probabilities = digits.judged(samples, judge)
    references = digits.mixture_scores(X_train, X_test, judge, n_samples)
    steps = n_sampling_steps or model.n_steps
    details = (
        f"{n_samples} samples ({steps} DDPM steps): {digits.describe(probabilities)}; classifier score of "
        + ", ".join(f"{name} {value:.2f}" for name, value in references.items())
        + f"; held-out denoising loss {model.denoising_loss(X_test):.4f}, variational bound "
        + f"{model.bits_per_dim(X_test, n_timesteps=None if full else 100):.3f} bits/dim (discretised decoder"
        + f"{'' if full else ', 100 Monte-Carlo t per image'})"
    )

    def plot(folder: Path) -> None:
        digits.save_grid(
            samples, probabilities, folder / "samples.png", f"DDPM samples ({steps} steps), CNN label (probability)"
        )

    return Job(
        model,
        X_test,
        "classifier_score",
        score,
        Baseline("one Gaussian", references["one Gaussian"]),
        floor=3.0,  # one Gaussian 2.56, a DDPM trained 2 epochs 1.77
        details=details,
        export_options={"n_sampling_steps": n_sampling_steps},
        plot=plot,
    )
