"""
Diffusion on two moons: DDPM and DDIM sampling, and the exported sampler
========================================================================

A :class:`~toolkit.generative.DDPM` (Ho et al., 2020) learns to undo Gaussian noise added over
1,000 steps. It samples by the ancestral DDPM chain (every step, stochastic) or by DDIM (Song et
al., 2021: deterministic, here 50 steps), and exports the whole reverse process as one ONNX
``Loop`` fed its noise, so that onnxruntime alone reproduces the samples.

``max_steps=3_000`` keeps the build short; the default 20,000 optimizer steps take about a
minute on 2 cores and give closer moons.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons

from toolkit.generative import DDPM, energy_distance
from toolkit.onnx import export, load

X = make_moons(2000, noise=0.05, random_state=0)[0]  # rows (a DataFrame works too) or images
held_out = make_moons(1000, noise=0.05, random_state=1)[0]
model = DDPM(max_steps=3_000, random_state=0).fit(X)
ancestral = model.sample(1000, random_state=0)  # all 1000 steps
ddim = model.sample(1000, sampler="ddim", n_sampling_steps=50, random_state=0)  # 20x fewer steps
for name, samples in [("DDPM, 1000 steps", ancestral), ("DDIM, 50 steps", ddim)]:
    print(f"{name}: energy distance to held-out moons {energy_distance(samples, held_out):.4f}")

fig, axes = plt.subplots(1, 3, figsize=(10, 3), sharex=True, sharey=True)
for ax, (title, points) in zip(axes, [("data", X[:1000]), ("DDPM, 1000 steps", ancestral), ("DDIM, 50 steps", ddim)]):
    ax.scatter(points[:, 0], points[:, 1], s=2)
    ax.set_title(title)
fig.tight_layout()

# %%
# The exported sampler is deterministic given its noise: ``sampling_noise`` draws the initial
# noise x_T (16, 2) and the noise added at each of the 100 steps (16, 100, 2).
folder = Path(tempfile.mkdtemp()) / "moons"
export(model, folder, sampler="ddpm", n_sampling_steps=100)  # denoiser.onnx + sampler.onnx
x_T, z = model.sampling_noise(16, random_state=0, n_sampling_steps=100)
samples = load(folder, graph="sampler").run({"initial_noise": x_T, "step_noise": z})["samples"]
expected = model.sample_from_noise(x_T, z, n_sampling_steps=100)
print(f"largest difference, onnxruntime vs the model: {np.abs(samples - expected).max():.2e}")
