"""
Forecasting sunspots with an AR(p) model
========================================

:class:`~toolkit.timeseries.ARForecaster` picks the order by AIC among 1 to 20 lags, reports
statsmodels' ``AutoReg`` statistics under the same names, forecasts with prediction intervals,
and exports a float64 graph that forecasts from windows of the last p observations.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm

from toolkit.onnx import export, load
from toolkit.timeseries import ARForecaster

data = sm.datasets.sunspots.load_pandas().data
y = pd.Series(data["SUNACTIVITY"].to_numpy(), index=pd.period_range("1700", periods=len(data), freq="Y"))
model = ARForecaster(criterion="aic", max_lags=20).fit(y)
print(model.summary())

# %%
# The next 10 years with their 95 % intervals.
interval = model.predict_interval(10, coverage=0.95)  # mean / lower / upper
print(interval.round(1))
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(y.index[-60:].to_timestamp(), y.iloc[-60:], color="black", label="observed")
future = interval.index.to_timestamp()
ax.plot(future, interval["mean"], label="forecast")
ax.fill_between(future, interval["lower"], interval["upper"], alpha=0.3, label="95 % interval")
ax.set_ylabel("sunspot activity")
ax.legend(loc="upper left")
fig.tight_layout()

# %%
# The exported graph forecasts from windows: per row the last p observations, oldest first
# (columns SUNACTIVITY.L9 ... SUNACTIVITY.L1 for p = 9), one row per forecast origin.
folder = Path(tempfile.mkdtemp()) / "sunspots"
export(model, folder, horizon=10)  # float64 graph: windows -> forecasts
p = max(model.lags_)
windows = np.stack([y.to_numpy()[-p:], y.to_numpy()[-p - 1 : -1]])  # (2, p): from 2008, from 2007
forecasts = load(folder).run(windows)  # {"forecast", "lower", "upper"}, each (2, 10)
assert np.allclose(forecasts["forecast"][0], model.predict(10))
print(forecasts["forecast"].round(2))
