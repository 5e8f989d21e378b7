"""The deterministic regressors of an AR model: trend terms and seasonal dummies as statsmodels'
AutoReg builds them, or a user's ``statsmodels.tsa.deterministic.DeterministicProcess``.

AutoReg uses ``DeterministicProcess(index, additional_terms=[TimeTrend.from_string(trend),
Seasonality(period)])``: ``const``, ``trend`` (1, 2, ... from the first observation),
``trend_squared``, then dummies ``s(j,period)`` for the position j = (i mod period) + 1 of
observation i, the first one dropped when there is a constant. Here they are computed from
positions alone, so statsmodels is not needed unless the user passes a process of their own.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from toolkit.timeseries._ar_math import TREND_TERMS

# statsmodels' freq_to_period, by the offset's rule code (its first letters).
PERIODS = {"A": 1, "Y": 1, "Q": 4, "M": 12, "W": 52, "D": 7, "B": 5, "H": 24, "h": 24}


def infer_period(index: pd.Index) -> int:
    """The seasonal period of a DatetimeIndex / PeriodIndex frequency, as statsmodels infers it."""
    freq = getattr(index, "freq", None)
    if freq is None and isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
        freq = pd.tseries.frequencies.to_offset(pd.infer_freq(index)) if pd.infer_freq(index) else None
    code = getattr(freq, "rule_code", None) or getattr(freq, "name", None)
    if code is None:
        raise ValueError(
            "seasonal=True needs a period: give period=, or fit on a series whose DatetimeIndex / PeriodIndex "
            "has a frequency"
        )
    letter = code.lstrip("0123456789-").split("-")[0]
    for prefix in (letter, letter[:2], letter[:1]):
        if prefix in PERIODS:
            return PERIODS[prefix]
    raise ValueError(f"no seasonal period is known for the frequency {code!r}; give period=")


class DeterministicTerms:
    """Trend and seasonal columns by observation position (0-based), or a user's process.

    Parameters
    ----------
    trend : {"n", "c", "t", "ct", "ctt"}
    period : int or None
        Seasonal dummies of this period when given.
    process : DeterministicProcess, optional
        Any object with ``in_sample()`` and ``out_of_sample(steps)`` returning DataFrames
        (statsmodels' DeterministicProcess); replaces ``trend`` and ``period``.
    n_fit : int
        Observations the process's in-sample part covers (for a user's process).
    """

    def __init__(self, trend: str, period: int | None = None, process=None, n_fit: int = 0) -> None:
        self.trend, self.period, self.process, self.n_fit = trend, period, process, n_fit
        if process is not None:
            frame = process.in_sample()
            if len(frame) != n_fit:
                raise ValueError(
                    f"deterministic covers {len(frame)} observations, but y has {n_fit}: build the "
                    "DeterministicProcess on y's index"
                )
            self.names = [str(c) for c in frame.columns]
            self._in_sample = np.asarray(frame, dtype=np.float64)
        else:
            seasonal = [] if period is None else [f"s({j},{period})" for j in range(1, period + 1)]
            if period is not None and "const" in TREND_TERMS[trend]:
                seasonal = seasonal[1:]
            self.names = TREND_TERMS[trend] + seasonal

    def __len__(self) -> int:
        return len(self.names)

    def kinds(self) -> list[tuple]:
        """The columns as the export module computes them from positions: ("const",),
        ("power", k) for (position + 1)^k, ("season", j, period) for position mod period == j."""
        if self.process is not None:
            raise NotImplementedError("a user's deterministic process cannot be computed inside a graph")
        kinds = {"const": ("const",), "trend": ("power", 1), "trend_squared": ("power", 2)}
        terms = [kinds[name] for name in TREND_TERMS[self.trend]]
        if self.period is not None:
            first = 1 if "const" in TREND_TERMS[self.trend] else 0
            terms += [("season", j, self.period) for j in range(first, self.period)]
        return terms

    def at(self, positions: np.ndarray) -> np.ndarray:
        """The columns at any array of 0-based positions; shape positions.shape + (d,)."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.process is not None:
            table = self.rows(0, int(positions.max()) + 1)
            return table[positions]
        flat = positions.reshape(-1)
        return self._columns_at(flat).reshape(positions.shape + (len(self),))

    def _columns_at(self, positions: np.ndarray) -> np.ndarray:
        position = positions.astype(np.float64)
        columns = {"const": np.ones_like(position), "trend": position + 1, "trend_squared": (position + 1) ** 2}
        parts = [columns[name] for name in TREND_TERMS[self.trend]]
        if self.period is not None:
            dummies = (positions[:, None] % self.period == np.arange(self.period)).astype(np.float64)
            parts += list(dummies.T[1:] if "const" in TREND_TERMS[self.trend] else dummies.T)
        return np.stack(parts, axis=1) if parts else np.empty((len(positions), 0))

    def rows(self, start: int, stop: int) -> np.ndarray:
        """The columns at positions start..stop-1 (0 = the first observation y was fitted on); (stop - start, d)."""
        if self.process is not None:
            if stop <= self.n_fit:
                return self._in_sample[start:stop]
            future = np.asarray(self.process.out_of_sample(stop - self.n_fit), dtype=np.float64)
            return np.concatenate([self._in_sample, future])[start:stop]
        return self._columns_at(np.arange(start, stop))


def deterministic_terms(trend: str, seasonal: bool, period: int | None, process, index: pd.Index) -> DeterministicTerms:
    """The terms of ``ARForecaster(trend=, seasonal=, period=, deterministic=)`` fitted on ``index``."""
    if process is not None:
        if trend != "n" or seasonal:
            warnings.warn(
                'When using deterministic, trend must be "n" and seasonal must be False (they are ignored).',
                UserWarning,
                stacklevel=4,
            )
        if not (hasattr(process, "in_sample") and hasattr(process, "out_of_sample")):
            raise TypeError("deterministic must be a DeterministicProcess (with in_sample and out_of_sample)")
        return DeterministicTerms("n", process=process, n_fit=len(index))
    if seasonal and period is None:
        period = infer_period(index)
    return DeterministicTerms(trend, period if seasonal else None)
