"""Series as the AR maths takes them: a panel of M series on one index, values (M, n).

One series is a panel of one. :class:`Panel` is made from what a user gives (a Series, a
DataFrame of series, an array) and turns results back into that layout
(:meth:`Panel.wrap`, :meth:`Panel.per_series`): the pandas containers live at these edges,
never inside the maths.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit._input_checks import reject_non_numeric_columns


class FrequencyWarning(UserWarning):
    """A DatetimeIndex without a frequency: forecasts are indexed by integers."""


@dataclass(frozen=True)
class Panel:
    """M series observed at the times of ``index``.

    Parameters
    ----------
    values : ndarray of shape (M, n)
        float64, one row per series.
    index : Index
        The n observation times (labels).
    columns : list or None
        The series' names in a panel (a DataFrame's columns, or 0..M-1 for a 2-D array);
        None for one series, which comes back as a Series.
    name : hashable or None
        One series' name (a Series' ``name``).
    """

    values: np.ndarray
    index: pd.Index
    columns: list | None = None
    name: object = None

    @classmethod
    def from_data(cls, y, what: str = "y") -> Panel:
        """The panel of a Series, a DataFrame (one series per column) or a 1-D / 2-D array
        (time along rows); TypeError / ValueError naming what is wrong."""
        if isinstance(y, pd.DataFrame):
            reject_non_numeric_columns(y, what)
            return cls(y.to_numpy(dtype=np.float64).T.copy(), y.index, list(y.columns))
        if isinstance(y, pd.Series):
            if not pd.api.types.is_numeric_dtype(y.dtype):
                raise TypeError(f"{what} must be numeric, got dtype {y.dtype}")
            return cls(y.to_numpy(dtype=np.float64)[None], y.index, None, y.name)
        try:
            values = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be numeric: a Series, a DataFrame of series or a 1-D / 2-D array") from None
        if values.ndim == 1:
            return cls(values[None], pd.RangeIndex(len(values)))
        if values.ndim == 2:
            return cls(values.T.copy(), pd.RangeIndex(values.shape[0]), list(range(values.shape[1])))
        raise ValueError(f"{what} must be 1-D (one series) or 2-D (time x series), got shape {values.shape}")

    @property
    def single(self) -> bool:
        """One series (results come back as Series and floats), not a panel."""
        return self.columns is None

    @property
    def n_series(self) -> int:
        return self.values.shape[0]

    @property
    def n_obs(self) -> int:
        return self.values.shape[1]

    @property
    def label(self) -> str:
        """The series' name in parameter names (``y.L1``): its ``name``, else "y"."""
        return "y" if self.name is None else str(self.name)

    def check_finite(self) -> None:
        """ValueError naming the first NaN or infinite value (and its column in a panel)."""
        bad = ~np.isfinite(self.values)
        if bad.any():
            row, position = np.argwhere(bad)[0]
            where = f" in column {self.columns[row]!r}" if self.columns is not None else ""
            raise ValueError(
                f"y contains {int(bad.sum())} NaN or infinite value(s){where}, first at position {position}; "
                "AR estimation needs a complete series (fill or trim it first)"
            )

    def same_layout(self, other: Panel) -> bool:
        """Whether ``other`` has this panel's series (both single, or the same columns in order)."""
        return self.single == other.single and (self.single or list(other.columns) == list(self.columns))

    def extended(self, values: np.ndarray, index: pd.Index) -> Panel:
        """This panel with observations (M, k) appended at ``index``."""
        return Panel(np.concatenate([self.values, values], axis=1), self.index.append(index), self.columns, self.name)

    def wrap(self, values: np.ndarray, index: pd.Index) -> pd.Series | pd.DataFrame:
        """(M, h) values as a Series (one series) or a DataFrame (a column per series) on ``index``."""
        if self.single:
            return pd.Series(values[0], index=index, name=self.name)
        return pd.DataFrame(values.T, index=index, columns=self.columns)

    def per_series(self, values: np.ndarray) -> float | pd.Series:
        """One statistic per series (M,): a float for one series, a Series over a panel's columns."""
        return float(values[0]) if self.single else pd.Series(values, index=self.columns)


def future_index(index: pd.Index, horizon: int) -> pd.Index:
    """The ``horizon`` time stamps after ``index``, or integers when its frequency is unknown."""
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(index[-1] + 1, periods=horizon, freq=index.freq)
    if isinstance(index, pd.DatetimeIndex):
        freq = index.freq or (pd.DatetimeIndex(index, freq="infer").freq if len(index) >= 3 else None)
        if freq is not None:
            return pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:]
        warnings.warn(
            "y's DatetimeIndex has no frequency and none can be inferred; forecasts are indexed by "
            "integer positions after the training sample. Give the index a freq to get time stamps.",
            FrequencyWarning,
            stacklevel=3,
        )
        return pd.RangeIndex(len(index), len(index) + horizon)
    if isinstance(index, pd.RangeIndex):
        return pd.RangeIndex(index[-1] + index.step, index[-1] + index.step * (horizon + 1), index.step)
    return pd.RangeIndex(len(index), len(index) + horizon)
