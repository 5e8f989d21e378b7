"""A panel of US quarterly growth rates (statsmodels' macrodata), one AR per series in one fit."""

import numpy as np
import pandas as pd
import statsmodels.api as sm

from toolkit.jobs import Job
from toolkit.timeseries import ARForecaster

HORIZON = 8
SERIES = ["realgdp", "realcons", "realinv", "realgovt", "cpi", "m1"]


def run(full: bool = False) -> Job:
    data = sm.datasets.macrodata.load_pandas().data
    levels = data[SERIES].set_axis(pd.period_range("1959Q1", periods=len(data), freq="Q"))
    growth = 100 * np.log(levels).diff().dropna()  # quarterly growth, percent
    train, test = growth.iloc[:-HORIZON], growth.iloc[-HORIZON:]
    model = ARForecaster(criterion="bic", max_lags=12 if full else 8).fit(train)
    forecast = model.predict(HORIZON)
    errors = np.sqrt(((forecast - test) ** 2).mean())
    naive = np.sqrt(((train.iloc[-1] - test) ** 2).mean())
    order = max(model.lags_, default=0)
    windows = np.stack(
        [np.lib.stride_tricks.sliding_window_view(train[c].to_numpy(), order) for c in SERIES], axis=1
    )  # (n_windows, n_series, p)

    def plot(folder):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        interval = model.predict_interval(HORIZON)
        fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True)
        for ax, column in zip(axes.ravel(), SERIES):
            recent = growth[column].iloc[-40:]
            ax.plot(recent.index.to_timestamp(), recent.to_numpy(), color="black", lw=1)
            when = interval.index.to_timestamp()
            ax.plot(when, interval[column]["mean"], color="tab:blue")
            ax.fill_between(when, interval[column]["lower"], interval[column]["upper"], color="tab:blue", alpha=0.2)
            ax.set_title(f"{column}: RMSE {errors[column]:.2f} (naive {naive[column]:.2f})", fontsize=9)
        fig.suptitle(f"Quarterly growth (%), AR({order}) per series chosen by BIC, {HORIZON}-quarter forecasts")
        fig.tight_layout()
        fig.savefig(folder / "forecast.png", dpi=100)
        plt.close(fig)

    return Job(
        model,
        windows,
        "mean_rmse",
        float(errors.mean()),
        details=f"{len(SERIES)} series, AR({order}) by BIC, naive {float(naive.mean()):.2f}; "
        + ", ".join(f"{c} {errors[c]:.2f}" for c in SERIES),
        export_options={"horizon": HORIZON},
        plot=plot,
    )
