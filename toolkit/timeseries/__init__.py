"""Time-series forecasters with scikit-learn's interface."""

from toolkit.timeseries._ar import ARForecaster, FrequencyWarning

__all__ = ["ARForecaster", "FrequencyWarning"]
