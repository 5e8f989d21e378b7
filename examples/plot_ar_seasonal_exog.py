"""
AR models with seasonal terms and exogenous regressors
======================================================

Two extensions of the AR(p) model that statsmodels' ``AutoReg`` users rely on, with ``AutoReg``'s
numbers:

- **seasonal dummies**: Mauna Loa CO2, monthly, with a linear trend and one dummy per month
  (``seasonal=True``, the period read from the monthly index);
- **exogenous regressors (AR-X)**: US inflation on its own lags and the unemployment rate, whose
  future values the forecast takes as ``X``.
"""

import matplotlib.pyplot as plt
import pandas as pd
import statsmodels.api as sm
from statsmodels.tsa.ar_model import AutoReg

from toolkit.timeseries import ARForecaster

co2 = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().ffill()
co2.index = co2.index.to_period("M")
train, test = co2[:-36], co2[-36:]
model = ARForecaster(lags=2, trend="ct", seasonal=True).fit(train)
reference = AutoReg(train, lags=2, trend="ct", seasonal=True).fit()
print("largest difference from AutoReg's parameters:", float(abs(model.params_ - reference.params.to_numpy()).max()))
forecast = model.predict_interval(36)
print(f"RMSE over the last 3 years: {((forecast['mean'].to_numpy() - test.to_numpy()) ** 2).mean() ** 0.5:.2f} ppm")

fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(co2.index[-120:].to_timestamp(), co2[-120:], color="black", label="observed")
ax.plot(forecast.index.to_timestamp(), forecast["mean"], label="forecast from 1998")
ax.fill_between(forecast.index.to_timestamp(), forecast["lower"], forecast["upper"], alpha=0.3)
ax.set_ylabel("CO2 (ppm)")
ax.legend(loc="upper left")
fig.tight_layout()

# %%
# AR-X: inflation on two of its lags and the unemployment rate. The forecast needs the
# regressor's future values (here the observed ones: a conditional forecast).
macro = sm.datasets.macrodata.load_pandas().data
index = pd.period_range("1959Q1", periods=len(macro), freq="Q")
inflation = pd.Series(macro["infl"].to_numpy(), index=index, name="infl")
unemployment = pd.DataFrame({"unemp": macro["unemp"].to_numpy()}, index=index)
arx = ARForecaster(lags=2).fit(inflation[:-8], unemployment[:-8])
print(arx.summary())
print(arx.predict(8, unemployment[-8:]).round(2))
