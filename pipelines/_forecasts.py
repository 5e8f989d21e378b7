"""What the forecasting pipelines share: their figure (observations, forecast, interval band per
series) and their job (a root-mean-squared error against the naive last-value forecast)."""

from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.jobs import Baseline, Job


def save_figure(path: Path, panels: list[tuple[pd.Series, pd.DataFrame, str]], title: str, columns: int = 1) -> None:
    """One panel per (observed, interval with mean / lower / upper columns, panel title), on a
    shared time axis, with a dotted line where the observations end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4 * columns if columns > 1 else 10, 3 * rows + 1), sharex=True, squeeze=False
    )
    for ax, (observed, interval, panel_title) in zip(axes.ravel(), panels):
        ax.plot(observed.index.to_timestamp(), observed.to_numpy(), color="black", lw=1, label="observed")
        when = interval.index.to_timestamp()
        ax.plot(when, interval["mean"], color="tab:blue", label="forecast")
        ax.fill_between(when, interval["lower"], interval["upper"], color="tab:blue", alpha=0.2, label="95 % interval")
        ax.axvline(observed.index[-1].to_timestamp(), color="grey", ls=":")
        ax.set_title(panel_title, fontsize=9)
    axes.ravel()[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def forecast_job(
    model,
    windows: np.ndarray,
    rmse: float,
    naive_rmse: float,
    *,
    floor: float,
    details: str,
    export_options: dict,
    plot,
) -> Job:
    """The job of a fitted forecaster: its RMSE (lower is better) against the naive forecast's;
    the export is validated on ``windows``."""
    return Job(
        model,
        windows,
        "rmse",
        rmse,
        Baseline("naive last value", naive_rmse),
        greater_is_better=False,
        floor=floor,
        details=details,
        export_options=export_options,
        plot=plot,
    )
