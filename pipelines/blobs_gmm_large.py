"""A large synthetic mixture: 500,000 x 16 rows (5,000,000 with --full), 8 components, float32."""

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from toolkit.jobs import Baseline, Job
from toolkit.mixture import GaussianMixture

SECONDS = {"quick": 5, "full": 18}


def run(full: bool = False) -> Job:
    n = 5_000_000 if full else 500_000
    X, y = make_blobs(n + 5_000, n_features=16, centers=8, cluster_std=2.5, random_state=0)
    X = X.astype(np.float32)
    train, test, y_test = X[:n], X[n:], y[n:]
    model = GaussianMixture(8, dtype="float32", init_params="k-means++", max_iter=50, random_state=0, verbose=1).fit(
        train
    )
    ari = adjusted_rand_score(y_test, model.predict(test))
    kmeans = adjusted_rand_score(y_test, KMeans(8, n_init=1, random_state=0).fit(train).predict(test))
    return Job(
        model,
        test,
        "adjusted_rand",
        ari,
        Baseline("k-means", kmeans),
        floor=0.95,
        details=f"{n:,} training rows, {model.n_iter_} EM iterations",
    )
