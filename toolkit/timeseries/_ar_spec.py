"""What an AR fit estimates, as a plain value: lags, hold-back, deterministic terms and the
number of exogenous regressors; with the pure least-squares solve of a panel under it.

The estimator builds a specification from its hyper-parameters and y's index
(``ARForecaster._specify``); the in-memory fit and the Dask fit (each group of series on its
worker) both solve with it, so they cannot drift apart. It holds no data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.timeseries._ar_math import (
    ARFit,
    design_matrix,
    fit_ar,
    fit_design,
    regression_offsets,
    residuals,
)
from toolkit.timeseries._deterministic import DeterministicTerms


@dataclass(frozen=True)
class ARSpecification:
    """Y_t = d_t' beta + sum_{i in lags} phi_i Y_{t-i} + x_t' gamma + u_t, estimated on the
    observations after the first ``hold_back``.

    Parameters
    ----------
    lags : list of int
        The lags, ascending.
    hold_back : int
        Observations left out at the start (at least the largest lag).
    terms : DeterministicTerms
        The deterministic regressors d_t.
    n_exog : int
        Exogenous regressors x_t (columns ordered: deterministic terms, lags, exog).
    """

    lags: list[int]
    hold_back: int
    terms: DeterministicTerms
    n_exog: int = 0

    @property
    def order(self) -> int:
        """p, the largest lag (0 without lags)."""
        return max(self.lags, default=0)

    @property
    def n_deterministic(self) -> int:
        return len(self.terms)

    @property
    def fast_path(self) -> bool:
        """Trend-only models: the normal equations from lag-product sums, no regressor matrix."""
        terms = self.terms
        return self.n_exog == 0 and terms.process is None and terms.period is None and terms.trend != "ctt"

    @property
    def minimum_length(self) -> int:
        """Observations a fit needs: the held-back ones, one per parameter, and one more."""
        return self.hold_back + self.n_deterministic + len(self.lags) + self.n_exog + 1

    def check_length(self, n: int) -> None:
        """ValueError when ``n`` observations are too few for this specification."""
        needed = self.minimum_length
        if n < needed:
            raise ValueError(
                f"y has {n} observations; lags {self.lags} with {self.n_deterministic} deterministic term(s) "
                f"{self.terms.names} need at least {needed} ({self.hold_back} held back, "
                f"{needed - self.hold_back - 1} parameters and one more)"
            )

    def param_names(self, label: str, exog_names: list[str] | None) -> list[str]:
        """statsmodels' names: the deterministic terms, ``<label>.L<lag>``, the regressors."""
        return self.terms.names + [f"{label}.L{lag}" for lag in self.lags] + list(exog_names or [])

    def solve(self, values: np.ndarray, exog: np.ndarray | None = None) -> ARFit:
        """Least-squares estimates for each series of ``values`` (M, n); ``exog`` (M, n, e)."""
        if self.fast_path:
            return fit_ar(values, self.lags, self.terms.trend, self.hold_back)
        return fit_design(values, self.lags, self.terms.rows(0, values.shape[1]), exog, self.hold_back)

    def ar(self, params: np.ndarray) -> np.ndarray:
        """The AR coefficients (M, len(lags)) of parameters (M, k)."""
        return params[:, self.n_deterministic : self.n_deterministic + len(self.lags)]

    def residuals(self, values: np.ndarray, params: np.ndarray, exog: np.ndarray | None) -> np.ndarray:
        """Residuals over the estimation sample of ``values`` (M, hold_back + nobs); (M, nobs)."""
        if self.fast_path:
            return residuals(values, params, self.lags, self.terms.trend, self.hold_back)
        return values[:, self.hold_back :] - self.regression(values, params, exog, self.hold_back)

    def regression(self, values: np.ndarray, params: np.ndarray, exog: np.ndarray | None, first: int) -> np.ndarray:
        """One-step fitted values Z_t' params for t = first..n-1 of ``values`` (M, n); (M, n - first)."""
        n = values.shape[1]
        Z = design_matrix(values, self.lags, self.terms.rows(0, n), None if exog is None else exog[:, :n], first)
        return np.einsum("mnk,mk->mn", Z, params)

    def offsets(self, params: np.ndarray, start: int, stop: int, exog: np.ndarray | None) -> np.ndarray:
        """The deterministic and exogenous part of the model at positions start..stop-1; (M, stop - start)."""
        return regression_offsets(self.terms.rows(start, stop), params, self.n_deterministic, len(self.lags), exog)


def select_order(
    values: np.ndarray, exog: np.ndarray | None, terms: DeterministicTerms, max_lags: int, criterion: str
) -> tuple[list[int], np.ndarray]:
    """(lags 1..p, the criterion per order 0..max_lags) for the order minimising ``criterion``
    (summed over a panel's series), every order fitted on the common sample after ``max_lags``
    observations, as statsmodels' ``ar_select_order``."""
    n_exog = 0 if exog is None else exog.shape[2]
    ARSpecification(list(range(1, max_lags + 1)), max_lags, terms, n_exog).check_length(values.shape[1])
    scores = np.array(
        [
            ARSpecification(list(range(1, order + 1)), max_lags, terms, n_exog)
            .solve(values, exog)
            .information_criteria()[criterion]
            .sum()
            for order in range(max_lags + 1)
        ]
    )
    return list(range(1, int(np.argmin(scores)) + 1)), scores
