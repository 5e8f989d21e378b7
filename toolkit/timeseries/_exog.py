"""Exogenous regressors of an AR-X model: checked and laid out as (n_series, n_rows, n_exog)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _as_table(X, what: str) -> tuple[np.ndarray, list[str], pd.Index | None]:
    """(values (n, e) float64, column names, index or None) of one table of regressors."""
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        try:  # no per-column dtype walk: a panel may bring thousands of these tables
            values = X.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            non_numeric = [str(c) for c, dtype in X.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
            raise TypeError(f"{what} has non-numeric column(s) {non_numeric}") from None
        return values, [str(c) for c in X.columns], X.index
    try:
        values = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be numeric: a DataFrame or a 2-D array of regressors") from None
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"{what} must be 2-D (rows x regressors), got shape {values.shape}")
    return values, [f"x{i}" for i in range(values.shape[1])], None


def _check_finite(values: np.ndarray, names: list[str], what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(f"{what} contains NaN or infinity in column {names[column]!r}, first at row {row}")


class ExogLayout:
    """How the model's exogenous regressors are given: one table shared by every series, or
    (panel) a dict {series: table}, each with the columns ``names``."""

    def __init__(self, names: list[str], per_series: bool) -> None:
        self.names, self.per_series = names, per_series

    @classmethod
    def from_fit(cls, X, n_rows: int, series: list | None, index: pd.Index) -> tuple[ExogLayout, np.ndarray]:
        """The layout and the values (M, n_rows, e) of the exog given at fit."""
        if isinstance(X, dict):
            if series is None:
                raise ValueError("X as a dict {series: regressors} needs y to be a panel (a DataFrame of series)")
            first = _as_table(X[next(iter(X))], "X")[1] if X else []
            layout = cls(first, per_series=True)
        else:
            layout = cls(_as_table(X, "X")[1], per_series=False)
        return layout, layout.values(X, n_rows, series, "X", index)

    def values(self, X, n_rows: int, series: list | None, what: str, index: pd.Index | None = None) -> np.ndarray:
        """(M, n_rows, e) from X in this layout, after checking columns, rows and values; rows
        beyond ``n_rows`` are ignored (statsmodels' exog_oos may be longer than the forecast)."""
        if self.per_series:
            if not isinstance(X, dict):
                raise TypeError(f"{what} must be a dict {{series: regressors}}, as at fit")
            missing = [s for s in series if s not in X]
            if missing:
                raise ValueError(f"{what} has no regressors for series {missing}")
            tables = [self._one(X[s], n_rows, f"{what}[{s!r}]", index) for s in series]
            return np.stack(tables)
        table = self._one(X, n_rows, what, index)
        return np.broadcast_to(table, (1 if series is None else len(series), *table.shape))

    def _one(self, X, n_rows: int, what: str, index: pd.Index | None) -> np.ndarray:
        values, names, own_index = _as_table(X, what)
        if isinstance(X, pd.DataFrame) and names != self.names:
            missing = [n for n in self.names if n not in names]
            if missing:
                raise ValueError(f"{what} lacks the regressor column(s) {missing} (the model has {self.names})")
            values = X[self.names].to_numpy(dtype=np.float64)
        elif values.shape[1] != len(self.names):
            raise ValueError(f"{what} has {values.shape[1]} column(s); the model has {len(self.names)}: {self.names}")
        if len(values) < n_rows:
            raise ValueError(f"{what} has {len(values)} row(s); {n_rows} are needed (one per forecast step)")
        if index is not None and own_index is not None and len(values) == len(index) and not own_index.equals(index):
            raise ValueError(f"{what}'s index does not match y's: align the regressors with the series first")
        values = values[:n_rows]
        _check_finite(values, self.names, what)
        return values
