"""``ARForecaster``: AR(p) forecasting by least squares, for one series or a panel of them."""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from toolkit._input_checks import reject_non_numeric_columns
from toolkit._param_validation import Interval, StrOptions
from toolkit.timeseries._ar_math import (
    deterministic_columns,
    fit_ar,
    forecast_paths,
    forecast_variance,
    residuals,
)


class FrequencyWarning(UserWarning):
    """A DatetimeIndex without a frequency: forecasts are indexed by integers."""


def _as_panel(y) -> tuple[np.ndarray, pd.Index, list | None, str | None]:
    """(values (M, n) float64, index, column names or None, series name) of a Series / DataFrame / array."""
    if isinstance(y, pd.DataFrame):
        reject_non_numeric_columns(y, "y")
        return y.to_numpy(dtype=np.float64).T.copy(), y.index, list(y.columns), None
    if isinstance(y, pd.Series):
        if not pd.api.types.is_numeric_dtype(y.dtype):
            raise TypeError(f"y must be numeric, got dtype {y.dtype}")
        return y.to_numpy(dtype=np.float64)[None], y.index, None, y.name
    try:
        values = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("y must be numeric: a Series, a DataFrame of series or a 1-D / 2-D array") from None
    if values.ndim == 1:
        return values[None], pd.RangeIndex(len(values)), None, None
    if values.ndim == 2:
        return values.T.copy(), pd.RangeIndex(values.shape[0]), list(range(values.shape[1])), None
    raise ValueError(f"y must be 1-D (one series) or 2-D (time x series), got shape {values.shape}")


def _check_finite(values: np.ndarray, columns: list | None) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row, position = np.argwhere(bad)[0]
        where = f" in column {columns[row]!r}" if columns is not None else ""
        raise ValueError(
            f"y contains {int(bad.sum())} NaN or infinite value(s){where}, first at position {position}; "
            "AR estimation needs a complete series (fill or trim it first)"
        )


def _future_index(index: pd.Index, horizon: int) -> pd.Index:
    """The ``horizon`` time stamps after ``index``, or integers when its frequency is unknown."""
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(index[-1] + 1, periods=horizon, freq=index.freq)
    if isinstance(index, pd.DatetimeIndex):
        freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
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


