"""
A VAE's latent space on the digits
==================================

A :class:`~toolkit.generative.VAE` with a two-dimensional latent space and a Bernoulli likelihood
on the digits' pixels scaled to [0, 1]. ``transform`` maps images to their latent means, where
the digits gather by class although the VAE never saw a label; decoding a grid of latent points
(``inverse_transform``) shows how one digit turns into another. ``score`` is the mean ELBO and
``log_likelihood`` the importance-weighted bound, in nats per image.

``max_steps=3_000`` keeps the build short (the default is 10,000).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from toolkit.generative import VAE

X, y = load_digits(return_X_y=True)
X = X / 16.0
vae = VAE(latent_dim=2, likelihood="bernoulli", image_shape=(8, 8), max_steps=3_000, random_state=0).fit(X[:1500])
print(f"held-out ELBO: {vae.score(X[1500:]):.1f} nats per image")
print(f"held-out IWAE bound (100 samples): {vae.log_likelihood(X[1500:], n_samples=100).mean():.1f}")

Z = vae.transform(X)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
points = axes[0].scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=6)
axes[0].legend(*points.legend_elements(), title="digit", fontsize=7, loc="best")
axes[0].set_title("latent means of the digits")
grid = np.stack(np.meshgrid(np.linspace(-2, 2, 12), np.linspace(2, -2, 12)), axis=-1).reshape(-1, 2)
images = vae.inverse_transform(grid).reshape(12, 12, 8, 8).transpose(0, 2, 1, 3).reshape(96, 96)
axes[1].imshow(images, cmap="gray_r")
axes[1].set_title("decoded from a grid of latent points")
axes[1].axis("off")
fig.tight_layout()
