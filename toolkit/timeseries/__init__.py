"""Time-series forecasters with scikit-learn's interface."""

from toolkit.timeseries._ar import ARForecaster
from toolkit.timeseries._long_panel import LongPanel, long_panel
from toolkit.timeseries._panel import FrequencyWarning

__all__ = ["ARForecaster", "FrequencyWarning", "LongPanel", "long_panel"]
