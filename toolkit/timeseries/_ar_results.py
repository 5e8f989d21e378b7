"""The estimates of a fitted AR model, as statsmodels' ``AutoRegResults`` carries them.

Each statistic is a small cached property under the statisticians' name (``params``, ``bse``,
``sigma2``, ``llf``, ``aic``, ``bic``, ``hqic``, ``resid``, ``roots``), for one series (Series
and floats) or a panel (DataFrames and Series over the series); the arrays the maths reads
are ``fit`` (an :class:`~toolkit.timeseries._ar_math.ARFit`, series along the first axis).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from scipy.stats import norm

from toolkit.timeseries._ar_math import ARFit, ar_roots, forecast_variance
from toolkit.timeseries._ar_spec import ARSpecification
from toolkit.timeseries._panel import Panel
from toolkit.timeseries._summary import ARSummary, coefficient_table, model_name, roots_table


class ARResults:
    """What ``ARForecaster.fit`` estimated (``ARForecaster.results_``).

    Parameters
    ----------
    spec : ARSpecification
        The specification that was estimated.
    fit : ARFit
        Its least-squares estimates, one row per series.
    sample : Panel
        The series the model was fitted on (the estimation sample is after ``spec.hold_back``).
    exog : ndarray of shape (n_series, n_obs, n_exog), optional
        The exogenous regressors observed with them.
    exog_names : list of str, optional
    """

    def __init__(
        self,
        spec: ARSpecification,
        fit: ARFit,
        sample: Panel,
        exog: np.ndarray | None = None,
        exog_names: list[str] | None = None,
    ) -> None:
        self.spec, self.fit, self.sample, self.exog, self.exog_names = spec, fit, sample, exog, exog_names

    @property
    def nobs(self) -> int:
        """Observations in the estimation sample."""
        return self.fit.nobs

    @cached_property
    def param_names(self) -> list[str]:
        return self.spec.param_names(self.sample.label, self.exog_names)

    def _by_name(self, values: np.ndarray) -> pd.Series | pd.DataFrame:
        """(M, k) values by parameter name: a Series for one series, a DataFrame (a column per series)."""
        if self.sample.single:
            return pd.Series(values[0], index=self.param_names)
        return pd.DataFrame(values.T, index=self.param_names, columns=self.sample.columns)

    @cached_property
    def params(self) -> pd.Series | pd.DataFrame:
        """The estimates, named as statsmodels names them (``const``, ``trend``, ``y.L1``, ...)."""
        return self._by_name(self.fit.params)

    @cached_property
    def bse(self) -> pd.Series | pd.DataFrame:
        """Standard errors sqrt(diag(sigma^2 (X'X)^-1))."""
        return self._by_name(self.fit.bse)

    @property
    def ar(self) -> np.ndarray:
        """The AR coefficients (n_series, len(lags)) in the order of the lags."""
        return self.spec.ar(self.fit.params)

    @property
    def coef(self) -> np.ndarray:
        """The AR coefficients: (len(lags),) for one series, (n_series, len(lags)) for a panel."""
        return self.ar[0] if self.sample.single else self.ar

    @property
    def intercept(self) -> float | pd.Series:
        """The constant's estimate (0 without one)."""
        has_constant = "const" in self.spec.terms.names
        return self.sample.per_series(self.fit.params[:, 0] if has_constant else np.zeros(len(self.fit.params)))

    @property
    def sigma2(self) -> float | pd.Series:
        """sigma^2 = SSR / nobs, the maximum-likelihood estimate (AutoReg's)."""
        return self.sample.per_series(self.fit.sigma2)

    @property
    def llf(self) -> float | pd.Series:
        """Gaussian log-likelihood -nobs / 2 (log(2 pi sigma^2) + 1)."""
        return self.sample.per_series(self.fit.llf)

    @cached_property
    def _criteria(self) -> dict[str, np.ndarray]:
        return self.fit.information_criteria()

    @property
    def aic(self) -> float | pd.Series:
        """-2 llf + 2 df, df = k + 1."""
        return self.sample.per_series(self._criteria["aic"])

    @property
    def bic(self) -> float | pd.Series:
        """-2 llf + log(nobs) df."""
        return self.sample.per_series(self._criteria["bic"])

    @property
    def hqic(self) -> float | pd.Series:
        """-2 llf + 2 log(log(nobs)) df."""
        return self.sample.per_series(self._criteria["hqic"])

    @cached_property
    def resid(self) -> pd.Series | pd.DataFrame:
        """Residuals over the estimation sample."""
        end = self.spec.hold_back + self.nobs
        values = self.sample.values[:, :end]
        exog = None if self.exog is None else self.exog[:, :end]
        return self.sample.wrap(
            self.spec.residuals(values, self.fit.params, exog), self.sample.index[self.spec.hold_back : end]
        )

    @property
    def fittedvalues(self) -> pd.Series | pd.DataFrame:
        """One-step-ahead fitted values over the estimation sample (y minus the residuals)."""
        observed = self.sample.values[:, self.spec.hold_back : self.spec.hold_back + self.nobs]
        return self.sample.wrap(observed, self.resid.index) - self.resid

    @cached_property
    def roots(self) -> np.ndarray | pd.DataFrame:
        """Roots of 1 - phi_1 z - ... - phi_p z^p: an array for one series, a DataFrame (a
        column per series) for a panel."""
        roots = ar_roots(self.ar, self.spec.lags)  # (M, p)
        return roots[0] if self.sample.single else pd.DataFrame(roots.T, columns=self.sample.columns)

    @property
    def is_stationary(self) -> bool | pd.Series:
        """Whether every root lies outside the unit circle."""
        outside = (np.abs(np.asarray(self.roots)) > 1).all(axis=None if self.sample.single else 0)
        return bool(outside) if self.sample.single else pd.Series(outside, index=self.sample.columns)

    def interval_half_widths(self, horizon: int, coverage: float) -> np.ndarray:
        """z_{(1 + coverage) / 2} sqrt(sigma^2 sum_{j<h} psi_j^2) per series and step; (M, horizon).

        The h-step forecast error variance with the MA(inf) weights psi of the AR polynomial
        (parameter uncertainty ignored, as statsmodels)."""
        variance = forecast_variance(self.ar, self.fit.sigma2, self.spec.lags, horizon)
        return norm.ppf(0.5 + coverage / 2) * np.sqrt(variance)

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
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        sample = self.sample
        if sample.single:
            name, pick = sample.label, (lambda v: v)
        else:
            if series not in sample.columns:
                raise ValueError(f"series must name one of the panel's series {sample.columns}, got {series!r}")
            name, pick = str(series), (lambda v: v[series])
        hold_back = self.spec.hold_back
        stamps = sample.index[hold_back : hold_back + self.nobs]
        if isinstance(stamps, (pd.DatetimeIndex, pd.PeriodIndex)):
            first, last = stamps[0].strftime("%m-%d-%Y"), "- " + stamps[-1].strftime("%m-%d-%Y")
        else:
            first, last = str(hold_back), str(hold_back + self.nobs)
        order = self.spec.order
        info = {
            "Dep. Variable:": name,
            "Model:": model_name(
                self.spec.terms.period is not None, len(self.spec.lags) < order, self.exog_names is not None, order
            ),
            "Method:": "Conditional MLE",
            "Sample:": f"{first} {last}",
            "No. Observations:": str(self.nobs),
            "Log Likelihood": f"{pick(self.llf):#5.3f}",
            "S.D. of innovations": f"{pick(self.sigma2) ** 0.5:#5.3f}",
            "AIC": f"{pick(self.aic):#5.3f}",
            "BIC": f"{pick(self.bic):#5.3f}",
            "HQIC": f"{pick(self.hqic):#5.3f}",
        }
        return ARSummary(
            info, coefficient_table(pick(self.params), pick(self.bse), alpha), roots_table(np.asarray(pick(self.roots)))
        )