class ARForecaster(BaseEstimator):
    """Autoregressive forecaster fitted by least squares, for one series or a panel.

    Y_t = mu + delta * t + sum_{i in lags} phi_i Y_{t-i} + u_t, u_t ~ N(0, sigma^2), with the
    deterministic terms chosen by ``trend``. Estimates, standard errors and information
    criteria follow ``statsmodels.tsa.ar_model.AutoReg`` (sigma^2 = SSR / nobs; time t counts
    from 1 at the first observation).

    Parameters
    ----------
    lags : int or list of int, default=1
        p (lags 1..p) or the exact lags to use. Ignored when ``criterion`` is set.
    trend : {"n", "c", "t", "ct"}, default="c"
        No deterministic term, constant, time trend, or both.
    max_lags : int, optional
        Largest order searched when ``criterion`` is set (orders 0..max_lags on the common
        sample that starts after max_lags observations, as ``ar_select_order``).
    criterion : {"aic", "bic", "hqic"}, optional
        Choose the order by this information criterion.

    Attributes
    ----------
    params_ : Series (one series) or DataFrame (panel: one column per series)
        Named like statsmodels: ``const``, ``trend``, ``<name>.L1``, ...
    bse_ : Series or DataFrame
        Standard errors.
    intercept_, sigma2_, llf_, aic_, bic_, hqic_ : float or Series (panel)
    coef_ : ndarray of shape (n_lags,) or (n_series, n_lags)
        AR coefficients in the order of ``lags_``.
    resid_ : Series or DataFrame
        Residuals over the estimation sample.
    lags_ : list of int
    n_obs_ : int
        Observations in the estimation sample.
    """

    _parameter_constraints: dict = {
        "lags": [Interval(Integral, 0, None, closed="left"), "array-like"],
        "trend": [StrOptions({"n", "c", "t", "ct"})],
        "max_lags": [Interval(Integral, 0, None, closed="left"), None],
        "criterion": [StrOptions({"aic", "bic", "hqic"}), None],
    }

    def __init__(self, lags=1, *, trend="c", max_lags=None, criterion=None):
        self.lags = lags
        self.trend = trend
        self.max_lags = max_lags
        self.criterion = criterion

    # ----------------------------------------------------------------- fit
    def _candidate_lags(self) -> list[int]:
        if isinstance(self.lags, Integral):
            return list(range(1, int(self.lags) + 1))
        lags = sorted({int(lag) for lag in self.lags})
        if not lags or lags[0] < 1:
            raise ValueError(f"lags must be positive lag indices, got {self.lags!r}")
        return lags

    def _minimum_length(self, hold_back: int, lags: list[int]) -> int:
        return hold_back + len(deterministic_columns(self.trend)) + len(lags) + 1

    def fit(self, y, X=None):
        """Estimate the AR model(s).

        Parameters
        ----------
        y : Series, DataFrame or array-like
            One series (Series / 1-D), or a panel with one series per column (DataFrame / 2-D,
            time along rows), all on the same index. A panel is fitted in one vectorised
            solve and gives the same estimates as fitting each column alone.
        X : None
            Ignored (scikit-learn convention).

        Returns
        -------
        self
        """
        self._validate_params()
        values, index, columns, name = _as_panel(y)
        _check_finite(values, columns)
        if self.criterion is not None:
            if self.max_lags is None:
                raise ValueError("criterion is set, so max_lags (the largest order searched) is required")
            lags = self._select_lags(values)
        else:
            lags = self._candidate_lags()
        hold_back = max(lags, default=0)
        self._check_length(values.shape[1], hold_back, lags)
        result = fit_ar(values, lags, self.trend, hold_back)
        self.lags_ = lags
        self.hold_back_ = hold_back
        self.n_obs_ = result.nobs
        self._store(result, index, columns, name, hold_back)
        self.history_ = values
        self.index_ = index
        return self

    def _check_length(self, n: int, hold_back: int, lags: list[int]) -> None:
        needed = self._minimum_length(hold_back, lags)
        if n < needed:
            raise ValueError(
                f"y has {n} observations; lags {lags} with trend {self.trend!r} need at least {needed} "
                f"({hold_back} to start the lags, {needed - hold_back - 1} parameters and one more)"
            )

    def _select_lags(self, values: np.ndarray) -> list[int]:
        """The order 0..max_lags minimising ``criterion`` on the common sample (per panel sum)."""
        self._check_length(values.shape[1], self.max_lags, list(range(1, self.max_lags + 1)))
        scores = []
        for order in range(self.max_lags + 1):
            lags = list(range(1, order + 1))
            fitted = fit_ar(values, lags, self.trend, self.max_lags)
            scores.append(fitted.information_criteria()[self.criterion].sum())
        self.criterion_values_ = pd.Series(scores, index=pd.RangeIndex(self.max_lags + 1, name="order"))
        return list(range(1, int(np.argmin(scores)) + 1))

    def _store(self, result, index: pd.Index, columns: list | None, name, hold_back: int) -> None:
        self._columns = columns
        self._name = name
        label = "y" if name is None else str(name)
        names = deterministic_columns(self.trend) + [f"{label}.L{lag}" for lag in self.lags_]
        criteria = result.information_criteria()
        n_det = len(deterministic_columns(self.trend))
        if columns is None:
            self.params_ = pd.Series(result.params[0], index=names)
            self.bse_ = pd.Series(result.bse[0], index=names)
        else:
            self.params_ = pd.DataFrame(result.params.T, index=names, columns=columns)
            self.bse_ = pd.DataFrame(result.bse.T, index=names, columns=columns)
        self.coef_ = result.params[:, n_det:] if columns is not None else result.params[0, n_det:]
        intercept = (
            result.params[:, 0] if "const" in deterministic_columns(self.trend) else np.zeros(len(result.params))
        )
        self.intercept_ = self._per_series(intercept)
        self.sigma2_ = self._per_series(result.sigma2)
        self.llf_ = self._per_series(result.llf)
        self.aic_ = self._per_series(criteria["aic"])
        self.bic_ = self._per_series(criteria["bic"])
        self.hqic_ = self._per_series(criteria["hqic"])
        self._resid = None

    @property
    def _params(self) -> np.ndarray:
        """``params_`` as the maths takes it: (n_series, n_params)."""
        return np.atleast_2d(self.params_.to_numpy().T)

    @property
    def _sigma2(self) -> np.ndarray:
        """``sigma2_`` as the maths takes it: (n_series,)."""
        return np.atleast_1d(np.asarray(self.sigma2_, dtype=np.float64))

    @property
    def resid_(self):
        """Residuals over the estimation sample (Series, or DataFrame for a panel), computed
        on first use from the stored series and parameters."""
        check_is_fitted(self, "params_")
        if self._resid is None:
            values = residuals(
                self.history_[:, : self.hold_back_ + self.n_obs_], self._params, self.lags_, self.trend, self.hold_back_
            )
            self._resid = self._wrap(values, self.index_[self.hold_back_ : self.hold_back_ + self.n_obs_])
        return self._resid

    def _per_series(self, values: np.ndarray):
        """One statistic per series: a float for one series, a Series over a panel's columns."""
        return float(values[0]) if self._columns is None else pd.Series(values, index=self._columns)

    # ------------------------------------------------------------ forecast
    def _check_horizon(self, horizon) -> int:
        if not isinstance(horizon, Integral) or isinstance(horizon, bool) or horizon <= 0:
            raise ValueError(f"horizon must be a positive int, got {horizon!r}")
        return int(horizon)

    def _wrap(self, values: np.ndarray, index: pd.Index):
        """(M, h) forecasts as a Series (one series) or a DataFrame (panel)."""
        if self._columns is None:
            return pd.Series(values[0], index=index, name=self._name)
        return pd.DataFrame(values.T, index=index, columns=self._columns)

    def _point_forecasts(self, horizon: int) -> np.ndarray:
        return forecast_paths(self.history_, self._params, self.lags_, self.trend, self.history_.shape[1], horizon)

    def predict(self, horizon: int):
        """Point forecasts for the next ``horizon`` periods.

        Parameters
        ----------
        horizon : int
            Number of steps ahead (>= 1).

        Returns
        -------
        forecast : Series, or DataFrame with one column per series (panel)
            Indexed by the time stamps that continue the training index (its frequency), or by
            integers when the index is a RangeIndex, or (with a :class:`FrequencyWarning`) a
            DatetimeIndex whose frequency is unset and cannot be inferred.
        """
        check_is_fitted(self, "params_")
        horizon = self._check_horizon(horizon)
        return self._wrap(self._point_forecasts(horizon), _future_index(self.index_, horizon))

    def _half_widths(self, horizon: int, coverage: float) -> np.ndarray:
        """z_{(1 + coverage) / 2} * sqrt(sigma^2 sum_{j<h} psi_j^2) per series and step; (M, horizon)."""
        variance = forecast_variance(self._params, self._sigma2, self.lags_, self.trend, horizon)
        return norm.ppf(0.5 + coverage / 2) * np.sqrt(variance)

    def predict_interval(self, horizon: int, coverage: float = 0.95) -> pd.DataFrame:
        """Point forecasts with a Gaussian prediction interval.

        The h-step forecast error variance is sigma^2 * sum_{j<h} psi_j^2 with the MA(inf)
        weights psi of the fitted AR polynomial (parameter uncertainty ignored, as statsmodels).

        Parameters
        ----------
        horizon : int
        coverage : float, default=0.95

        Returns
        -------
        DataFrame
            Columns ``mean``, ``lower``, ``upper`` (a panel: a column level per series).
        """
        check_is_fitted(self, "params_")
        horizon = self._check_horizon(horizon)
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1), got {coverage!r}")
        mean = self._point_forecasts(horizon)
        half = self._half_widths(horizon, coverage)
        index = _future_index(self.index_, horizon)
        parts = {"mean": mean, "lower": mean - half, "upper": mean + half}
        if self._columns is None:
            return pd.DataFrame({key: value[0] for key, value in parts.items()}, index=index)
        stacked = np.stack(list(parts.values()), axis=2)  # (M, h, 3)
        columns = pd.MultiIndex.from_product([self._columns, list(parts)])
        return pd.DataFrame(stacked.transpose(1, 0, 2).reshape(horizon, -1), index=index, columns=columns)

    def predict_in_sample(self):
        """One-step-ahead fitted values over the estimation sample (y minus the residuals).

        Returns
        -------
        Series or DataFrame
        """
        check_is_fitted(self, "params_")
        observed = self.history_[:, self.hold_back_ : self.hold_back_ + self.n_obs_]
        return self._wrap(observed, self.resid_.index) - self.resid_

    def update(self, new_y):
        """Append observations without refitting: the next forecast starts after them.

        Parameters
        ----------
        new_y : Series, DataFrame or array-like
            New observations in the same layout as at fit (same columns for a panel).

        Returns
        -------
        self
        """
        check_is_fitted(self, "params_")
        values, index, columns, _ = _as_panel(new_y)
        if (columns is None) != (self._columns is None) or (
            columns is not None and list(columns) != list(self._columns)
        ):
            raise ValueError(f"new_y must have the layout used at fit (columns {self._columns})")
        _check_finite(values, columns)
        self.history_ = np.concatenate([self.history_, values], axis=1)
        labelled = isinstance(new_y, (pd.Series, pd.DataFrame)) and not isinstance(index, pd.RangeIndex)
        self.index_ = self.index_.append(index if labelled else _future_index(self.index_, values.shape[1]))
        self._resid = None
        return self

    # --------------------------------------------------------------- export
    def _window_columns(self) -> list[str]:
        p = max(self.lags_, default=0)
        label = "y" if self._name is None else str(self._name)
        columns = [f"{label}.L{lag}" for lag in range(p, 0, -1)]
        return columns + (["time"] if "trend" in deterministic_columns(self.trend) else [])

    def predict_from_windows(self, X, horizon: int, part: str = "mean", coverage: float = 0.95) -> np.ndarray:
        """Forecasts from given windows, as the exported graph computes them.

        Parameters
        ----------
        X : array-like of shape (n_windows, w), or (n_windows, n_series, w) for a panel
            Per series the last p observations before the forecast, oldest first, and (trend
            with a time term) the 0-based time index of the first forecast: w = p or p + 1.
        horizon : int
        part : {"mean", "lower", "upper"}
        coverage : float, default=0.95

        Returns
        -------
        ndarray of shape (n_windows, horizon) or (n_windows, n_series, horizon)
        """
        check_is_fitted(self, "params_")
        horizon = self._check_horizon(horizon)
        X = np.asarray(X, dtype=np.float64)
        p = max(self.lags_, default=0)
        n_series = self._params.shape[0]
        width = len(self._window_columns())
        expected = (width,) if self._columns is None else (n_series, width)
        if X.ndim != len(expected) + 1 or X.shape[1:] != expected:
            raise ValueError(
                f"X must have shape (n_windows, {', '.join(map(str, expected))}): columns {self._window_columns()}"
            )
        windows = X.reshape(-1, width)  # (B * S, w), series fastest
        params = np.tile(self._params, (len(X), 1))
        start = windows[:, p] if width > p else 0.0
        values = forecast_paths(windows[:, :p], params, self.lags_, self.trend, start, horizon)
        if part != "mean":
            half = self._half_widths(horizon, coverage)
            values = values + np.tile(half, (len(X), 1)) * (-1 if part == "lower" else 1)
        return values.reshape(X.shape[:-1] + (horizon,))

    def _inference_spec(self, horizon: int = 10, coverage: float = 0.95):
        """The forecast recursion for ``horizon`` steps with ``coverage`` intervals, in float64."""
        import torch

        from toolkit._export_spec import InferenceSpec, OutputSpec
        from toolkit.nn.ar import ARForecastModule

        check_is_fitted(self, "params_")
        horizon = self._check_horizon(horizon)
        p = max(self.lags_, default=0)
        names = deterministic_columns(self.trend)
        n_series = self._params.shape[0]
        ar = np.zeros((n_series, p))
        for offset, lag in enumerate(self.lags_):
            ar[:, p - lag] = self._params[:, len(names) + offset]
        const = self._params[:, names.index("const")] if "const" in names else np.zeros(n_series)
        slope = torch.from_numpy(self._params[:, names.index("trend")].copy()) if "trend" in names else None
        half = self._half_widths(horizon, coverage)
        single = self._columns is None
        module = ARForecastModule(
            torch.from_numpy(ar), torch.from_numpy(const.copy()), slope, torch.from_numpy(half), single
        )
        window = self.history_[:, self.history_.shape[1] - p :]  # (S, p)
        if slope is not None:
            window = np.c_[window, np.full(n_series, self.history_.shape[1], dtype=np.float64)]
        example = np.stack([window, window])  # (2, S, w)
        tight = {"atol": 1e-8, "rtol": 1e-8}
        outputs = [
            OutputSpec(
                name,
                "predict_from_windows",
                2 if single else 3,
                kwargs={"horizon": horizon, "part": part, "coverage": coverage},
                tolerance=tight,
            )
            for name, part in (("forecast", "mean"), ("lower", "lower"), ("upper", "upper"))
        ]
        return InferenceSpec(
            module=module.eval(),
            sample_shape=example.shape[2:] if single else example.shape[1:],
            outputs=outputs,
            example=example[:, 0] if single else example,
            feature_names=self._window_columns(),
            dtype="float64",
            metadata={
                "horizon": horizon,
                "coverage": coverage,
                "series": None if single else [str(c) for c in self._columns],
            },
        )

    def score(self, y_future, X=None) -> float:
        """Negative root mean squared error of the forecast of ``len(y_future)`` steps.

        Higher is better, as scikit-learn's scorers; for a panel, the mean over series.

        Parameters
        ----------
        y_future : Series, DataFrame or array-like
            The observations that followed the training sample.
        """
        check_is_fitted(self, "params_")
        values, _, _, _ = _as_panel(y_future)
        forecast = self._point_forecasts(values.shape[1])
        return float(-np.sqrt(((forecast - values) ** 2).mean(axis=1)).mean())
