"""A fitted AR model as an ONNX forecaster: forecasts from windows of past values.

The graph reads per series the last p observations (oldest first) and, when a deterministic
term other than the constant needs it, the 0-based position of the first forecast; it runs
the forecast recursion for a horizon fixed at export and gives the mean and the Gaussian
interval's bounds. :func:`forecast_from_windows` computes the same in numpy (what
``ARForecaster.predict_from_windows`` returns and validation compares with).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from toolkit._export_spec import InferenceSpec, InputSpec, OutputSpec
from toolkit.timeseries._ar_math import forecast_recursion, regression_offsets
from toolkit.timeseries._ar_results import ARResults
from toolkit.timeseries._panel import Panel

PARTS = ("mean", "lower", "upper")


def check_exportable(results: ARResults) -> None:
    """NotImplementedError for a model whose deterministic terms a graph cannot compute."""
    if results.spec.terms.process is not None:
        raise NotImplementedError(
            "forecasts from windows and the ONNX forecaster compute the deterministic terms from positions; "
            "a user's DeterministicProcess cannot be (use trend= and seasonal=, or pass its terms as exog)"
        )


def needs_position(results: ARResults) -> bool:
    """Whether the windows carry the forecast's position (a term other than the constant)."""
    return any(kind[0] != "const" for kind in results.spec.terms.kinds())


def window_columns(results: ARResults) -> list[str]:
    """The columns of one series' window: ``y.L<p>`` .. ``y.L1``, then ``time`` when needed."""
    columns = [f"{results.sample.label}.L{lag}" for lag in range(results.spec.order, 0, -1)]
    return columns + (["time"] if needs_position(results) else [])


def exog_shape(results: ARResults, per_series: bool, horizon: int) -> tuple[int, ...]:
    """Per-window shape of the future regressors the graph reads."""
    series = (results.sample.n_series,) if per_series and not results.sample.single else ()
    return series + (horizon, len(results.exog_names))


def last_windows(results: ARResults, history: Panel) -> np.ndarray:
    """The window that forecasts from the end of ``history``, per series; (S, w)."""
    window = history.values[:, history.n_obs - results.spec.order :]
    if needs_position(results):
        window = np.c_[window, np.full(len(window), history.n_obs, dtype=np.float64)]
    return window


def forecast_from_windows(
    results: ARResults,
    X,
    exog,
    *,
    per_series_exog: bool,
    horizon: int,
    part: str,
    coverage: float,
) -> np.ndarray:
    """Forecasts (n_windows, [n_series,] horizon) from windows X, as the graph computes them
    (see ``ARForecaster.predict_from_windows`` for the layout)."""
    check_exportable(results)
    spec, sample = results.spec, results.sample
    X = np.asarray(X, dtype=np.float64)
    p = spec.order
    width = len(window_columns(results))
    expected = (width,) if sample.single else (sample.n_series, width)
    if X.ndim != len(expected) + 1 or X.shape[1:] != expected:
        raise ValueError(
            f"X must have shape (n_windows, {', '.join(map(str, expected))}): columns {window_columns(results)}"
        )
    windows = X.reshape(-1, width)  # (B * S, w), series fastest
    params = np.tile(results.fit.params, (len(X), 1))
    start = windows[:, p].astype(np.int64) if width > p else np.zeros(len(windows), dtype=np.int64)
    future = None
    if results.exog_names is not None:
        if exog is None:
            raise ValueError(f"exog (the future regressors {results.exog_names}) is needed for this AR-X model")
        exog = np.asarray(exog, dtype=np.float64)
        shape = (len(X), *exog_shape(results, per_series_exog, horizon))
        if exog.shape != shape:
            raise ValueError(f"exog must have shape {shape}, got {exog.shape}")
        future = exog.reshape(-1, horizon, exog.shape[-1]) if len(shape) == 4 else np.repeat(exog, sample.n_series, 0)
    deterministic = spec.terms.at(start[:, None] + np.arange(horizon))  # (B * S, H, d)
    offsets = regression_offsets(deterministic, params, spec.n_deterministic, len(spec.lags), future)
    values = forecast_recursion(windows[:, :p], spec.ar(params), spec.lags, offsets)
    if part != "mean":
        half = results.interval_half_widths(horizon, coverage)
        values = values + np.tile(half, (len(X), 1)) * (-1 if part == "lower" else 1)
    return values.reshape(X.shape[:-1] + (horizon,))


