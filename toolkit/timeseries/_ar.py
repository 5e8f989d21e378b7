"""``ARForecaster``: AR(p) forecasting by least squares, for one series or a panel of them.

The estimator states the model (its hyper-parameters become an
:class:`~toolkit.timeseries._ar_spec.ARSpecification`), fits it (in memory, or on a Dask
cluster through :mod:`toolkit.timeseries._dask_panel`), keeps the estimates in an
:class:`~toolkit.timeseries._ar_results.ARResults` (``results_``; the fitted attributes are read
from it) and forecasts. Inside, data is a :class:`~toolkit.timeseries._panel.Panel` (M series,
one of them for a single series); pandas containers appear only at the edges. The ONNX
forecaster lives in :mod:`toolkit.timeseries._ar_export`.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from toolkit._dask import is_dask_collection
from toolkit._export_spec import InferenceSpec
from toolkit._fit_state import fitting
from toolkit._param_validation import Interval, StrOptions
from toolkit.timeseries._ar_export import forecast_from_windows, forecaster_spec
from toolkit.timeseries._ar_math import forecast_recursion
from toolkit.timeseries._ar_prediction import predict_range
from toolkit.timeseries._ar_results import ARResults
from toolkit.timeseries._ar_spec import ARSpecification, select_order
from toolkit.timeseries._dask_panel import read_panel, solve_on_cluster
from toolkit.timeseries._deterministic import deterministic_terms
from toolkit.timeseries._exog import ExogLayout
from toolkit.timeseries._long_panel import LongPanel
from toolkit.timeseries._panel import Panel, future_index
from toolkit.timeseries._summary import ARSummary


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
    results_ : ARResults
        The estimates as statsmodels' results carry them (``params``, ``bse``, ``sigma2``,
        ``resid``, ``fittedvalues``, ``roots``, ``summary()``, ...); the attributes above are
        read from it.
    criterion_values_ : Series
        With ``criterion``: its value per order 0..max_lags.
    endog_ : Series or DataFrame
        The observations the next forecast continues: y, then what :meth:`update` appended.
    index_ : Index
        Their time stamps.
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
        with fitting(self):
            if is_dask_collection(y) or isinstance(y, LongPanel):
                if X is not None:
                    raise NotImplementedError(
                        "exogenous regressors are not supported with a Dask y; fit in memory, or without X"
                    )
                if self.criterion is not None:
                    raise NotImplementedError("criterion (order search) is not supported with a Dask y; give lags")
                panel = read_panel(y)
                spec = self._specify(panel.times, None, None)
                fit, sample = solve_on_cluster(panel, spec)
                return self._store(ARResults(spec, fit, sample), None)
            sample = Panel.from_data(y)
            sample.check_finite()
            layout, exog = None, None
            if X is not None:
                layout, exog = ExogLayout.from_fit(X, sample.n_obs, sample.columns, sample.index)
            spec = self._specify(sample.index, sample.values, exog)
            names = None if layout is None else list(layout.names)
            return self._store(ARResults(spec, spec.solve(sample.values, exog), sample, exog, names), layout)

    def _specify(self, index: pd.Index, values: np.ndarray | None, exog: np.ndarray | None) -> ARSpecification:
        """The specification of a fit on ``index`` (``values`` only for an order search by ``criterion``)."""
        terms = deterministic_terms(self.trend, self.seasonal, self.period, self.deterministic, index)
        n_exog = 0 if exog is None else exog.shape[2]
        if self.criterion is not None:
            if self.max_lags is None:
                raise ValueError("criterion is set, so max_lags (the largest order searched) is required")
            lags, scores = select_order(values, exog, terms, self.max_lags, self.criterion)
            self.criterion_values_ = pd.Series(scores, index=pd.RangeIndex(self.max_lags + 1, name="order"))
        else:
            lags = self._candidate_lags()
        hold_back = max(lags, default=0) if self.hold_back is None else self.hold_back
        if hold_back < max(lags, default=0):
            raise ValueError(f"hold_back={hold_back} must be >= the largest lag ({max(lags)})")
        spec = ARSpecification(lags, hold_back, terms, n_exog)
        spec.check_length(len(index))
        return spec

    def _store(self, results: ARResults, layout: ExogLayout | None):
        """Keep a fit: its results, the fitted attributes read from them, and the series
        (and regressors) that forecasts continue."""
        self.results_ = results
        self._exog_layout = layout
        self._history = results.sample
        self._exog_history = results.exog
        spec = results.spec
        self.lags_ = spec.lags
        self.hold_back_ = spec.hold_back
        self.n_obs_ = results.nobs
        self.period_ = spec.terms.period
        self.exog_names_ = results.exog_names
        self.params_ = results.params
        self.bse_ = results.bse
        self.coef_ = results.coef
        self.intercept_ = results.intercept
        self.sigma2_ = results.sigma2
        self.llf_ = results.llf
        self.aic_ = results.aic
        self.bic_ = results.bic
        self.hqic_ = results.hqic
        return self

    @property
    def resid_(self):
        """Residuals over the estimation sample (Series, or DataFrame for a panel), computed
        on first use."""
        check_is_fitted(self, "params_")
        return self.results_.resid

    @property
    def roots_(self):
        """Roots of the AR polynomial (ndarray; a panel: a DataFrame, one column per series),
        computed on first use (an eigenvalue problem per series)."""
        check_is_fitted(self, "params_")
        return self.results_.roots

    @property
    def is_stationary_(self):
        """Whether every root lies outside the unit circle (bool; a panel: a Series)."""
        check_is_fitted(self, "params_")
        return self.results_.is_stationary

    @property
    def endog_(self) -> pd.Series | pd.DataFrame:
        """The observed series the next forecast continues: the training sample and what
        :meth:`update` appended (Series, or DataFrame for a panel)."""
        check_is_fitted(self, "params_")
        return self._history.wrap(self._history.values, self._history.index)

    @property
    def index_(self) -> pd.Index:
        """The time stamps of ``endog_``."""
        check_is_fitted(self, "params_")
        return self._history.index

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
        return self.results_.summary(alpha, series)

    # ------------------------------------------------------------ forecast
    def _check_horizon(self, horizon) -> int:
        if not isinstance(horizon, Integral) or isinstance(horizon, bool) or horizon <= 0:
            raise ValueError(f"horizon must be a positive int, got {horizon!r}")
        return int(horizon)

    def _future_exog(self, X, horizon: int) -> np.ndarray | None:
        """The future regressors (M, horizon, e) for a forecast, or None without exog."""
        if self._exog_layout is None:
            if X is not None:
                raise ValueError("X was given, but the model was fitted without exogenous regressors")
            return None
        if X is None:
            raise ValueError(
                f"the model has exogenous regressors {self.exog_names_}: pass their future values as X "
                f"({horizon} row(s), one per forecast step)"
            )
        return self._exog_layout.values(X, horizon, self._history.columns, "X")

    def _point_forecasts(self, horizon: int, X=None) -> np.ndarray:
        n = self._history.n_obs
        spec, params = self.results_.spec, self.results_.fit.params
        offsets = spec.offsets(params, n, n + horizon, self._future_exog(X, horizon))
        return forecast_recursion(self._history.values, self.results_.ar, spec.lags, offsets)

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
            return predict_range(
                self.results_,
                self._history,
                self._exog_history,
                lambda n_oos: self._future_exog(X, n_oos),
                start,
                end,
                dynamic,
            )
        horizon = self._check_horizon(horizon)
        return self._history.wrap(self._point_forecasts(horizon, X), future_index(self._history.index, horizon))

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
        half = self.results_.interval_half_widths(horizon, coverage)
        index = future_index(self._history.index, horizon)
        parts = {"mean": mean, "lower": mean - half, "upper": mean + half}
        if self._history.single:
            return pd.DataFrame({key: value[0] for key, value in parts.items()}, index=index)
        stacked = np.stack(list(parts.values()), axis=2)  # (M, h, 3)
        columns = pd.MultiIndex.from_product([self._history.columns, list(parts)])
        return pd.DataFrame(stacked.transpose(1, 0, 2).reshape(horizon, -1), index=index, columns=columns)

    def predict_in_sample(self):
        """One-step-ahead fitted values over the estimation sample (y minus the residuals).

        Returns
        -------
        Series or DataFrame
        """
        check_is_fitted(self, "params_")
        return self.results_.fittedvalues

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
        new = Panel.from_data(new_y, "new_y")
        if not self._history.same_layout(new):
            raise ValueError(f"new_y must have the layout used at fit (columns {self._history.columns})")
        new.check_finite()
        exog = self._future_exog(X, new.n_obs)
        if exog is not None:
            self._exog_history = np.concatenate([self._exog_history, exog], axis=1)
        labelled = isinstance(new_y, (pd.Series, pd.DataFrame)) and not isinstance(new.index, pd.RangeIndex)
        index = new.index if labelled else future_index(self._history.index, new.n_obs)
        self._history = self._history.extended(new.values, index)
        return self

    # --------------------------------------------------------------- export
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
        return forecast_from_windows(
            self.results_,
            X,
            exog,
            per_series_exog=self._exog_layout is not None and self._exog_layout.per_series,
            horizon=self._check_horizon(horizon),
            part=part,
            coverage=coverage,
        )

    def __onnx_spec__(self, horizon: int = 10, coverage: float = 0.95) -> InferenceSpec:
        """The forecast recursion for ``horizon`` steps with ``coverage`` intervals, in float64
        (see :mod:`toolkit.timeseries._ar_export`)."""
        check_is_fitted(self, "params_")
        return forecaster_spec(
            self.results_,
            self._history,
            self._exog_history,
            per_series_exog=self._exog_layout is not None and self._exog_layout.per_series,
            horizon=self._check_horizon(horizon),
            coverage=coverage,
            forecast=self.predict_from_windows,
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
        future = Panel.from_data(y_future, "y_future")
        forecast = self._point_forecasts(future.n_obs, X)
        return float(-np.sqrt(((forecast - future.values) ** 2).mean(axis=1)).mean())
