"""A panel in long layout (one row per series and time), for fits on a Dask cluster."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LongPanel:
    """A dask DataFrame of rows (series id, time, value) and which column is which.

    Made by :func:`long_panel`; ``ARForecaster.fit`` takes it as ``y``.
    """

    frame: object
    series: str
    time: str
    value: str


def long_panel(frame, *, series: str = "series", time: str = "time", value: str = "value") -> LongPanel:
    """Mark a dask DataFrame in long layout as a panel for ``ARForecaster.fit``.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        One row per (series, time) with the observation in ``value``. Every series must be
        observed at the same times (as a wide panel's columns share one index).
    series, time, value : str
        The columns holding the series id, the time stamp and the observation.

    Returns
    -------
    LongPanel

    Examples
    --------
    >>> ARForecaster(lags=2).fit(long_panel(ddf, series="store", time="week", value="sales"))  # doctest: +SKIP
    """
    missing = [name for name in (series, time, value) if name not in frame.columns]
    if missing:
        raise ValueError(f"the frame has no column(s) {missing}; its columns are {list(frame.columns)}")
    return LongPanel(frame, series, time, value)
