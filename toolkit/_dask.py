"""What the estimators share when given Dask collections.

Recognising a collection without importing dask, checking a dask array or DataFrame of
rows (known chunk sizes, numeric columns), and running computations on the distributed
client that was current when a fit began: once that cluster is gone a computation raises
``ClusterLost`` here, where dask itself would quietly fall back to computing in this
process (and pull data meant for the cluster into it).
"""

from __future__ import annotations

import sys
from concurrent.futures import CancelledError

import numpy as np


def is_dask_collection(obj) -> bool:
    """Whether ``obj`` is a dask array, DataFrame or other collection (False when dask is not imported)."""
    if "dask" not in sys.modules:
        return False
    import dask

    return dask.is_dask_collection(obj)


class ClusterLost(RuntimeError):
    """The Dask cluster a computation ran on went away, or its workers kept dying."""


class ClusterRunner:
    """``compute`` on the distributed Client current at construction, or on dask's own
    scheduler when there is none."""

    def __init__(self) -> None:
        self.client = None
        if "distributed" in sys.modules:
            from distributed import get_client

            try:
                self.client = get_client()
            except ValueError:  # no client: dask's local scheduler
                pass

    def compute(self, collection, step: str):
        """The computed value of ``collection``; ``step`` says what it was for in errors."""
        if self.client is None:
            return collection.compute()
        from distributed import KilledWorker

        if self.client.status != "running":
            raise ClusterLost(f"the Dask client's cluster is gone ({self.client.status}) before {step}")
        try:
            return self.client.compute(collection).result()
        except KilledWorker as error:
            raise ClusterLost(
                f"Dask workers kept dying during {step} ({error}); a worker past its memory limit is "
                "restarted by its nanny: give the workers more memory or X smaller chunks"
            ) from error
        except (CancelledError, OSError, TimeoutError) as error:
            raise ClusterLost(
                f"the Dask cluster went away during {step} ({type(error).__name__}: {error}); the fit was abandoned"
            ) from error


def dask_rows(X, estimator, *, reset: bool):
    """X (a 2-D dask array or dask DataFrame) as a dask array of rows, one chunk across columns.

    Sets or checks ``n_features_in_`` / ``feature_names_in_`` as scikit-learn's validate_data
    does. Errors name the problem: a 1-D or 3-D array, unknown chunk sizes (a ``.values`` of a
    DataFrame), non-numeric columns or dtypes.
    """
    import dask.array as da
    import dask.dataframe as dd
    from sklearn.utils.validation import validate_data

    from toolkit._input_checks import reject_non_numeric_columns

    if isinstance(X, dd.Series):
        raise ValueError("Expected a 2-D dask array or DataFrame of rows, got a dask Series; use X.to_frame()")
    if isinstance(X, dd.DataFrame):
        empty = X._meta  # an empty pandas frame with X's columns and dtypes
        reject_non_numeric_columns(empty)
        validate_data(estimator, empty, reset=reset, skip_check_array=True)
        return X.to_dask_array(lengths=True).rechunk({1: -1})
    if not isinstance(X, da.Array):
        raise TypeError(f"Expected a dask array or DataFrame, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array of rows (n_samples, n_features), got shape {X.shape}")
    if any(np.isnan(size) for size in X.chunks[0]):
        raise ValueError(
            "X has unknown chunk sizes (NaN row counts, as from a dask DataFrame's .values): call "
            "X.compute_chunk_sizes() first, or pass the DataFrame itself"
        )
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers; this dask array's dtype is {X.dtype}")
    validate_data(estimator, X, reset=reset, skip_check_array=True)
    return X.rechunk({1: -1})
