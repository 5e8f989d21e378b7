"""The compiled EM kernel's pass over rows, in numpy only.

This module imports neither torch nor scikit-learn: it is what a Dask worker loads to run
EM over the blocks it holds (toolkit/mixture/_dask_em.py), and what the in-memory fit's
threads call (toolkit/mixture/_fused_pass.py). The client turns the mixture's parameters
into the kernel's arguments (``KernelArguments``: a whitening per component and the moments'
layout); each call then computes a block's log-likelihood and its sufficient statistics.

The environment variable TOOLKIT_EM_BUILD picks the build, for tests and benchmarks that
compare them: "auto" (the default: the widest this CPU runs), "avx512" or "avx2". It is a
private setting, read at each pass, not part of the API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from toolkit._kernels import load_kernel

kernel = load_kernel("toolkit.mixture._em_kernel", "the torch pass")
BUILD_VARIABLE = "TOOLKIT_EM_BUILD"


def requested_build() -> str:
    """The build TOOLKIT_EM_BUILD asks for: "auto" (default), "avx512" or "avx2"."""
    return os.environ.get(BUILD_VARIABLE, "auto")


def runs_here() -> bool:
    """Whether the kernel was built and this CPU runs one of its builds (AVX-512 or AVX2)."""
    return kernel is not None and kernel.supported()


@dataclass(frozen=True)
class KernelArguments:
    """One EM iteration's parameters in the kernel's padded layout (float64 numpy arrays).

    ``weight`` (K, dp, dp) and ``bias`` (K, dp) whiten the centred rows per component,
    ``constant`` (K,) is log pi_k + log |P_k|^(1/2) - D log(2 pi) / 2, ``pair_a`` / ``pair_b``
    list the second-order products of the moments' layout, ``width`` its number of columns.
    """

    shift: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    constant: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray
    n_features: int
    n_components: int
    width: int

    @property
    def padded(self) -> tuple[int, int, int]:
        """(dp, kp, fp): the kernel's padded feature, component and moment counts."""
        return kernel.layout(self.n_features, self.n_components, len(self.pair_a))

    def moments_buffer(self, n_parts: int = 1) -> np.ndarray:
        """Zeroed (n_parts, kp, fp) moments for the kernel to accumulate into."""
        _, kp, fp = self.padded
        return np.zeros((n_parts, kp, fp))

    def statistics(self, moments: np.ndarray) -> np.ndarray:
        """The (K, width) block of the padded moments that holds resp' z."""
        return moments[: self.n_components, : self.width]


def kernel_pass(rows: np.ndarray, arguments: KernelArguments, moments: np.ndarray) -> float:
    """Add the rows' moments resp' z to ``moments`` (kp, fp); return their summed log-likelihood.

    ``rows`` must be C-contiguous float32 or float64 (float32 rows are read as such and
    computed in float64). The kernel releases the GIL.
    """
    a = arguments
    return kernel.pass_statistics(
        rows,
        a.shift,
        a.weight,
        a.bias,
        a.constant,
        a.pair_a,
        a.pair_b,
        moments,
        len(rows),
        a.n_features,
        a.n_components,
        rows.dtype == np.float32,
        requested_build(),
    )
