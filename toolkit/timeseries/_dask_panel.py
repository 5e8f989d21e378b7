"""ARForecaster fitted on a Dask cluster: groups of series solved by the panel solver where
the data lives, the per-series results gathered into one fitted forecaster.

A wide dask DataFrame (time along rows, one column per series) becomes a dask array rechunked
into blocks of (every time, a group of series), each solved by one task. A long frame
(:func:`long_panel`) is shuffled by series id so that each partition holds whole series, and
each task pivots its partition to wide and solves it. Tasks return their series' names,
values and least-squares results (an ``ARFit``: parameters, residual sums, (X'X)^-1 per
series); the client concatenates them in the in-memory fit's series order (a wide frame's
column order, a long frame's sorted series ids, as ``DataFrame.pivot`` gives) and stores them
as ``fit`` does, so that every attribute and forecast equals the in-memory panel fit. The
fitted forecaster keeps the series' values (``history_``) for its forecasts and residuals.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from toolkit._dask import ClusterRunner
from toolkit._input_checks import reject_non_numeric_columns
from toolkit.timeseries._ar_math import ARFit
from toolkit.timeseries._long_panel import LongPanel

SERIES_PER_TASK = 1000  # at most; a wide frame is cut into at least as many groups as it has partitions


def solve_group(forecaster, frame: pd.DataFrame, lags: list[int], hold_back: int, times: pd.Index, long: bool):
    """(series names, values (M, n), ARFit) of one group of series: a wide pandas frame, or the
    pivot of a long partition (``long``), put on the panel's ``times``. A series missing one of
    those times, or holding NaN, is named in the error."""
    from toolkit.timeseries._ar import _as_panel, _check_finite

    if len(frame.columns) == 0:  # an empty partition of a shuffled long frame
        return [], None, None
    if long:
        frame = frame.reindex(times)
        missing = frame.isna()
        if missing.any().any():
            incomplete = frame.columns[missing.any()].tolist()
            first = times[missing[incomplete[0]].to_numpy()][0]
            raise ValueError(
                f"series {incomplete[:5]}{' ...' if len(incomplete) > 5 else ''} are not observed at every time "
                f"of the panel ({incomplete[0]!r} has no value at {first}); AR estimation needs complete series "
                "on one common time index"
            )
    values, _, columns, _ = _as_panel(frame)
    _check_finite(values, columns)
    return columns, values, forecaster._solve(values, None, lags, hold_back)


def pivot_partition(part: pd.DataFrame, series: str, time: str, value: str) -> pd.DataFrame:
    """A long partition as a wide frame: times along rows, one column per series, sorted."""
    duplicated = part.duplicated([series, time])
    if duplicated.any():
        row = part[duplicated].iloc[0]
        raise ValueError(f"series {row[series]!r} has more than one value at time {row[time]!r}")
    return part.pivot(index=time, columns=series, values=value).sort_index().sort_index(axis=1)


def fit_on_cluster(forecaster, y, X=None):
    """``forecaster.fit(y)`` for a wide dask DataFrame or a LongPanel; returns the forecaster."""
    import dask
    import dask.array as da
    import dask.dataframe as dd

    if X is not None:
        raise NotImplementedError("exogenous regressors are not supported with a Dask y; fit in memory, or without X")
    if forecaster.criterion is not None:
        raise NotImplementedError("criterion (order search) is not supported with a Dask y; give lags")
    runner = ClusterRunner()
    if isinstance(y, LongPanel):
        frame = y.frame[[y.series, y.time, y.value]]
        times = pd.Index(np.sort(runner.compute(frame[y.time].drop_duplicates(), "reading the panel's times")))
        times.name = y.time
        shuffled = frame.shuffle(on=y.series, npartitions=frame.npartitions)
        groups = [dask.delayed(pivot_partition)(part, y.series, y.time, y.value) for part in shuffled.to_delayed()]
        name_order = np.argsort
    elif isinstance(y, (dd.DataFrame, da.Array)):
        if isinstance(y, dd.DataFrame):
            reject_non_numeric_columns(y._meta, "y")
            times = runner.compute(y.index, "reading the panel's index")
            columns = list(y.columns)
            array = y.to_dask_array(lengths=True)
        else:  # time x series, as a 2-D array fitted in memory
            if y.ndim != 2 or any(np.isnan(size) for size in y.chunks[0]):
                raise ValueError(
                    f"a dask array y must be 2-D (time x series) with known chunk sizes, got shape {y.shape}"
                )
            times, columns, array = pd.RangeIndex(y.shape[0]), list(range(y.shape[1])), y
        n_groups = min(len(columns), max(array.numblocks[0], math.ceil(len(columns) / SERIES_PER_TASK)))
        # numpy blocks of (all times, a group of series): rechunking moves arrays, not wide pandas frames
        array = array.astype(np.float64).rechunk({0: -1, 1: math.ceil(len(columns) / n_groups)})
        starts = np.cumsum((0,) + array.chunks[1])
        groups = [
            dask.delayed(pd.DataFrame)(block, index=times, columns=columns[a:b])
            for block, a, b in zip(array.to_delayed().ravel(), starts[:-1], starts[1:])
        ]
        name_order = None
    else:
        raise TypeError(
            f"a Dask y must be a wide dask DataFrame (one column per series), a 2-D dask array (time x series) "
            "or a long_panel(...), "
            f"got {type(y).__name__}"
        )
    forecaster._exog = None
    lags, hold_back = forecaster._specify(times, None, None)
    spec = dask.delayed(forecaster, pure=True, traverse=False)
    long = isinstance(y, LongPanel)
    solved = [dask.delayed(solve_group)(spec, group, lags, hold_back, times, long) for group in groups]
    parts = [part for part in runner.compute(dask.delayed(list)(solved), "fitting the series") if part[0]]
    columns = [column for part in parts for column in part[0]]
    order = name_order(np.asarray(columns, dtype=object)) if name_order else np.arange(len(columns))
    values = np.concatenate([part[1] for part in parts])[order]
    result = ARFit(
        np.concatenate([part[2].params for part in parts])[order],
        np.concatenate([part[2].ssr for part in parts])[order],
        np.concatenate([part[2].inverse_gram for part in parts])[order],
        parts[0][2].nobs,
    )
    columns = [columns[i] for i in order]
    return forecaster._finish(result, values, times, columns, None, None, lags, hold_back)
