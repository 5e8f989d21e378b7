"""Gaussian-mixture EM speed: toolkit's GaussianMixture vs scikit-learn's, side by side.

n = 200,000, d = 16, k = 8, 100 EM iterations (tol=0 so both run all of them) from the
same initial parameters, float64: full and diag covariances. Goal: >= 15x (full) at equal
log-likelihood. Also inference, for every covariance type: our exported ONNX vs skl2onnx's
GaussianMixture converter under onnxruntime at batch 1 and 1000 (goal: no slower).

Both ONNX sessions run on one intra-op thread; their timings are interleaved (7 rounds of
500 calls each, the median round reported).

    python benchmarks/gmm_fit.py [--n 200000] [--iterations 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings

import numpy as np
import onnxruntime as ort
from _timing import interleaved_ms, timed
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from toolkit.mixture import GaussianMixture
from toolkit.onnx import export, load


def fit_speed(X: np.ndarray, covariance_type: str, iterations: int, repeats: int) -> None:
    start = SklearnGaussianMixture(8, covariance_type=covariance_type, max_iter=0, random_state=0).fit(X[:20000])
    params = dict(
        covariance_type=covariance_type,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
        max_iter=iterations,
        tol=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Interleaved, so that drift in the machine's speed hits both sides alike.
        runs = [
            (
                timed(lambda: SklearnGaussianMixture(8, **params).fit(X)),
                timed(lambda: GaussianMixture(8, device="cpu", **params).fit(X)),
            )
            for _ in range(repeats)
        ]
    (ref, _), (ours, _) = runs[0]
    t_ref = statistics.median(r[0][1] for r in runs)
    t_ours = statistics.median(r[1][1] for r in runs)
    print(
        f"{covariance_type:5s} sklearn {t_ref:7.2f} s   toolkit {t_ours:6.2f} s   ratio {t_ref / t_ours:5.1f}x   "
        f"(median of {repeats})   lower bound {ref.lower_bound_:.10f} vs {ours.lower_bound_:.10f}"
    )


def single_threaded() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return options


def inference_speed(covariance_type: str, X: np.ndarray) -> None:
    from skl2onnx import to_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(8, covariance_type=covariance_type, max_iter=20, random_state=0, device="cpu").fit(X)
        ref = SklearnGaussianMixture(8, covariance_type=covariance_type, max_iter=20, random_state=0).fit(X)
    with tempfile.TemporaryDirectory() as folder:
        export(ours, folder)
        session = load(folder, intra_op_num_threads=1).session
        theirs = ort.InferenceSession(
            to_onnx(ref, X[:1].astype(np.float64), target_opset=18).SerializeToString(),
            sess_options=single_threaded(),
            providers=["CPUExecutionProvider"],
        )
        their_input = theirs.get_inputs()[0].name
        for batch in (1, 1000):
            rows = X[:batch]
            t_ours, t_theirs = interleaved_ms(
                [lambda: session.run(None, {"X": rows}), lambda: theirs.run(None, {their_input: rows})]
            )
            print(
                f"ONNX {covariance_type:9s} batch {batch:4d}: toolkit {t_ours:.4f} ms   skl2onnx {t_theirs:.4f} ms   "
                f"ratio {t_theirs / t_ours:.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    X, _ = make_blobs(args.n, n_features=16, centers=8, cluster_std=2.0, random_state=0)
    print(f"n={args.n:,} d=16 k=8, {args.iterations} EM iterations, float64")
    fit_speed(X, "full", args.iterations, args.repeats)
    fit_speed(X, "diag", args.iterations, args.repeats)
    for covariance_type in ("full", "tied", "diag", "spherical"):
        inference_speed(covariance_type, X[:20_000])


if __name__ == "__main__":
    main()
