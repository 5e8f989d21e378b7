"""The EM pass of mixtures on the CPU, by the compiled kernel in _em_kernel.c.

The torch pass (``_gaussian_math.torch_pass``) writes each block's features and
log-probabilities to memory and reads them back in two GEMMs; on the CPU that is bound by
cache traffic and by BLAS, whose float64 kernels run AVX2 code on AMD CPUs. The compiled
kernel does the same arithmetic per tile of rows while the tile is in cache, built for AVX-512
(about 3x fewer seconds per pass than the torch pass; 6x for float32 fits, whose torch pass is
slower: the kernel reads float32 rows and computes in float64) and for AVX2 (about 1.7x). The
kernel is built when the package is installed; where no C compiler was found ``kernel`` is
None (a kernel that was built but fails to import says so in a warning), and on CPUs with
neither instruction set it is not used: the torch pass runs. ``toolkit.show_config()`` says
which pass a fit takes. The kernel call itself lives in ``_kernel_pass`` (numpy only), which
Dask workers also run.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from toolkit.mixture import _kernel_pass
from toolkit.mixture._gaussian_math import MomentFeatures, log_normaliser, whitening
from toolkit.mixture._kernel_pass import BUILD_VARIABLE, KernelArguments, kernel_pass, requested_build

kernel = _kernel_pass.kernel
__all__ = ["BUILD_VARIABLE", "FusedPass", "applies", "kernel_arguments", "requested_build", "single_threaded_torch"]


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


def kernel_arguments(weights, means, precisions_cholesky, shift, covariance_type: str) -> KernelArguments:
    """The kernel's arguments for one EM iteration from the mixture's (torch) parameters."""
    k, d = means.shape
    weights, means, precisions_cholesky, shift = (
        t.double().cpu() for t in (weights, means, precisions_cholesky, shift)
    )
    features = MomentFeatures(0, d, covariance_type, torch.float64, torch.device("cpu"))  # the layout only
    pair_a, pair_b = (np.ascontiguousarray(index.numpy(), dtype=np.int64) for index in features.pairs())
    dp, _, _ = kernel.layout(d, k, len(pair_a))
    factors, offsets = whitening(means, precisions_cholesky, covariance_type)
    weight, bias = np.zeros((k, dp, dp)), np.zeros((k, dp))
    weight[:, :d, :d], bias[:, :d] = factors.numpy(), offsets.numpy()
    constant = np.ascontiguousarray(log_normaliser(weights, precisions_cholesky, covariance_type, d).numpy())
    return KernelArguments(
        np.ascontiguousarray(shift.numpy()), weight, bias, constant, pair_a, pair_b, d, k, features.width
    )


class FusedPass:
    """One EM pass over X: mean log-likelihood and the sufficient statistics of the
    responsibilities, on as many threads as torch had when this was built, each over its own
    range of rows. The kernel computes the moments resp' z in MomentFeatures' layout, whose
    ``statistics`` turns them into N_k, sums of x and second moments."""

    def __init__(self, X: np.ndarray, covariance_type: str, n_components: int) -> None:
        if X.dtype not in (np.float32, np.float64):
            raise TypeError(f"the compiled EM pass reads float32 or float64 rows, got {X.dtype}")
        self.X = np.ascontiguousarray(X)
        self.features = MomentFeatures(0, X.shape[1], covariance_type, torch.float64, torch.device("cpu"))
        self.covariance_type, self.n_components = covariance_type, n_components
        self.n_threads = max(1, min(torch.get_num_threads(), X.shape[0] // 1024))

    def __call__(
        self, weights, means, precisions_cholesky, shift, covariance_type: str
    ) -> tuple[float, dict[str, torch.Tensor]]:
        """Mean log-likelihood of X under the mixture and the sufficient statistics of its responsibilities."""
        n = self.X.shape[0]
        arguments = kernel_arguments(weights, means, precisions_cholesky, shift, covariance_type)
        bounds = np.linspace(0, n, self.n_threads + 1).astype(int)
        moments = arguments.moments_buffer(self.n_threads)

        def run(part: int) -> float:
            return kernel_pass(self.X[bounds[part] : bounds[part + 1]], arguments, moments[part])

        if self.n_threads == 1:
            total = run(0)
        else:  # the kernel releases the GIL
            with ThreadPoolExecutor(self.n_threads - 1) as pool:
                others = [pool.submit(run, part) for part in range(1, self.n_threads)]
                total = run(0) + sum(other.result() for other in others)
        summed = torch.from_numpy(arguments.statistics(moments.sum(axis=0)).copy())
        return total / n, self.features.statistics(summed)
