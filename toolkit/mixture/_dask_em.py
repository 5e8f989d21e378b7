"""EM over a dask array of rows: each block's sufficient statistics computed where the block
lives, summed across workers, one pass over the data per iteration.

Per iteration the client turns the parameters into the kernel's arguments (a few KB, one
task every block task depends on), each block task runs the compiled pass over its rows
(``_kernel_pass``: numpy and the C kernel, no torch on the worker) and returns
[summed log-likelihood, resp' z] (1 + K x width floats), dask's tree reduction adds those up,
and the client runs the M-step. What crosses the network per block and iteration is therefore
K (1 + D + D(D+1)/2)-ish floats, not rows. A worker whose CPU has no kernel build runs the
torch pass on its block instead (importing torch there).

The first pass also checks that every block is finite (the error names the block and its
rows) and gives the centring shift (the column means), as the in-memory fit computes them.
"""

from __future__ import annotations

import warnings

import numpy as np

from toolkit._dask import ClusterRunner, dask_rows
from toolkit.mixture import _kernel_pass
from toolkit.mixture._kernel_pass import KernelArguments, kernel_pass, runs_here

INIT_SAMPLE_ROWS = 100_000  # rows drawn (at random) for data-driven initialisations


def block_sums(rows: np.ndarray, block: int, start: int) -> np.ndarray:
    """[column sums] of one block (float64), after checking it is finite."""
    finite = np.isfinite(rows)
    if not finite.all():
        row = start + int(np.argmin(finite.all(axis=1)))
        raise ValueError(
            f"Input X contains NaN or infinity: block {block} (rows {start} to {start + len(rows) - 1}), "
            f"first at row {row}"
        )
    return rows.sum(axis=0, dtype=np.float64)


def kernel_built() -> bool:
    """Whether this process has the compiled kernel (its layout is needed to make its arguments)."""
    return _kernel_pass.kernel is not None


def block_statistics(
    rows: np.ndarray, block: int, start: int, arguments: KernelArguments | None, torch_state: tuple, dtype: str
) -> np.ndarray:
    """[summed log-likelihood, resp' z flattened] of one block under the current mixture."""
    rows = np.ascontiguousarray(rows, dtype=dtype)
    if arguments is not None and runs_here():
        moments = arguments.moments_buffer()[0]
        total = kernel_pass(rows, arguments, moments)
        statistics = arguments.statistics(moments)
    else:
        total, statistics = _torch_block_statistics(rows, *torch_state)
    return np.concatenate([[total], statistics.ravel()])


def _torch_block_statistics(rows, weights, means, precisions_cholesky, shift, covariance_type, batch_size):
    import torch

    from toolkit.mixture._gaussian_math import MomentFeatures, torch_pass

    X = torch.from_numpy(rows)
    state = [torch.from_numpy(np.asarray(a)).to(X.dtype) for a in (weights, means, precisions_cholesky, shift)]
    features = MomentFeatures(min(batch_size, len(rows)), rows.shape[1], covariance_type, X.dtype, X.device)
    total, moments = torch_pass(X, *state[:3], state[3], features, batch_size)
    return total.item(), moments.numpy()


def _one_row_of(rows: np.ndarray, function, *shared, block_info=None) -> np.ndarray:
    """function(rows, block index, first row, *shared) as a (1, size) block."""
    where = block_info[0]
    return function(rows, where["chunk-location"][0], where["array-location"][0][0], *shared)[np.newaxis]


def _apply(rows: np.ndarray, model, method: str) -> np.ndarray:
    with warnings.catch_warnings():  # the blocks of a DataFrame are bare arrays; its names were checked
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return getattr(model, method)(rows)


