"""
Gaussian mixtures on the wine data: the number of components by BIC
===================================================================

:class:`~toolkit.mixture.GaussianMixture` is scikit-learn's mixture (the same parameters,
attributes and four covariance types), fitted by EM. Here it clusters the 13 standardised
measurements of 178 wines; the Bayesian information criterion picks the number of components,
which is then compared with the three cultivars the wines came from.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from toolkit.mixture import GaussianMixture

wine = load_wine()
X = StandardScaler().fit_transform(wine.data)
ks = range(1, 7)
bic = {
    covariance: [GaussianMixture(k, covariance_type=covariance, n_init=3, random_state=0).fit(X).bic(X) for k in ks]
    for covariance in ("full", "diag")
}
fig, ax = plt.subplots(figsize=(5, 3))
for covariance, values in bic.items():
    ax.plot(list(ks), values, marker="o", label=f'covariance_type="{covariance}"')
ax.set_xlabel("components")
ax.set_ylabel("BIC (lower is better)")
ax.legend()
fig.tight_layout()
best = min(((values[i], k, covariance) for covariance, values in bic.items() for i, k in enumerate(ks)))
print(f"BIC picks k={best[1]} ({best[2]} covariances)")

# %%
# The chosen mixture against the cultivars, drawn on the first two principal components with
# each component's 2-standard-deviation ellipse.
model = GaussianMixture(best[1], covariance_type=best[2], n_init=3, random_state=0).fit(X)
labels = model.predict(X)
print(f"adjusted Rand index with the cultivars: {adjusted_rand_score(wine.target, labels):.3f}")
pca = PCA(2).fit(X)
points = pca.transform(X)
fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(points[:, 0], points[:, 1], c=labels, s=12, cmap="viridis")
covariances = model.covariances_ if best[2] == "full" else np.stack([np.diag(c) for c in model.covariances_])
for mean, covariance in zip(model.means_, covariances):
    center = pca.transform(mean[None])[0]
    projected = pca.components_ @ covariance @ pca.components_.T
    values, vectors = np.linalg.eigh(projected)
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    width, height = 4 * np.sqrt(values[::-1])
    ax.add_patch(Ellipse(center, width, height, angle=angle, fill=False, color="black"))
ax.set_xlabel("first principal component")
ax.set_ylabel("second principal component")
fig.tight_layout()
