"""US quarterly growth rates (statsmodels' macrodata): one AR per series in one fit, forecasts from every
quarter of 2000-2009.

The model is fitted once on 1959-1999; from each quarter of 2000-2009 it forecasts the next
eight from the observations before that quarter (the exported graph's windows -> forecasts,
no refit), and the errors are pooled over origins and horizons. One 8-quarter window would
judge the model on a single draw (the last one is the 2008 recession); the naive baseline
forecasts every horizon with the last observed value.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

from toolkit.jobs import Job, import_file
from toolkit.timeseries import ARForecaster

forecasts = import_file(Path(__file__).with_name("_forecasts.py"))

SECONDS = {"quick": 2, "full": 3}
HORIZON = 8
HELD_OUT = 40  # quarters, 2000Q1-2009Q3
SERIES = ["realgdp", "realcons", "realinv", "realgovt", "cpi", "m1"]


def rolling_rmse(forecasts: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-series RMSE pooled over origins and horizons: (n_origins, n_series, h) each -> (n_series,)."""
    return np.sqrt(((forecasts - actual) ** 2).mean(axis=(0, 2)))


def run(full: bool = False) -> Job:
    data = sm.datasets.macrodata.load_pandas().data
    levels = data[SERIES].set_axis(pd.period_range("1959Q1", periods=len(data), freq="Q"))
    growth = 100 * np.log(levels).diff().dropna()  # quarterly growth, percent
    train = growth.iloc[:-HELD_OUT]
    model = ARForecaster(criterion="bic", max_lags=12 if full else 8).fit(train)
    order = max(model.lags_)
    values = growth.to_numpy()  # (T, S)
    origins = np.arange(len(train), len(values) - HORIZON + 1)
    windows = np.stack([values[o - order : o].T for o in origins])  # (n_origins, S, p), oldest first
    actual = np.stack([values[o : o + HORIZON].T for o in origins])  # (n_origins, S, h)
    errors = rolling_rmse(model.predict_from_windows(windows, horizon=HORIZON), actual)
    naive = rolling_rmse(np.repeat(windows[:, :, -1:], HORIZON, axis=2), actual)

    def plot(folder: Path) -> None:
        interval = model.predict_interval(HORIZON)
        panels = [
            (
                train[column].iloc[-20:],
                interval[column],
                f"{column}: rolling RMSE {error:.2f} (naive {naive_error:.2f})",
            )
            for column, error, naive_error in zip(SERIES, errors, naive)
        ]
        title = (
            f"Quarterly growth (%), AR({order}) per series by BIC: the first {HORIZON}-quarter forecast after the fit"
        )
        forecasts.save_figure(folder / "forecast.png", panels, title, columns=3)

    per_series = ", ".join(f"{c} {e:.2f} (naive {n:.2f})" for c, e, n in zip(SERIES, errors, naive))
    details = (
        f"AR({order}) by BIC, mean over series of the RMSE of {len(origins)} origins x 1..{HORIZON} quarters ahead; "
        + per_series
    )
    # The floor: the training mean as forecast scores 1.43; a broken recursion is far worse.
    return forecasts.forecast_job(
        model,
        windows,
        float(errors.mean()),
        float(naive.mean()),
        floor=1.6,
        details=details,
        export_options={"horizon": HORIZON},
        plot=plot,
    )
