"""Diffusion sampling: DDIM (50 steps) vs DDPM (1000 steps), and torch's sampler vs the ONNX sampler graph.

(1) Time per 1,000 samples and the quality of each sampler (and of DDPM respaced to 50 steps): the
energy distance of the samples to 2,000 held-out points (moons; lower is better), and with --digits
the classifier score a digits CNN gives 1,000 U-Net samples.
(2) The same reverse process, fed the same noise, in torch (``DDPM.sample_from_noise``) and
as ONE ONNX graph (a Loop) under onnxruntime, at equal step counts; goal: ONNX no slower.

    python benchmarks/diffusion_sampling.py [--epochs 600] [--digits]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _timing import timed
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning

from toolkit.generative import DDPM, energy_distance
from toolkit.jobs import import_file
from toolkit.onnx import export

SETTINGS = {
    "DDPM-1000": {"sampler": "ddpm"},
    "DDIM-50": {"sampler": "ddim", "n_sampling_steps": 50},
    "DDPM-50": {"sampler": "ddpm", "n_sampling_steps": 50},  # ancestral on the respaced schedule
}


def compare_samplers(model: DDPM, quality, n: int = 1000) -> None:
    for label, settings in SETTINGS.items():
        _, seconds = timed(lambda: model.sample(n, random_state=1, **settings))
        print(
            f"  {label:9s}: {seconds:6.2f} s per {n} samples   {quality(model.sample(n, random_state=1, **settings))}"
        )


def compare_runtimes(model: DDPM, n: int = 1000, repeats: int = 3) -> None:
    for label, settings in SETTINGS.items():
        with tempfile.TemporaryDirectory() as folder:
            export(model, folder, **settings)
            session = ort.InferenceSession(str(Path(folder) / "sampler.onnx"), providers=["CPUExecutionProvider"])
            initial, steps = model.sampling_noise(n, random_state=2, n_sampling_steps=settings.get("n_sampling_steps"))
            feed = {"initial_noise": initial, "step_noise": steps}
            model.sample_from_noise(initial, steps, **settings)  # warm-up: onnxruntime allocates and
            session.run(None, feed)  # pre-packs weights on its first run, torch on its own
            # Interleaved, so that drift in the machine's speed hits both sides alike.
            times = [
                (
                    timed(lambda: model.sample_from_noise(initial, steps, **settings))[1],
                    timed(lambda: session.run(None, feed))[1],
                )
                for _ in range(repeats)
            ]
            t_torch, t_onnx = (statistics.median(side) for side in zip(*times))
            error = np.abs(
                session.run(None, feed)[0] - np.asarray(model.sample_from_noise(initial, steps, **settings))
            ).max()
        print(
            f"  {label:9s}: torch {t_torch:6.3f} s   onnxruntime {t_onnx:6.3f} s   torch/onnx "
            f"{t_torch / t_onnx:4.2f}x   max abs diff {error:.2e}"
        )


def moons(epochs: int) -> None:
    X = make_moons(4000, noise=0.05, random_state=0)[0]
    train, test = X[:2000], X[2000:]
    model = DDPM(hidden=128, batch_size=128, max_epochs=epochs, n_iter_no_change=10_000, random_state=0).fit(train)
    print(f"moons, MLP denoiser ({epochs} epochs); energy distance to 2,000 held-out points:")
    compare_samplers(model, lambda samples: f"energy {energy_distance(samples, test):.4f}")
    print("moons, 1,000 samples, same noise:")
    compare_runtimes(model)


def digits(epochs: int) -> None:
    helpers = import_file(Path(__file__).resolve().parents[1] / "pipelines" / "_digits.py")
    X_train, _, y_train, _ = helpers.split()
    model = DDPM(
        image_shape=(8, 8), channels=(32, 64), batch_size=64, max_epochs=epochs, n_iter_no_change=10_000, random_state=0
    ).fit(X_train)
    judge = helpers.classifier(X_train, y_train, full=True)
    print(f"digits, U-Net denoiser ({epochs} epochs):")

    def quality(samples) -> str:
        score, probabilities = helpers.judged(samples, judge)
        return f"classifier score {score:.2f}, {helpers.describe(probabilities)}"

    compare_samplers(model, quality)
    print("digits, 1,000 samples, same noise (one timed run each, after a warm-up):")
    compare_runtimes(model, n=1000, repeats=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument("--digits", action="store_true", help="also the digits U-Net (200 epochs, a few minutes)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    moons(args.epochs)
    if args.digits:
        digits(200)


if __name__ == "__main__":
    main()
