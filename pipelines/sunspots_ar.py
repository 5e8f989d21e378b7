"""AR model of yearly sunspot activity (statsmodels' copy): order by AIC, a 10-year forecast."""

from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

from toolkit.jobs import Job, import_file
from toolkit.timeseries import ARForecaster

forecasts = import_file(Path(__file__).with_name("_forecasts.py"))

SECONDS = {"quick": 2, "full": 2}
HORIZON = 10


def rmse(forecast, actual) -> float:
    return float(np.sqrt(np.mean((np.asarray(forecast) - np.asarray(actual)) ** 2)))


def run(full: bool = False) -> Job:
    data = sm.datasets.sunspots.load_pandas().data
    y = pd.Series(
        data["SUNACTIVITY"].to_numpy(),
        index=pd.period_range(str(int(data["YEAR"].iloc[0])), periods=len(data), freq="Y"),
        name="sunspots",
    )
    train, test = y.iloc[:-HORIZON], y.iloc[-HORIZON:]
    model = ARForecaster(criterion="aic", max_lags=30 if full else 20).fit(train)
    interval = model.predict_interval(HORIZON, coverage=0.95)
    score = rmse(interval["mean"], test)
    naive = rmse(np.full(HORIZON, train.iloc[-1]), test)
    order = max(model.lags_)
    windows = np.lib.stride_tricks.sliding_window_view(train.to_numpy(), order)

    def plot(folder: Path) -> None:
        title = f"Sunspots: AR({order}) by AIC, held-out RMSE {score:.1f} (naive {naive:.1f})"
        forecasts.save_figure(folder / "forecast.png", [(train.iloc[-70:], interval, "yearly sunspot activity")], title)

    details = f"AR({order}) by AIC, forecast of {test.index[0]}-{test.index[-1]}"
    export_options = {"horizon": HORIZON, "coverage": 0.95}
    # The floor: the naive forecast scores 43.4; a broken recursion is far worse.
    return forecasts.forecast_job(
        model, windows, score, naive, floor=30.0, details=details, export_options=export_options, plot=plot
    )
