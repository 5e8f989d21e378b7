"""statsmodels' ``AutoReg.predict(start, end, dynamic)`` for a fitted AR model: in-sample
one-step (or dynamic) predictions continued by forecasts beyond the sample."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral

import numpy as np
import pandas as pd

from toolkit.timeseries._ar_math import dynamic_predictions
from toolkit.timeseries._ar_results import ARResults
from toolkit.timeseries._panel import Panel, future_index


def position(index: pd.Index, label, name: str) -> int:
    """A 0-based position from an int or a label of ``index`` (beyond it: its continuation)."""
    if isinstance(label, Integral) and not isinstance(label, bool):
        return int(label)
    try:
        return int(index.get_loc(label))
    except KeyError:
        future = future_index(index, 1000)
        try:
            return len(index) + int(future.get_loc(label))
        except KeyError:
            raise KeyError(f"{name}={label!r} is neither in y's index nor in its continuation") from None


def predict_range(
    results: ARResults,
    history: Panel,
    exog_history: np.ndarray | None,
    future_exog: Callable[[int], np.ndarray | None],
    start,
    end,
    dynamic,
) -> pd.Series | pd.DataFrame:
    """Predictions for observations ``start``..``end`` (inclusive) of ``history``.

    ``start`` and ``end`` are positions or labels (defaults: the first and last observation);
    beyond the sample they are forecasts, whose regressors ``future_exog(n_out_of_sample)``
    gives. From ``dynamic`` on (an offset from ``start``, True for 0, or a label) predictions
    feed on their own earlier predictions. Positions before the hold-back are NaN.
    """
    n = history.n_obs
    first = 0 if start is None else position(history.index, start, "start")
    last = n - 1 if end is None else position(history.index, end, "end")
    if first < 0 or last < first:
        raise ValueError(f"start={start!r} and end={end!r} give no observations to predict")
    if first > n:
        raise ValueError(f"start={start!r} is after the first out-of-sample observation ({n})")
    if dynamic is True:
        switch = first
    elif dynamic is False:
        switch = None
    elif isinstance(dynamic, Integral):
        switch = first + int(dynamic)
    else:
        switch = position(history.index, dynamic, "dynamic")
    if switch is not None and switch < first:
        raise ValueError("Dynamic prediction cannot begin prior to the first observation in the sample.")
    spec = results.spec
    if switch is not None:
        switch = max(switch, spec.hold_back)  # as AutoReg moves a start inside the held-back part
    n_oos = max(0, last + 1 - n)
    exog = future_exog(n_oos) if n_oos else None
    exog_all = exog_history
    if exog is not None:
        exog_all = np.concatenate([exog_all, exog], axis=1)
    offsets = spec.offsets(results.fit.params, 0, last + 1, None if exog_all is None else exog_all[:, : last + 1])
    predicted_from = n if switch is None else min(switch, n)  # lags at or after this read predictions
    predictions = dynamic_predictions(
        history.values, results.ar, spec.lags, offsets, max(first, spec.hold_back), predicted_from
    )
    index = history.index.append(future_index(history.index, n_oos)) if n_oos else history.index
    return history.wrap(predictions[:, first:], index[first : last + 1])
