"""The EM pass of mixtures on the CPU, by the compiled kernel in _em_kernel.c.

The torch pass (GaussianMixture._e_step_pass) writes each block's features and
log-probabilities to memory and reads them back in two GEMMs; on the CPU that is bound by
cache traffic and by BLAS, whose float64 kernels run AVX2 code on AMD CPUs. The compiled
kernel does the same arithmetic per tile of rows while the tile is in cache, built for AVX-512
(about 3x fewer seconds per pass than the torch pass; 6x for float32 fits, whose torch pass is
slower: the kernel reads float32 rows and computes in float64) and for AVX2 (about 1.7x). The
kernel is built when the package is installed; where no C compiler was found ``kernel`` is
None (a kernel that was built but fails to import says so in a warning), and on CPUs with
neither instruction set it is not used: the torch pass runs. ``toolkit.show_config()`` says
which pass a fit takes.

The environment variable TOOLKIT_EM_BUILD picks the build, for tests and benchmarks that
compare them: "auto" (the default: the widest this CPU runs), "avx512" or "avx2". It is a
private setting, read at each pass, not part of the API.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from toolkit._kernels import load_kernel
from toolkit.mixture._gaussian_math import MomentFeatures, log_normaliser, whitening

kernel = load_kernel("toolkit.mixture._em_kernel", "the torch pass")
BUILD_VARIABLE = "TOOLKIT_EM_BUILD"


def requested_build() -> str:
    """The build TOOLKIT_EM_BUILD asks for: "auto" (default), "avx512" or "avx2"."""
    return os.environ.get(BUILD_VARIABLE, "auto")


def applies(device: torch.device) -> bool:
    """Whether the compiled pass serves a fit: on a CPU with AVX-512 or AVX2, the kernel built."""
    return kernel is not None and device.type == "cpu" and kernel.supported()


@contextlib.contextmanager
def single_threaded_torch():
    """torch on one thread inside the block, its thread count restored after."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n_threads)


class FusedPass:
    """One EM pass over X: mean log-likelihood and the sufficient statistics of the
    responsibilities, on as many threads as torch had when this was built, each over its own
    range of rows. The kernel computes the moments resp' z in MomentFeatures' layout, whose
    ``statistics`` turns them into N_k, sums of x and second moments."""

    def __init__(self, X: np.ndarray, covariance_type: str, n_components: int) -> None:
        if X.dtype not in (np.float32, np.float64):
            raise TypeError(f"the compiled EM pass reads float32 or float64 rows, got {X.dtype}")
        self.X = np.ascontiguousarray(X)
        features = MomentFeatures(0, X.shape[1], covariance_type, torch.float64, torch.device("cpu"))  # the layout only
        self.features, self.n_components = features, n_components
        self.pair_a, self.pair_b = (np.ascontiguousarray(index.numpy(), dtype=np.int64) for index in features.pairs())
        self.padded = kernel.layout(X.shape[1], n_components, len(self.pair_a))
        self.n_threads = max(1, min(torch.get_num_threads(), X.shape[0] // 1024))

    def __call__(
        self, weights, means, precisions_cholesky, shift, covariance_type: str
    ) -> tuple[float, dict[str, torch.Tensor]]:
        """Mean log-likelihood of X under the mixture and the sufficient statistics of its responsibilities."""
        n, d = self.X.shape
        k = self.n_components
        dp, kp, fp = self.padded
        weights, means, precisions_cholesky, shift = (t.double() for t in (weights, means, precisions_cholesky, shift))
        factors, offsets = whitening(means, precisions_cholesky, covariance_type)
        weight, bias = np.zeros((k, dp, dp)), np.zeros((k, dp))
        weight[:, :d, :d], bias[:, :d] = factors.numpy(), offsets.numpy()
        constant = np.ascontiguousarray(log_normaliser(weights, precisions_cholesky, covariance_type, d).numpy())
        arguments = (np.ascontiguousarray(shift.numpy()), weight, bias, constant, self.pair_a, self.pair_b)
        single = self.X.dtype == np.float32
        n_threads = self.n_threads
        bounds = np.linspace(0, n, n_threads + 1).astype(int)
        moments = np.zeros((n_threads, kp, fp))

        def run(part: int) -> float:
            rows = self.X[bounds[part] : bounds[part + 1]]
            return kernel.pass_statistics(rows, *arguments, moments[part], len(rows), d, k, single, requested_build())

        if n_threads == 1:
            total = run(0)
        else:  # the kernel releases the GIL
            with ThreadPoolExecutor(n_threads - 1) as pool:
                others = [pool.submit(run, part) for part in range(1, n_threads)]
                total = run(0) + sum(other.result() for other in others)
        summed = torch.from_numpy(moments.sum(axis=0)[:k, : self.features.width])
        return total / n, self.features.statistics(summed)
