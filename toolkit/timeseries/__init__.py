"""Time-series forecasters with scikit-learn's interface."""

from toolkit.timeseries._ar import ARForecaster, FrequencyWarning
from toolkit.timeseries._long_panel import LongPanel, long_panel

__all__ = ["ARForecaster", "FrequencyWarning", "LongPanel", "long_panel"]