def forecaster_spec(
    results: ARResults,
    history: Panel,
    exog_history: np.ndarray | None,
    *,
    per_series_exog: bool,
    horizon: int,
    coverage: float,
    forecast: Callable,
) -> InferenceSpec:
    """The forecast recursion for ``horizon`` steps with ``coverage`` intervals, in float64.

    ``history`` and ``exog_history`` are the observations up to now (the example window and
    the regressors validation feeds come from their end); ``forecast`` is the estimator's
    method that equals the graph (``predict_from_windows``)."""
    import torch

    from toolkit.nn.ar import ARForecastModule

    check_exportable(results)
    spec, sample = results.spec, results.sample
    p, n_det = spec.order, spec.n_deterministic
    ar = np.zeros((sample.n_series, p))
    for offset, lag in enumerate(spec.lags):
        ar[:, p - lag] = results.fit.params[:, n_det + offset]
    params = results.fit.params
    exog = None if results.exog_names is None else torch.from_numpy(params[:, n_det + len(spec.lags) :].copy())
    module = ARForecastModule(
        torch.from_numpy(ar),
        spec.terms.kinds(),
        torch.from_numpy(params[:, :n_det].copy()),
        exog,
        torch.from_numpy(results.interval_half_widths(horizon, coverage)),
        sample.single,
        exog_per_series=results.exog_names is not None and len(exog_shape(results, per_series_exog, horizon)) == 3,
    )
    window = last_windows(results, history)  # (S, w)
    example = np.stack([window, window])  # (2, S, w)

    def validation_inputs(X, horizon: int = horizon) -> tuple[np.ndarray, np.ndarray]:
        """(windows X, future regressors): the last ``horizon`` rows of the regressors seen so
        far stand in for each window's future."""
        X = np.asarray(X, dtype=np.float64)
        recent = exog_history[:, -horizon:]  # (M, H, e)
        if recent.shape[1] < horizon:
            recent = np.concatenate([recent] * (horizon // recent.shape[1] + 1), axis=1)[:, :horizon]
        future = recent if len(exog_shape(results, per_series_exog, horizon)) == 3 else recent[0]
        return X, np.broadcast_to(future, (len(X), *future.shape)).copy()

    extra, kwargs = (), {}
    if results.exog_names is not None:
        future = validation_inputs(example[:, 0] if sample.single else example)[1]
        extra = (InputSpec("exog", exog_shape(results, per_series_exog, horizon), future),)
        kwargs = {"input_method": validation_inputs, "input_kwargs": {"horizon": horizon}}
    tight = {"atol": 1e-8, "rtol": 1e-8}
    outputs = [
        OutputSpec(
            name,
            forecast,
            2 if sample.single else 3,
            kwargs={"horizon": horizon, "part": part, "coverage": coverage},
            tolerance=tight,
        )
        for name, part in zip(("forecast", "lower", "upper"), PARTS)
    ]
    return InferenceSpec(
        module=module.eval(),
        sample_shape=example.shape[2:] if sample.single else example.shape[1:],
        outputs=outputs,
        example=example[:, 0] if sample.single else example,
        feature_names=window_columns(results),
        dtype="float64",
        extra_inputs=extra,
        metadata={
            "horizon": horizon,
            "coverage": coverage,
            "series": None if sample.single else [str(c) for c in sample.columns],
            "exog": results.exog_names,
        },
        min_opset=15,  # onnx converts the window's Shape no lower than its version 15
        full_precision=(
            "a forecast feeds each step's value into the next, so rounding grows over the horizon, and its "
            "intervals are float64 sums of squared MA(infinity) weights; the graph has no matrix products to speed up"
        ),
        **kwargs,
    )
