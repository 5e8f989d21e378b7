"""ARForecaster fitted on a Dask cluster: groups of series solved by the panel solver where
the data lives, the per-series results gathered into one fit.

A wide dask DataFrame (time along rows, one column per series) becomes a dask array rechunked
into blocks of (every time, a group of series), each solved by one task. A long frame
(:func:`long_panel`) is shuffled by series id so that each partition holds whole series, and
each task pivots its partition to wide and solves it. The workers get the specification (a
plain :class:`~toolkit.timeseries._ar_spec.ARSpecification`) and return their series' names,
values and least-squares results; the client concatenates them in the in-memory fit's series
order (a wide frame's column order, a long frame's sorted series ids, as ``DataFrame.pivot``
gives), so that the fit equals the in-memory panel fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit._dask import ClusterRunner
from toolkit._input_checks import reject_non_numeric_columns
from toolkit.timeseries._ar_math import ARFit
from toolkit.timeseries._ar_spec import ARSpecification
from toolkit.timeseries._long_panel import LongPanel
from toolkit.timeseries._panel import Panel

SERIES_PER_TASK = 1000  # at most; a wide frame is cut into at least as many groups as it has partitions


def solve_group(spec: ARSpecification, frame: pd.DataFrame, times: pd.Index, long: bool):
    """(series names, values (M, n), ARFit) of one group of series: a wide pandas frame, or the
    pivot of a long partition (``long``), put on the panel's ``times``. A series missing one of
    those times, or holding NaN, is named in the error."""
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
    panel = Panel.from_data(frame)
    panel.check_finite()
    return panel.columns, panel.values, spec.solve(panel.values)


def pivot_partition(part: pd.DataFrame, series: str, time: str, value: str) -> pd.DataFrame:
    """A long partition as a wide frame: times along rows, one column per series, sorted."""
    duplicated = part.duplicated([series, time])
    if duplicated.any():
        row = part[duplicated].iloc[0]
        raise ValueError(f"series {row[series]!r} has more than one value at time {row[time]!r}")
    return part.pivot(index=time, columns=series, values=value).sort_index().sort_index(axis=1)


@dataclass
class DaskPanel:
    """A panel on the cluster, cut into groups of series (delayed wide pandas frames), with the
    times it is observed at (read from the data) and the cluster that computes it."""

    times: pd.Index
    groups: list
    long: bool
    runner: ClusterRunner


def read_panel(y) -> DaskPanel:
    """The groups and times of a wide dask DataFrame, a 2-D dask array (time x series) or a
    LongPanel; TypeError for anything else."""
    import dask
    import dask.array as da
    import dask.dataframe as dd

    runner = ClusterRunner()
    if isinstance(y, LongPanel):
        frame = y.frame[[y.series, y.time, y.value]]
        times = pd.Index(np.sort(runner.compute(frame[y.time].drop_duplicates(), "reading the panel's times")))
        times.name = y.time
        shuffled = frame.shuffle(on=y.series, npartitions=frame.npartitions)
        groups = [dask.delayed(pivot_partition)(part, y.series, y.time, y.value) for part in shuffled.to_delayed()]
        return DaskPanel(times, groups, True, runner)
    if not isinstance(y, (dd.DataFrame, da.Array)):
        raise TypeError(
            f"a Dask y must be a wide dask DataFrame (one column per series), a 2-D dask array (time x series) "
            "or a long_panel(...), "
            f"got {type(y).__name__}"
        )
    if isinstance(y, dd.DataFrame):
        reject_non_numeric_columns(y._meta, "y")
        times = runner.compute(y.index, "reading the panel's index")
        columns = list(y.columns)
        array = y.to_dask_array(lengths=True)
    else:  # time x series, as a 2-D array fitted in memory
        if y.ndim != 2 or any(np.isnan(size) for size in y.chunks[0]):
            raise ValueError(f"a dask array y must be 2-D (time x series) with known chunk sizes, got shape {y.shape}")
        times, columns, array = pd.RangeIndex(y.shape[0]), list(range(y.shape[1])), y
    n_groups = min(len(columns), max(array.numblocks[0], math.ceil(len(columns) / SERIES_PER_TASK)))
    # numpy blocks of (all times, a group of series): rechunking moves arrays, not wide pandas frames
    array = array.astype(np.float64).rechunk({0: -1, 1: math.ceil(len(columns) / n_groups)})
    starts = np.cumsum((0,) + array.chunks[1])
    groups = [
        dask.delayed(pd.DataFrame)(block, index=times, columns=columns[a:b])
        for block, a, b in zip(array.to_delayed().ravel(), starts[:-1], starts[1:])
    ]
    return DaskPanel(times, groups, False, runner)


def solve_on_cluster(panel: DaskPanel, spec: ARSpecification) -> tuple[ARFit, Panel]:
    """The fit of every series of ``panel`` under ``spec``, solved group by group on the
    cluster, and the series themselves, in the in-memory fit's series order."""
    import dask

    shipped = dask.delayed(spec, pure=True, traverse=False)  # sent to the workers once, as it is
    solved = [dask.delayed(solve_group)(shipped, group, panel.times, panel.long) for group in panel.groups]
    parts = [part for part in panel.runner.compute(dask.delayed(list)(solved), "fitting the series") if part[0]]
    columns = [column for part in parts for column in part[0]]
    order = np.argsort(np.asarray(columns, dtype=object)) if panel.long else np.arange(len(columns))
    values = np.concatenate([part[1] for part in parts])[order]
    result = ARFit(
        np.concatenate([part[2].params for part in parts])[order],
        np.concatenate([part[2].ssr for part in parts])[order],
        np.concatenate([part[2].inverse_gram for part in parts])[order],
        parts[0][2].nobs,
    )
    return result, Panel(values, panel.times, [columns[i] for i in order])
