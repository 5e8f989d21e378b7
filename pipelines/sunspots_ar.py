"""AR model of yearly sunspot activity (statsmodels' copy): order by AIC, a 10-year forecast."""

import numpy as np
import pandas as pd
import statsmodels.api as sm

from toolkit.jobs import Baseline, Job
from toolkit.timeseries import ARForecaster

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

    def plot(folder):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 4))
        history = y.iloc[-80:]
        ax.plot(history.index.year, history.to_numpy(), color="black", lw=1, label="observed")
        years = interval.index.year
        ax.plot(years, interval["mean"], color="tab:blue", label=f"AR({order}) forecast")
        ax.fill_between(years, interval["lower"], interval["upper"], color="tab:blue", alpha=0.2, label="95 % interval")
        ax.axvline(train.index[-1].year + 0.5, color="grey", ls=":")
        ax.set(xlabel="year", ylabel="sunspot activity", title=f"Sunspots: held-out RMSE {score:.1f} (naive {naive:.1f})")
        ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(folder / "forecast.png", dpi=100)
        plt.close(fig)

    return Job(
        model,
        windows,
        "rmse",
        score,
        Baseline("naive last value", naive),
        greater_is_better=False,
        floor=30.0,  # the naive forecast's 43.4; a broken recursion is far worse
        details=f"AR({order}) by AIC, forecast of {test.index[0]}-{test.index[-1]}",
        export_options={"horizon": HORIZON, "coverage": 0.95},
        plot=plot,
    )
