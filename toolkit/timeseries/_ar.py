"""``ARForecaster``: AR(p) forecasting by least squares, for one series or a panel of them."""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from toolkit._dask import is_dask_collection
from toolkit._fit_state import restored_on_failure
from toolkit._input_checks import reject_non_numeric_columns
from toolkit._param_validation import Interval, StrOptions
from toolkit.timeseries._ar_math import (
    ar_roots,
    design_matrix,
    fit_ar,
    fit_design,
    forecast_recursion,
    forecast_variance,
    regression_offsets,
    residuals,
)
from toolkit.timeseries._deterministic import DeterministicTerms, infer_period
from toolkit.timeseries._exog import ExogLayout
from toolkit.timeseries._long_panel import LongPanel
from toolkit.timeseries._summary import ARSummary, coefficient_table, model_name, roots_table


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


class ARForecaster(BaseEstimator):
    """Autoregressive forecaster fitted by least squares, for one series or a panel.

    Y_t = d_t' beta + sum_{i in lags} phi_i Y_{t-i} + x_t' gamma + u_t, u_t ~ N(0, sigma^2), with
    deterministic terms d_t (``trend``, ``seasonal`` or a ``deterministic`` process) and
    exogenous regressors x_t (``X`` at fit, their future values at forecast: AR-X).
    Estimates, standard errors and information criteria follow
    ``statsmodels.tsa.ar_model.AutoReg`` (sigma^2 = SSR / nobs; time t counts from 1 at the
    first observation; columns ordered deterministic terms, lags, exog). Trend-only models
    take the fast path (normal equations from lag-product sums, no regressor matrix); the
    other terms need the regressor matrix and a QR solve.

    Parameters
    ----------
    lags : int or list of int, default=1
        p (lags 1..p) or the exact lags to use. Ignored when ``criterion`` is set.
    trend : {"n", "c", "t", "ct", "ctt"}, default="c"
        No deterministic term, constant, time trend, both, or both and a squared trend.
    seasonal : bool, default=False
        Seasonal dummies ``s(j,period)`` (the first dropped when there is a constant), as
        AutoReg builds them from the observations' positions.
    period : int, optional
        The seasonal period; by default inferred from y's DatetimeIndex / PeriodIndex
        frequency as statsmodels infers it (Q: 4, M: 12, W: 52, D: 7, B: 5, H: 24).
    deterministic : DeterministicProcess, optional
        statsmodels' ``DeterministicProcess`` (or any object with ``in_sample()`` and
        ``out_of_sample(steps)``) built on y's index: its terms replace ``trend`` and
        ``seasonal`` (which then warn unless "n" and False, as AutoReg).
    hold_back : int, optional
        Observations at the start left out of the estimation sample (at least the largest
        lag, which is the default), so that models with different lags share one sample.
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
    hold_back_ : int
    period_ : int or None
        The seasonal period used.
    exog_names_ : list of str or None
        The exogenous regressors' names (DataFrame columns, or x0, x1, ...).
    roots_ : ndarray or DataFrame
        Roots of the AR polynomial 1 - phi_1 z - ... - phi_p z^p (statsmodels' ``roots``; a
        panel: one column per series); the process is stationary when all lie outside the
        unit circle.
    is_stationary_ : bool or Series
    """

    _parameter_constraints: dict = {
        "lags": [Interval(Integral, 0, None, closed="left"), "array-like"],
        "trend": [StrOptions({"n", "c", "t", "ct", "ctt"})],
        "seasonal": ["boolean"],
        "period": [Interval(Integral, 2, None, closed="left"), None],
        "deterministic": [None, object],
        "hold_back": [Interval(Integral, 0, None, closed="left"), None],
        "max_lags": [Interval(Integral, 0, None, closed="left"), None],
        "criterion": [StrOptions({"aic", "bic", "hqic"}), None],
    }

    def __init__(
        self,
        lags=1,
        *,
        trend="c",
        seasonal=False,
        period=None,
        deterministic=None,
        hold_back=None,
        max_lags=None,
        criterion=None,
    ):
        self.lags = lags
        self.trend = trend
        self.seasonal = seasonal
        self.period = period
        self.deterministic = deterministic
        self.hold_back = hold_back
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
        n_exog = 0 if self._exog is None else len(self._exog.names)
        return hold_back + len(self._terms) + len(lags) + n_exog + 1

    def _fast_path(self) -> bool:
        """Trend-only models: the normal equations from lag-product sums, no regressor matrix."""
        return self._exog is None and self._terms.process is None and self._terms.period is None and self.trend != "ctt"

    def _deterministic_terms(self, index: pd.Index, n: int) -> DeterministicTerms:
        if self.deterministic is not None:
            if self.trend != "n" or self.seasonal:
                warnings.warn(
                    'When using deterministic, trend must be "n" and seasonal must be False (they are ignored).',
                    UserWarning,
                    stacklevel=3,
                )
            if not (hasattr(self.deterministic, "in_sample") and hasattr(self.deterministic, "out_of_sample")):
                raise TypeError("deterministic must be a DeterministicProcess (with in_sample and out_of_sample)")
            return DeterministicTerms("n", process=self.deterministic, n_fit=n)
        period = None
        if self.seasonal:
            period = self.period if self.period is not None else infer_period(index)
        return DeterministicTerms(self.trend, period)

    def _solve(self, values: np.ndarray, exog: np.ndarray | None, lags: list[int], hold_back: int):
        if self._fast_path():
            return fit_ar(values, lags, self.trend, hold_back)
        return fit_design(values, lags, self._terms.rows(0, values.shape[1]), exog, hold_back)

    def fit(self, y, X=None):
        """Estimate the AR model(s).

        Parameters
        ----------
        y : Series, DataFrame or array-like
            One series (Series / 1-D), or a panel with one series per column (DataFrame / 2-D,
            time along rows), all on the same index. A panel is fitted in one vectorised
            solve and gives the same estimates as fitting each column alone. A wide dask
            DataFrame, a 2-D dask array (time x series; the fastest of the three), or a long
            dask DataFrame marked with :func:`toolkit.timeseries.long_panel`, is
            fitted on the Dask cluster (groups of series solved where they live; the same
            estimates, forecasts and criteria as the in-memory fit; no ``X`` or ``criterion``).
        X : DataFrame, array-like of shape (n_obs, n_exog), or dict, optional
            Exogenous regressors observed with y (AR-X): one table for every series, or for
            a panel a dict {series: table}. Their future values are then needed to forecast.

        Returns
        -------
        self
        """
        self._validate_params()
        with restored_on_failure(self):
            if is_dask_collection(y) or isinstance(y, LongPanel):
                from toolkit.timeseries._dask_panel import fit_on_cluster

                return fit_on_cluster(self, y, X)
            values, index, columns, name = _as_panel(y)
            _check_finite(values, columns)
            self._exog, exog = None, None
            if X is not None:
                self._exog, exog = ExogLayout.from_fit(X, values.shape[1], columns, index)
            lags, hold_back = self._specify(index, values, exog)
            return self._finish(
                self._solve(values, exog, lags, hold_back), values, index, columns, name, exog, lags, hold_back
            )

    def _specify(self, index: pd.Index, values: np.ndarray | None, exog: np.ndarray | None) -> tuple[list[int], int]:
        """The deterministic terms, lags and hold-back of a fit on ``index`` (``values`` only
        for an order search by ``criterion``)."""
        self._terms = self._deterministic_terms(index, len(index))
        if self.criterion is not None:
            if self.max_lags is None:
                raise ValueError("criterion is set, so max_lags (the largest order searched) is required")
            lags = self._select_lags(values, exog)
        else:
            lags = self._candidate_lags()
        hold_back = max(lags, default=0) if self.hold_back is None else self.hold_back
        if hold_back < max(lags, default=0):
            raise ValueError(f"hold_back={hold_back} must be >= the largest lag ({max(lags)})")
        self._check_length(len(index), hold_back, lags)
        return lags, hold_back

    def _finish(self, result, values, index, columns, name, exog, lags: list[int], hold_back: int):
        """Store a solved fit: the attributes of ``fit``."""
        self.lags_ = lags
        self.hold_back_ = hold_back
        self.n_obs_ = result.nobs
        self.period_ = self._terms.period
        self.exog_names_ = None if self._exog is None else list(self._exog.names)
        self._exog_history = exog
        self._store(result, index, columns, name, hold_back)
        self.history_ = values
        self.index_ = index
        return self

    def _check_length(self, n: int, hold_back: int, lags: list[int]) -> None:
        needed = self._minimum_length(hold_back, lags)
        if n < needed:
            raise ValueError(
                f"y has {n} observations; lags {lags} with {len(self._terms)} deterministic term(s) "
                f"{self._terms.names} need at least {needed} ({hold_back} held back, {needed - hold_back - 1} "
                "parameters and one more)"
            )

    def _select_lags(self, values: np.ndarray, exog: np.ndarray | None) -> list[int]:
        """The order 0..max_lags minimising ``criterion`` on the common sample (per panel sum)."""
        self._check_length(values.shape[1], self.max_lags, list(range(1, self.max_lags + 1)))
        scores = []
        for order in range(self.max_lags + 1):
            lags = list(range(1, order + 1))
            fitted = self._solve(values, exog, lags, self.max_lags)
            scores.append(fitted.information_criteria()[self.criterion].sum())
        self.criterion_values_ = pd.Series(scores, index=pd.RangeIndex(self.max_lags + 1, name="order"))
        return list(range(1, int(np.argmin(scores)) + 1))

    def _store(self, result, index: pd.Index, columns: list | None, name, hold_back: int) -> None:
        self._columns = columns
        self._name = name
        label = "y" if name is None else str(name)
        exog_names = [] if self._exog is None else self._exog.names
        names = self._terms.names + [f"{label}.L{lag}" for lag in self.lags_] + exog_names
        criteria = result.information_criteria()
        n_det = len(self._terms)
        if columns is None:
            self.params_ = pd.Series(result.params[0], index=names)
            self.bse_ = pd.Series(result.bse[0], index=names)
        else:
            self.params_ = pd.DataFrame(result.params.T, index=names, columns=columns)
            self.bse_ = pd.DataFrame(result.bse.T, index=names, columns=columns)
        ar = result.params[:, n_det : n_det + len(self.lags_)]
        self.coef_ = ar if columns is not None else ar[0]
        intercept = result.params[:, 0] if "const" in self._terms.names else np.zeros(len(result.params))
        self.intercept_ = self._per_series(intercept)
        self.sigma2_ = self._per_series(result.sigma2)
        self.llf_ = self._per_series(result.llf)
        self.aic_ = self._per_series(criteria["aic"])
        self.bic_ = self._per_series(criteria["bic"])
        self.hqic_ = self._per_series(criteria["hqic"])
        self._resid = None
        self._roots = None

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
            values = self.history_[:, : self.hold_back_ + self.n_obs_]
            if self._fast_path():
                resid = residuals(values, self._params, self.lags_, self.trend, self.hold_back_)
            else:
                resid = values[:, self.hold_back_ :] - self._regression(values, self.hold_back_)
            self._resid = self._wrap(resid, self.index_[self.hold_back_ : self.hold_back_ + self.n_obs_])
        return self._resid

    def _regression(self, values: np.ndarray, first: int) -> np.ndarray:
        """One-step fitted values Z_t' params for t = first..n-1 of ``values`` (M, n); (M, n - first)."""
        exog = None if self._exog_history is None else self._exog_history[:, : values.shape[1]]
        Z = design_matrix(values, self.lags_, self._terms.rows(0, values.shape[1]), exog, first)
        return np.einsum("mnk,mk->mn", Z, self._params)

    @property
    def roots_(self):
        """Roots of the AR polynomial (ndarray; a panel: a DataFrame, one column per series),
        computed on first use (an eigenvalue problem per series)."""
        check_is_fitted(self, "params_")
        if self._roots is None:
            roots = ar_roots(self._ar, self.lags_)  # (M, p)
            self._roots = roots[0] if self._columns is None else pd.DataFrame(roots.T, columns=self._columns)
        return self._roots

    @property
    def is_stationary_(self):
        """Whether every root lies outside the unit circle (bool; a panel: a Series)."""
        outside = (np.abs(np.asarray(self.roots_)) > 1).all(axis=0 if self._columns is not None else None)
        return bool(outside) if self._columns is None else pd.Series(outside, index=self._columns)

    def _per_series(self, values: np.ndarray):
        """One statistic per series: a float for one series, a Series over a panel's columns."""
        return float(values[0]) if self._columns is None else pd.Series(values, index=self._columns)

    @property
    def _ar(self) -> np.ndarray:
        """The AR coefficients (n_series, len(lags_))."""
        n_det = len(self._terms)
        return self._params[:, n_det : n_det + len(self.lags_)]

    def summary(self, alpha: float = 0.05, series=None) -> ARSummary:
        """The statsmodels-style summary: fit statistics, the coefficient table (coef, std err,
        z, P>|z|, the 1 - alpha interval) and the roots of the AR polynomial.

        Parameters
        ----------
        alpha : float, default=0.05
        series : column label, optional
            Which series of a panel (required for a panel).

        Returns
        -------
        ARSummary
            ``info``, ``coefficients`` and ``roots`` as DataFrames; ``print`` it for the table.
        """
        check_is_fitted(self, "params_")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        pick = lambda v: v  # noqa: E731
        if self._columns is not None:
            if series not in self._columns:
                raise ValueError(f"series must name one of the panel's series {self._columns}, got {series!r}")
            pick = lambda v: v[series]  # noqa: E731
        name = str(series) if self._columns is not None else ("y" if self._name is None else str(self._name))
        sample = self.index_[self.hold_back_ : self.hold_back_ + self.n_obs_]
        stamps = isinstance(sample, (pd.DatetimeIndex, pd.PeriodIndex))
        first, last = (
            (sample[0].strftime("%m-%d-%Y"), "- " + sample[-1].strftime("%m-%d-%Y"))
            if stamps
            else (str(self.hold_back_), str(self.hold_back_ + self.n_obs_))
        )
        order = max(self.lags_, default=0)
        info = {
            "Dep. Variable:": name,
            "Model:": model_name(self.period_ is not None, len(self.lags_) < order, self._exog is not None, order),
            "Method:": "Conditional MLE",
            "Sample:": f"{first} {last}",
            "No. Observations:": str(self.n_obs_),
            "Log Likelihood": f"{pick(self.llf_):#5.3f}",
            "S.D. of innovations": f"{pick(self.sigma2_) ** 0.5:#5.3f}",
            "AIC": f"{pick(self.aic_):#5.3f}",
            "BIC": f"{pick(self.bic_):#5.3f}",
            "HQIC": f"{pick(self.hqic_):#5.3f}",
        }
        roots = pick(self.roots_)
        return ARSummary(
            info,
            coefficient_table(pick(self.params_), pick(self.bse_), alpha),
            roots_table(np.asarray(roots)),
        )

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

    def _future_exog(self, X, horizon: int) -> np.ndarray | None:
        """The future regressors (M, horizon, e) for a forecast, or None without exog."""
        if self._exog is None:
            if X is not None:
                raise ValueError("X was given, but the model was fitted without exogenous regressors")
            return None
        if X is None:
            raise ValueError(
                f"the model has exogenous regressors {self._exog.names}: pass their future values as X "
                f"({horizon} row(s), one per forecast step)"
            )
        return self._exog.values(X, horizon, self._columns, "X")

    def _offsets(self, start: int, stop: int, exog: np.ndarray | None) -> np.ndarray:
        """The deterministic and exogenous part of the model at positions start..stop-1; (M, stop - start)."""
        return regression_offsets(self._terms.rows(start, stop), self._params, len(self._terms), len(self.lags_), exog)

    def _point_forecasts(self, horizon: int, X=None) -> np.ndarray:
        n = self.history_.shape[1]
        offsets = self._offsets(n, n + horizon, self._future_exog(X, horizon))
        return forecast_recursion(self.history_, self._ar, self.lags_, offsets)

    def predict(self, horizon: int | None = None, X=None, *, start=None, end=None, dynamic=False):
        """Point forecasts for the next ``horizon`` periods, or statsmodels' in-sample and
        out-of-sample ``predict(start, end, dynamic)``.

        Parameters
        ----------
        horizon : int, optional
            Number of steps ahead (>= 1); give it, or ``start`` / ``end``.
        X : DataFrame or array-like, or dict (panel), optional
            The exogenous regressors' values over the forecast steps (models fitted with X):
            at least ``horizon`` rows, or as many as out-of-sample steps ``end`` asks for.
        start, end : int, str or datetime, optional
            First and last (inclusive) observation to predict, as 0-based positions or labels
            of y's index; beyond the sample they are forecasts (AutoReg's semantics: start
            defaults to 0, end to the last observation; positions before ``hold_back_`` are
            NaN).
        dynamic : bool, int, str or datetime, default=False
            From which observation (an offset from ``start``, True for 0, or a label) the
            predictions feed on their own earlier predictions instead of the observed values.

        Returns
        -------
        forecast : Series, or DataFrame with one column per series (panel)
            Indexed by the time stamps that continue the training index (its frequency), or by
            integers when the index is a RangeIndex, or (with a :class:`FrequencyWarning`) a
            DatetimeIndex whose frequency is unset and cannot be inferred.
        """
        check_is_fitted(self, "params_")
        if start is not None or end is not None or horizon is None:
            if horizon is not None:
                raise ValueError("give horizon, or start / end, not both")
            return self._predict_range(start, end, dynamic, X)
        horizon = self._check_horizon(horizon)
        return self._wrap(self._point_forecasts(horizon, X), _future_index(self.index_, horizon))

    def _position(self, label, name: str) -> int:
        """A 0-based position from an int or a label of the index (beyond the sample: its continuation)."""
        if isinstance(label, Integral) and not isinstance(label, bool):
            return int(label)
        n = len(self.index_)
        try:
            return int(self.index_.get_loc(label))
        except KeyError:
            future = _future_index(self.index_, 1000)
            try:
                return n + int(future.get_loc(label))
            except KeyError:
                raise KeyError(f"{name}={label!r} is neither in y's index nor in its continuation") from None

    def _predict_range(self, start, end, dynamic, X):
        n = self.history_.shape[1]
        first = 0 if start is None else self._position(start, "start")
        last = n - 1 if end is None else self._position(end, "end")
        if first < 0 or last < first:
            raise ValueError(f"start={start!r} and end={end!r} give no observations to predict")
        if first > n:
            raise ValueError(f"start={start!r} is after the first out-of-sample observation ({n})")
        if dynamic is True:
            switch = first
        elif dynamic is False:
            switch = None
        elif isinstance(dynamic, Integral):
            switch = first + int(dynamic)
        else:
            switch = self._position(dynamic, "dynamic")
        if switch is not None and switch < first:
            raise ValueError("Dynamic prediction cannot begin prior to the first observation in the sample.")
        if switch is not None:
            switch = max(switch, self.hold_back_)  # as AutoReg moves a start inside the held-back part
        n_oos = max(0, last + 1 - n)
        exog = self._future_exog(X, n_oos) if n_oos else None
        # A prediction at t reads y at t - lag: observed before the switch (and the sample's end),
        # its own earlier predictions from there on.
        exog_all = self._exog_history
        if exog is not None:
            exog_all = np.concatenate([exog_all, exog], axis=1)
        offsets = self._offsets(0, last + 1, None if exog_all is None else exog_all[:, : last + 1])
        predictions = np.full(offsets.shape, np.nan)
        predicted_from = n if switch is None else min(switch, n)  # lags at or after this read predictions
        for t in range(max(first, self.hold_back_), last + 1):
            value = offsets[:, t]
            for offset, lag in enumerate(self.lags_):
                source = predictions if t - lag >= predicted_from else self.history_
                value = value + self._ar[:, offset] * source[:, t - lag]
            predictions[:, t] = value
        index = self.index_.append(_future_index(self.index_, n_oos)) if n_oos else self.index_
        return self._wrap(predictions[:, first:], index[first : last + 1])

    def _half_widths(self, horizon: int, coverage: float) -> np.ndarray:
        """z_{(1 + coverage) / 2} * sqrt(sigma^2 sum_{j<h} psi_j^2) per series and step; (M, horizon)."""
        variance = forecast_variance(self._ar, self._sigma2, self.lags_, horizon)
        return norm.ppf(0.5 + coverage / 2) * np.sqrt(variance)

    def predict_interval(self, horizon: int, coverage: float = 0.95, X=None) -> pd.DataFrame:
        """Point forecasts with a Gaussian prediction interval.

        The h-step forecast error variance is sigma^2 * sum_{j<h} psi_j^2 with the MA(inf)
        weights psi of the fitted AR polynomial (parameter uncertainty ignored, as statsmodels;
        future exogenous values taken as known).

        Parameters
        ----------
        horizon : int
        coverage : float, default=0.95
        X : DataFrame, array-like or dict, optional
            Future exogenous regressors (models fitted with X).

        Returns
        -------
        DataFrame
            Columns ``mean``, ``lower``, ``upper`` (a panel: a column level per series).
        """
        check_is_fitted(self, "params_")
        horizon = self._check_horizon(horizon)
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1), got {coverage!r}")
        mean = self._point_forecasts(horizon, X)
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

    def update(self, new_y, X=None):
        """Append observations without refitting: the next forecast starts after them.

        Parameters
        ----------
        new_y : Series, DataFrame or array-like
            New observations in the same layout as at fit (same columns for a panel).
        X : DataFrame, array-like or dict, optional
            The exogenous regressors observed with them (models fitted with X).

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
        exog = self._future_exog(X, values.shape[1])
        if exog is not None:
            self._exog_history = np.concatenate([self._exog_history, exog], axis=1)
        self.history_ = np.concatenate([self.history_, values], axis=1)
        labelled = isinstance(new_y, (pd.Series, pd.DataFrame)) and not isinstance(index, pd.RangeIndex)
        self.index_ = self.index_.append(index if labelled else _future_index(self.index_, values.shape[1]))
        self._resid = None
        return self

    # --------------------------------------------------------------- export
    def _check_exportable(self) -> None:
        if self._terms.process is not None:
            raise NotImplementedError(
                "forecasts from windows and the ONNX forecaster compute the deterministic terms from positions; "
                "a user's DeterministicProcess cannot be (use trend= and seasonal=, or pass its terms as exog)"
            )

    def _needs_position(self) -> bool:
        return any(kind[0] != "const" for kind in self._terms.kinds())

    def _window_columns(self) -> list[str]:
        p = max(self.lags_, default=0)
        label = "y" if self._name is None else str(self._name)
        columns = [f"{label}.L{lag}" for lag in range(p, 0, -1)]
        return columns + (["time"] if self._needs_position() else [])

    def _exog_shape(self, horizon: int) -> tuple[int, ...]:
        """Per-window shape of the future regressors the graph reads."""
        per_series = self._exog.per_series and self._columns is not None
        return ((len(self._columns),) if per_series else ()) + (horizon, len(self._exog.names))

    def predict_from_windows(
        self, X, exog=None, *, horizon: int, part: str = "mean", coverage: float = 0.95
    ) -> np.ndarray:
        """Forecasts from given windows, as the exported graph computes them.

        Parameters
        ----------
        X : array-like of shape (n_windows, w), or (n_windows, n_series, w) for a panel
            Per series the last p observations before the forecast, oldest first, and (with
            a deterministic term other than the constant) the 0-based position of the first
            forecast: w = p or p + 1 (``_window_columns``).
        exog : array-like of shape (n_windows, horizon, n_exog), optional
            The future regressors of an AR-X model ((n_windows, n_series, horizon, n_exog)
            for a panel fitted with regressors per series).
        horizon : int
        part : {"mean", "lower", "upper"}
        coverage : float, default=0.95

        Returns
        -------
        ndarray of shape (n_windows, horizon) or (n_windows, n_series, horizon)
        """
        check_is_fitted(self, "params_")
        self._check_exportable()
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
        start = windows[:, p].astype(np.int64) if width > p else np.zeros(len(windows), dtype=np.int64)
        n_det = len(self._terms)
        future = None
        if self._exog is not None:
            if exog is None:
                raise ValueError(f"exog (the future regressors {self._exog.names}) is needed for this AR-X model")
            exog = np.asarray(exog, dtype=np.float64)
            shape = (len(X), *self._exog_shape(horizon))
            if exog.shape != shape:
                raise ValueError(f"exog must have shape {shape}, got {exog.shape}")
            future = exog.reshape(-1, horizon, exog.shape[-1]) if len(shape) == 4 else np.repeat(exog, n_series, axis=0)
        deterministic = self._terms.at(start[:, None] + np.arange(horizon))  # (B * S, H, d)
        offsets = regression_offsets(deterministic, params, n_det, len(self.lags_), future)
        values = forecast_recursion(windows[:, :p], params[:, n_det : n_det + len(self.lags_)], self.lags_, offsets)
        if part != "mean":
            half = self._half_widths(horizon, coverage)
            values = values + np.tile(half, (len(X), 1)) * (-1 if part == "lower" else 1)
        return values.reshape(X.shape[:-1] + (horizon,))

    def _last_windows(self) -> np.ndarray:
        """The window that forecasts from the end of the history, per series; (S, w)."""
        p = max(self.lags_, default=0)
        window = self.history_[:, self.history_.shape[1] - p :]
        if self._needs_position():
            window = np.c_[window, np.full(len(window), self.history_.shape[1], dtype=np.float64)]
        return window

    def _validation_inputs(self, X, horizon: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """(windows X, future regressors) for validating an AR-X graph: the last ``horizon``
        rows of the training regressors stand in for each window's future."""
        X = np.asarray(X, dtype=np.float64)
        recent = self._exog_history[:, -horizon:]  # (M, H, e)
        if recent.shape[1] < horizon:
            recent = np.concatenate([recent] * (horizon // recent.shape[1] + 1), axis=1)[:, :horizon]
        per_series = len(self._exog_shape(horizon)) == 3
        future = recent if per_series else recent[0]
        return X, np.broadcast_to(future, (len(X), *future.shape)).copy()

    def __onnx_spec__(self, horizon: int = 10, coverage: float = 0.95):
        """The forecast recursion for ``horizon`` steps with ``coverage`` intervals, in float64."""
        import torch

        from toolkit._export_spec import InferenceSpec, InputSpec, OutputSpec
        from toolkit.nn.ar import ARForecastModule

        check_is_fitted(self, "params_")
        self._check_exportable()
        horizon = self._check_horizon(horizon)
        p = max(self.lags_, default=0)
        n_det = len(self._terms)
        n_series = self._params.shape[0]
        ar = np.zeros((n_series, p))
        for offset, lag in enumerate(self.lags_):
            ar[:, p - lag] = self._params[:, n_det + offset]
        single = self._columns is None
        exog = None if self._exog is None else torch.from_numpy(self._params[:, n_det + len(self.lags_) :].copy())
        module = ARForecastModule(
            torch.from_numpy(ar),
            self._terms.kinds(),
            torch.from_numpy(self._params[:, :n_det].copy()),
            exog,
            torch.from_numpy(self._half_widths(horizon, coverage)),
            single,
            exog_per_series=self._exog is not None and len(self._exog_shape(horizon)) == 3,
        )
        window = self._last_windows()  # (S, w)
        example = np.stack([window, window])  # (2, S, w)
        extra, kwargs = (), {}
        if self._exog is not None:
            future = self._validation_inputs(example[:, 0] if single else example, horizon)[1]
            extra = (InputSpec("exog", self._exog_shape(horizon), future),)
        tight = {"atol": 1e-8, "rtol": 1e-8}
        outputs = [
            OutputSpec(
                name,
                self.predict_from_windows,
                2 if single else 3,
                kwargs={"horizon": horizon, "part": part, "coverage": coverage},
                tolerance=tight,
            )
            for name, part in (("forecast", "mean"), ("lower", "lower"), ("upper", "upper"))
        ]
        if self._exog is not None:
            kwargs = {"input_method": self._validation_inputs, "input_kwargs": {"horizon": horizon}}
        return InferenceSpec(
            module=module.eval(),
            sample_shape=example.shape[2:] if single else example.shape[1:],
            outputs=outputs,
            example=example[:, 0] if single else example,
            feature_names=self._window_columns(),
            dtype="float64",
            extra_inputs=extra,
            metadata={
                "horizon": horizon,
                "coverage": coverage,
                "series": None if single else [str(c) for c in self._columns],
                "exog": self.exog_names_,
            },
            **kwargs,
        )

    def score(self, y_future, X=None) -> float:
        """Negative root mean squared error of the forecast of ``len(y_future)`` steps.

        Higher is better, as scikit-learn's scorers; for a panel, the mean over series.

        Parameters
        ----------
        y_future : Series, DataFrame or array-like
            The observations that followed the training sample.
        X : DataFrame, array-like or dict, optional
            The exogenous regressors over those periods (models fitted with X).
        """
        check_is_fitted(self, "params_")
        values, _, _, _ = _as_panel(y_future)
        forecast = self._point_forecasts(values.shape[1], X)
        return float(-np.sqrt(((forecast - values) ** 2).mean(axis=1)).mean())
