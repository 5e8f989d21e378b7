"""A large synthetic mixture: 500,000 x 16 (5,000,000 with --full) rows, 8 components, float32."""

import numpy as np
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from toolkit.jobs import Job
from toolkit.mixture import GaussianMixture


def run(full: bool = False) -> Job:
    n = 5_000_000 if full else 500_000
    X, y = make_blobs(n + 5_000, n_features=16, centers=8, cluster_std=2.5, random_state=0)
    X = X.astype(np.float32)
    train, test, y_test = X[:n], X[n:], y[n:]
    model = GaussianMixture(8, dtype="float32", init_params="k-means++", max_iter=50, random_state=0).fit(train)
    ari = adjusted_rand_score(y_test, model.predict(test))
    return Job(model, test, "adjusted_rand", ari, details=f"{n:,} training rows, {model.n_iter_} EM iterations")