class DaskRows:
    """The training rows of a fit given a dask array or DataFrame (see GaussianMixture.fit)."""

    def __init__(self, model, X, *, reset: bool) -> None:
        self.X = dask_rows(X, model, reset=reset)
        self.runner = ClusterRunner()
        self.n_samples, self.n_features = (int(s) for s in self.X.shape)
        self.dtype = np.dtype(np.float32) if self.X.dtype == np.float32 else np.dtype(np.float64)
        self.starts = np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]]).astype(int)

    def _per_block(self, function, *shared, size: int, step: str) -> np.ndarray:
        """The sum over blocks of function(rows, block, first row, *shared) -> (size,) floats,
        by dask's tree reduction on the cluster. One blockwise task per block, which dask fuses
        with whatever produces the block (a read, a generator), so that a block is dropped as
        soon as its statistics are out; ``shared`` is sent once, not per block."""
        import dask

        shared = [dask.delayed(a, pure=True, traverse=False) for a in shared]
        partial = self.X.map_blocks(
            _one_row_of,
            function,
            *shared,
            chunks=((1,) * len(self.starts), (size,)),
            dtype=np.float64,
            meta=np.empty((0, 0)),
        )
        return self.runner.compute(partial.sum(axis=0), step)

    def mean(self) -> np.ndarray:
        """Column means, after every block was checked finite (one pass)."""
        sums = self._per_block(block_sums, size=self.n_features, step="the first pass (column means, finiteness)")
        return sums / self.n_samples

    def initial_rows(self, random_state) -> np.ndarray:
        """A uniform sample of at most INIT_SAMPLE_ROWS rows (all rows when fewer), sorted, in memory."""
        if self.n_samples <= INIT_SAMPLE_ROWS:
            chosen = np.arange(self.n_samples)
        else:
            chosen = np.unique(random_state.randint(0, self.n_samples, INIT_SAMPLE_ROWS))
        return np.asarray(self.runner.compute(self.X[chosen], "drawing the initialisation sample"), dtype=self.dtype)

    def device(self, model):
        """The M-step runs on the client's CPU (the blocks' passes on the workers')."""
        import torch

        return torch.device("cpu")

    def e_step(self, model):
        """(callable () -> (mean log-likelihood, statistics) under the model's current parameters,
        the context to run EM in)."""
        import contextlib

        import torch

        from toolkit.mixture._fused_pass import kernel_arguments
        from toolkit.mixture._gaussian_math import MomentFeatures

        features = MomentFeatures(0, self.n_features, model.covariance_type, torch.float64, torch.device("cpu"))
        k, width = model.n_components, features.width  # the layout only: no buffers
        iteration = [0]

        def run():
            iteration[0] += 1
            state = [t.detach().cpu().double() for t in model._state()]
            shift = model._shift.detach().cpu().double()
            # None where this client has no kernel build: the workers then take the torch pass
            arguments = kernel_arguments(*state, shift, model.covariance_type) if kernel_built() else None
            torch_state = (*(t.numpy() for t in state), shift.numpy(), model.covariance_type, model.batch_size)
            summed = self._per_block(
                block_statistics,
                arguments,
                torch_state,
                model.dtype,
                size=1 + k * width,
                step=f"EM iteration {iteration[0]}",
            )
            moments = torch.from_numpy(summed[1:].reshape(k, width).copy())
            return float(summed[0]) / self.n_samples, features.statistics(moments)

        return run, contextlib.nullcontext()

    def labels(self, model):
        """The fitted model's components of the rows, lazily (a dask array)."""
        return self.map(model, "predict")

    def map(self, model, method: str):
        """model.method over each block, lazily: labels / log-densities (n,) or posteriors (n, K)."""
        if method == "predict_proba":
            return self.X.map_blocks(
                _apply,
                model,
                method,
                chunks=(self.X.chunks[0], (model.n_components,)),
                meta=np.empty((0, 0), dtype=self.dtype),
            )
        dtype = np.int64 if method == "predict" else self.dtype
        return self.X.map_blocks(_apply, model, method, drop_axis=1, meta=np.empty((0,), dtype=dtype))
