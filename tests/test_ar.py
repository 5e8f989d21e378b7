"""ARForecaster against statsmodels' AutoReg / ar_select_order, panels, indexes and bad input."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from statsmodels.tsa.ar_model import AutoReg, ar_select_order

from toolkit.onnx import export, load, validate
from toolkit.timeseries import ARForecaster, FrequencyWarning, _ar_math


def sunspots() -> pd.Series:
    data = sm.datasets.sunspots.load_pandas().data
    return pd.Series(
        data["SUNACTIVITY"].to_numpy(), index=pd.period_range("1700", periods=len(data), freq="Y"), name="SUNACTIVITY"
    )


def inflation() -> pd.Series:
    data = sm.datasets.macrodata.load_pandas().data
    index = pd.period_range("1959Q1", periods=len(data), freq="Q")
    return pd.Series(data["infl"].to_numpy(), index=index, name="infl")


SERIES = {"sunspots": sunspots, "inflation": inflation}


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.fixture(params=["compiled", "numpy"])
def data_passes(request, monkeypatch):
    """Each test twice: with the compiled data passes (_ar_kernel.c) and with numpy's."""
    if request.param == "numpy":
        monkeypatch.setattr(_ar_math, "kernel", None)
    return request.param


def test_the_compiled_passes_were_built():
    assert _ar_math.kernel is not None, (
        "toolkit/timeseries/_ar_kernel.c is built by `pip install -e .` (needs a C compiler)"
    )


@pytest.mark.parametrize("trend", ["n", "c", "t", "ct"])
@pytest.mark.parametrize(
    "shape, lags", [((3, 500), [1, 2, 12]), ((2, 1300), list(range(1, 25))), ((4, 14), [1, 3]), ((1, 9), [])]
)
def test_compiled_passes_equal_numpys(trend, shape, lags, monkeypatch):
    # Series longer and shorter than the kernel's 512-step chunks, lag lists with gaps, no lags.
    rng = np.random.default_rng(len(lags))
    Y = rng.normal(size=shape) * 3 + 50
    hold_back = max(lags, default=0)
    k = len(_ar_math.deterministic_columns(trend)) + len(lags)
    params = rng.normal(size=(shape[0], k))
    compiled = (
        _ar_math._lag_product_sums(Y, hold_back),
        *_ar_math._edge_sums(Y, hold_back),
        *_ar_math._residual_statistics(Y, params, lags, trend, hold_back),
    )
    monkeypatch.setattr(_ar_math, "kernel", None)
    reference = (
        _ar_math._lag_product_sums(Y, hold_back),
        *_ar_math._edge_sums(Y, hold_back),
        *_ar_math._residual_statistics(Y, params, lags, trend, hold_back),
    )
    for ours, expected in zip(compiled, reference):
        assert ours.shape == expected.shape
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-9)


def test_compiled_passes_reject_inconsistent_buffers():
    kernel = _ar_math.kernel
    Y = np.zeros((2, 10))
    with pytest.raises(ValueError, match="out has 8 bytes, expected 8 float64 values"):
        kernel.lag_product_sums(Y, np.zeros(1), 2, 10, 3)
    with pytest.raises(ValueError, match=r"lags must be int64 values in \[1, hold_back=2\]"):
        kernel.residual_statistics(
            Y, np.zeros((2, 1)), np.array([3]), np.zeros(2), np.zeros((2, 1)), 2, 10, 2, False, False
        )


@pytest.mark.parametrize("dataset", list(SERIES))
@pytest.mark.parametrize("trend", ["n", "c", "t", "ct"])
@pytest.mark.parametrize("p", [1, 2, 5, 12])
def test_parity_with_autoreg(dataset, trend, p, data_passes):
    y = SERIES[dataset]()
    ours = ARForecaster(p, trend=trend).fit(y)
    ref = AutoReg(y, lags=p, trend=trend).fit()
    assert list(ours.params_.index) == list(ref.params.index)
    assert rel(ours.params_, ref.params) < 1e-8
    assert rel(ours.bse_, ref.bse) < 1e-8
    assert rel(ours.sigma2_, ref.sigma2) < 1e-8
    for name in ("aic", "bic", "hqic", "llf"):
        assert getattr(ours, f"{name}_") == pytest.approx(getattr(ref, name), rel=1e-10, abs=1e-8)
    assert ours.n_obs_ == ref.nobs
    assert rel(ours.resid_, ref.resid) < 1e-6 or np.max(np.abs(ours.resid_ - ref.resid)) < 1e-8
    forecast = ours.predict(12)
    assert rel(forecast, ref.forecast(12)) < 1e-8
    assert list(forecast.index) == list(ref.forecast(12).index)
    interval = ours.predict_interval(12, coverage=0.9)
    expected = ref.get_prediction(start=len(y), end=len(y) + 11).conf_int(alpha=0.1)
    assert rel(interval["lower"], expected.iloc[:, 0]) < 1e-8
    assert rel(interval["upper"], expected.iloc[:, 1]) < 1e-8
    assert np.max(np.abs(ours.predict_in_sample() - ref.fittedvalues)) < 1e-8 * np.abs(y).max()


def test_explicit_lag_list_matches_autoreg(data_passes):
    y = sunspots()
    ours = ARForecaster([1, 2, 9], trend="c").fit(y)
    ref = AutoReg(y, lags=[1, 2, 9], trend="c").fit()
    assert rel(ours.params_, ref.params) < 1e-8 and ours.lags_ == [1, 2, 9]
    assert rel(ours.predict(8), ref.forecast(8)) < 1e-8


@pytest.mark.parametrize("dataset", list(SERIES))
@pytest.mark.parametrize("criterion", ["aic", "bic", "hqic"])
@pytest.mark.parametrize("trend", ["n", "c", "ct"])
def test_order_selection_matches_ar_select_order(dataset, criterion, trend):
    y = SERIES[dataset]()
    expected = ar_select_order(y, 13, ic=criterion, trend=trend).ar_lags
    ours = ARForecaster(criterion=criterion, max_lags=13, trend=trend).fit(y)
    assert ours.lags_ == (list(expected) if expected is not None else [])


def test_panel_equals_fitting_each_column_alone(data_passes):
    data = sm.datasets.macrodata.load_pandas().data
    panel = np.log(data[["realgdp", "realcons", "realinv", "cpi"]]).diff().dropna() * 100
    panel.index = pd.period_range("1959Q2", periods=len(panel), freq="Q")
    model = ARForecaster(4, trend="ct").fit(panel)
    forecast = model.predict(6)
    interval = model.predict_interval(6)
    assert list(forecast.columns) == list(panel.columns)
    assert list(interval.columns) == [(c, part) for c in panel.columns for part in ("mean", "lower", "upper")]
    for column in panel.columns:
        alone = ARForecaster(4, trend="ct").fit(panel[column])
        np.testing.assert_allclose(model.params_[column].to_numpy(), alone.params_.to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(model.bse_[column].to_numpy(), alone.bse_.to_numpy(), rtol=1e-12)
        assert model.sigma2_[column] == pytest.approx(alone.sigma2_, rel=1e-12)
        assert model.aic_[column] == pytest.approx(alone.aic_, rel=1e-12)
        np.testing.assert_allclose(forecast[column], alone.predict(6), rtol=1e-12)
        np.testing.assert_allclose(interval[column]["upper"], alone.predict_interval(6)["upper"], rtol=1e-12)


def test_forecast_index_continues_the_training_index():
    index = pd.date_range("2020-01-01", periods=200, freq="D")
    y = pd.Series(np.sin(np.arange(200) / 5) + np.random.default_rng(0).normal(0, 0.1, 200), index=index)
    forecast = ARForecaster(3).fit(y).predict(5)
    assert list(forecast.index) == list(pd.date_range("2020-07-19", periods=5, freq="D"))
    array_forecast = ARForecaster(3).fit(y.to_numpy()).predict(5)
    assert list(array_forecast.index) == [200, 201, 202, 203, 204]


def test_datetime_index_without_frequency_falls_back_to_integers_with_a_warning():
    index = pd.DatetimeIndex(pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-04", "2020-01-09"] * 1)).append(
        pd.date_range("2020-02-01", periods=96, freq="D")
    )
    y = pd.Series(np.random.default_rng(1).normal(size=100), index=index)
    model = ARForecaster(2).fit(y)
    with pytest.warns(FrequencyWarning, match="no frequency"):
        forecast = model.predict(3)
    assert list(forecast.index) == [100, 101, 102]


def test_update_appends_without_refitting():
    y = sunspots()
    model = ARForecaster(3).fit(y.iloc[:250])
    params = model.params_.copy()
    model.update(y.iloc[250:])
    pd.testing.assert_series_equal(model.params_, params)
    # statsmodels' dynamic forecast from the full series with the old parameters.
    expected = AutoReg(y, lags=3).predict(params.to_numpy(), start=len(y), end=len(y) + 4)
    np.testing.assert_allclose(model.predict(5).to_numpy(), expected, rtol=1e-10)
    assert model.predict(5).index[0] == y.index[-1] + 1


def test_score_is_negative_rmse_and_helps_compare_orders():
    y = sunspots()
    train, test = y.iloc[:280], y.iloc[280:]
    scores = {p: ARForecaster(p).fit(train).score(test) for p in (1, 9)}
    forecast = ARForecaster(9).fit(train).predict(len(test))
    assert scores[9] == pytest.approx(-np.sqrt(np.mean((forecast.to_numpy() - test.to_numpy()) ** 2)))
    assert scores[9] > scores[1]


def test_sklearn_tooling():
    model = ARForecaster(3, trend="ct")
    assert clone(model).get_params() == model.get_params()
    assert model.set_params(lags=[1, 12]).lags == [1, 12]


@pytest.mark.parametrize(
    "y, error, match",
    [
        (pd.Series([1.0, 2.0, np.nan] + [1.0] * 20), ValueError, "NaN or infinite value.*position 2"),
        (
            pd.Series(np.arange(6.0)),
            ValueError,
            r"y has 6 observations; lags \[1, 2, 3\] with 1 deterministic term\(s\) \['const'\] need at least 8",
        ),
        (pd.Series(list("abcdefghijkl")), TypeError, "y must be numeric"),
        (pd.DataFrame({"a": np.arange(20.0), "b": list("x" * 20)}), TypeError, r"non-numeric column\(s\) \['b'\]"),
    ],
)
def test_bad_series(y, error, match):
    with pytest.raises(error, match=match):
        ARForecaster(3).fit(y)


def test_bad_horizon_and_unfitted_use():
    with pytest.raises(NotFittedError):
        ARForecaster().predict(3)
    model = ARForecaster(2).fit(sunspots())
    for horizon in (0, -1, 2.5):
        with pytest.raises(ValueError, match="horizon must be a positive int"):
            model.predict(horizon)
    with pytest.raises(ValueError, match="coverage must be in"):
        model.predict_interval(3, coverage=1.5)
    with pytest.raises(ValueError, match="max_lags"):
        ARForecaster(criterion="aic").fit(sunspots())


def windows_of(y: np.ndarray, p: int, with_time: bool) -> np.ndarray:
    """Every window of p observations (oldest first) and, optionally, the next time index."""
    windows = np.lib.stride_tricks.sliding_window_view(y, p)
    return np.c_[windows, np.arange(p, len(y) + 1)] if with_time else windows


@pytest.mark.parametrize("trend", ["n", "c", "t", "ct"])
def test_onnx_forecaster_matches_predict_and_interval(trend, tmp_path):
    y = sunspots()
    model = ARForecaster([1, 2, 9], trend=trend).fit(y)
    result = export(model, tmp_path, horizon=10, coverage=0.9)
    assert result.metadata["horizon"] == 10 and result.metadata["graphs"]["model"]["inputs"][0]["dtype"] == "float64"
    windows = windows_of(y.to_numpy(), 9, "t" in trend)
    report = validate(model, tmp_path, windows)
    assert report.passed and report.max_abs_error < 1e-8
    outputs = load(tmp_path).run(windows[-1:])
    interval = model.predict_interval(10, coverage=0.9)
    np.testing.assert_allclose(outputs["forecast"][0], model.predict(10).to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(outputs["lower"][0], interval["lower"].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(outputs["upper"][0], interval["upper"].to_numpy(), rtol=1e-10)


def test_panel_forecaster_exports_one_graph_for_all_series(tmp_path):
    panel = pd.DataFrame({"a": sunspots().to_numpy(), "b": sunspots().to_numpy()[::-1]})
    model = ARForecaster(3, trend="ct").fit(panel)
    export(model, tmp_path, horizon=6)
    windows = np.stack([windows_of(panel[c].to_numpy(), 3, True) for c in panel.columns], axis=1)  # (B, 2, 4)
    assert validate(model, tmp_path, windows).passed
    outputs = load(tmp_path).run(windows[-1:])
    np.testing.assert_allclose(outputs["forecast"][0].T, model.predict(6).to_numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match=r"X must have shape \(n_windows, 2, 4\)"):
        model.predict_from_windows(windows[:, :1], horizon=6)


def test_update_with_arrays_continues_an_integer_index():
    y = sunspots().to_numpy()
    model = ARForecaster(2).fit(y[:200])
    before = model.resid_.copy()
    model.update(y[200:250])
    assert list(model.predict(3).index) == [250, 251, 252]
    pd.testing.assert_series_equal(model.resid_, before)  # residuals stay those of the fit sample
    with pytest.raises(ValueError, match="layout used at fit"):
        model.update(pd.DataFrame({"a": y[:5], "b": y[:5]}))


# ------------------------------------------------ AR-X, seasonal, deterministic, hold_back
def macro_frame() -> pd.DataFrame:
    data = sm.datasets.macrodata.load_pandas().data
    frame = data[["infl", "unemp", "realint"]].copy()
    frame.index = pd.period_range("1959Q1", periods=len(frame), freq="Q")
    return frame


def monthly_co2() -> pd.Series:
    data = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
    return data.loc["1970":"1990"].rename("co2")


SPECIFICATIONS = [
    dict(lags=2, trend="c", exog=True),
    dict(lags=3, trend="ct", seasonal=True),
    dict(lags=3, trend="ct", seasonal=True, exog=True),
    dict(lags=[1, 4], trend="n", seasonal=True, hold_back=6, exog=True),
    dict(lags=2, trend="ctt", hold_back=5),
    dict(lags=4, trend="c", hold_back=8),
    dict(lags=2, trend="c", seasonal=True, period=12, series="co2"),
    dict(lags=[1, 12], trend="t", seasonal=True, series="co2"),  # period 12 inferred from the monthly index
]


def specification(spec: dict):
    spec = dict(spec)
    use_exog, series = spec.pop("exog", False), spec.pop("series", "infl")
    if series == "co2":
        y, X = monthly_co2(), None
    else:
        frame = macro_frame()
        y, X = frame["infl"], frame[["unemp", "realint"]] if use_exog else None
    return spec, y, X


def _ids(spec):
    return ",".join(f"{k}={v}" for k, v in spec.items())


@pytest.mark.parametrize("spec", SPECIFICATIONS, ids=_ids)
def test_extended_models_match_autoreg(spec):
    settings, y, X = specification(spec)
    n = len(y) - 12
    ref = AutoReg(y[:n], exog=None if X is None else X[:n], **settings).fit()
    ours = ARForecaster(**settings).fit(y[:n], None if X is None else X[:n])
    assert list(ours.params_.index) == list(ref.params.index)
    assert rel(ours.params_, ref.params) < 1e-8 and rel(ours.bse_, ref.bse) < 1e-8
    for name in ("aic", "bic", "hqic", "llf"):
        assert getattr(ours, f"{name}_") == pytest.approx(getattr(ref, name), rel=1e-10)
    assert ours.n_obs_ == ref.nobs and ours.hold_back_ == ref.model.hold_back
    future = None if X is None else X[n:]
    assert rel(ours.predict(12, future), ref.forecast(12, exog=future)) < 1e-8
    interval = ours.predict_interval(12, 0.9, X=future)
    expected = ref.get_prediction(start=n, end=n + 11, exog_oos=future).conf_int(alpha=0.1)
    assert rel(interval["lower"], expected.iloc[:, 0]) < 1e-8 and rel(interval["upper"], expected.iloc[:, 1]) < 1e-8
    np.testing.assert_allclose(ours.resid_, ref.resid, atol=1e-8 * np.abs(y).max())
    np.testing.assert_allclose(ours.roots_, ref.roots, rtol=1e-8)
    assert ours.is_stationary_ == bool(np.all(np.abs(ref.roots) > 1))


@pytest.mark.parametrize("spec", SPECIFICATIONS[:4], ids=_ids)
@pytest.mark.parametrize(
    "start, end, dynamic",
    [
        (None, None, False),
        (0, 190, False),
        (10, 195, 30),
        ("1990Q1", "2005Q2", "1995Q1"),
        (None, None, True),
        (3, 20, 1),
    ],
)
def test_predict_start_end_dynamic_matches_autoreg(spec, start, end, dynamic):
    settings, y, X = specification(spec)
    n = len(y) - 12
    ref = AutoReg(y[:n], exog=None if X is None else X[:n], **settings).fit()
    ours = ARForecaster(**settings).fit(y[:n], None if X is None else X[:n])
    future = None if X is None else X[n:]
    expected = ref.predict(start=start, end=end, dynamic=dynamic, exog_oos=future)
    got = ours.predict(start=start, end=end, dynamic=dynamic, X=future)
    assert got.index.equals(expected.index)
    assert (np.isnan(got.to_numpy()) == np.isnan(expected.to_numpy())).all()
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-9)


def test_a_users_deterministic_process_matches_autoreg():
    from statsmodels.tsa.deterministic import DeterministicProcess, Fourier

    y = macro_frame()["infl"][:180]
    process = DeterministicProcess(y.index, constant=True, order=1, additional_terms=[Fourier(12, 2)])
    ref = AutoReg(y, 2, trend="n", deterministic=process).fit()
    ours = ARForecaster(2, trend="n", deterministic=process).fit(y)
    assert list(ours.params_.index) == list(ref.params.index)
    assert rel(ours.params_, ref.params) < 1e-8 and rel(ours.bse_, ref.bse) < 1e-8
    assert rel(ours.predict(8), ref.forecast(8)) < 1e-8
    with pytest.warns(UserWarning, match='trend must be "n"'):
        ARForecaster(2, deterministic=process).fit(y)


def test_summary_holds_autoregs_values():
    frame = macro_frame()
    ref = AutoReg(frame["infl"], [1, 3], seasonal=True, exog=frame[["unemp"]]).fit()
    summary = ARForecaster([1, 3], seasonal=True).fit(frame["infl"], frame[["unemp"]]).summary(alpha=0.1)
    table = summary.coefficients
    np.testing.assert_allclose(table["coef"], ref.params, rtol=1e-10)
    np.testing.assert_allclose(table["std err"], ref.bse, rtol=1e-10)
    np.testing.assert_allclose(table["z"], ref.tvalues, rtol=1e-10)
    np.testing.assert_allclose(table["P>|z|"], ref.pvalues, rtol=1e-8)
    np.testing.assert_allclose(table.iloc[:, 4:].to_numpy(), ref.conf_int(alpha=0.1).to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(summary.roots["Modulus"], np.abs(ref.roots), rtol=1e-10)
    np.testing.assert_allclose(summary.roots["Frequency"], ref.arfreq, atol=1e-12)
    assert summary.info["Model:"] == "Restr. Seas. AutoReg-X(3)"
    assert summary.info["Log Likelihood"] == f"{ref.llf:#5.3f}" and summary.info["AIC"] == f"{ref.aic:#5.3f}"
    text = str(summary)
    assert "Restr. Seas. AutoReg-X(3)" in text and "unemp" in text and "AR.3" in text


def test_panel_with_exog_per_series_equals_each_series_alone():
    frame = macro_frame()
    panel = frame[["infl", "unemp"]]
    rng = np.random.default_rng(0)
    regressors = {c: pd.DataFrame({"x": rng.normal(size=len(panel))}, index=panel.index) for c in panel}
    model = ARForecaster(2, seasonal=True).fit(panel, regressors)
    future = {c: pd.DataFrame({"x": rng.normal(size=6)}) for c in panel}
    forecast = model.predict(6, future)
    for column in panel:
        alone = ARForecaster(2, seasonal=True).fit(panel[column], regressors[column])
        np.testing.assert_allclose(model.params_[column], alone.params_, rtol=1e-10)
        np.testing.assert_allclose(model.bse_[column], alone.bse_, rtol=1e-10)
        np.testing.assert_allclose(forecast[column], alone.predict(6, future[column]), rtol=1e-10)
    ranged = model.predict(start=100, end=len(panel) + 3, dynamic=50, X=future)
    for column in panel:
        alone = ARForecaster(2, seasonal=True).fit(panel[column], regressors[column])
        expected = alone.predict(start=100, end=len(panel) + 3, dynamic=50, X=future[column])
        np.testing.assert_allclose(ranged[column], expected, rtol=1e-10)
        np.testing.assert_allclose(
            model.summary(series=column).coefficients.to_numpy(), alone.summary().coefficients.to_numpy(), rtol=1e-9
        )
    with pytest.raises(ValueError, match="series must name one of the panel's series"):
        model.summary()
    shared = ARForecaster(2).fit(panel, frame[["realint"]])
    assert list(shared.params_.index) == ["const", "y.L1", "y.L2", "realint"]


def test_period_is_inferred_as_statsmodels_infers_it():
    assert ARForecaster(1, seasonal=True).fit(macro_frame()["infl"]).period_ == 4
    assert ARForecaster(1, seasonal=True).fit(monthly_co2()).period_ == 12
    with pytest.raises(ValueError, match="seasonal=True needs a period"):
        ARForecaster(1, seasonal=True).fit(np.arange(50.0) % 7)


def test_bad_exogenous_input_gets_clear_errors():
    frame = macro_frame()
    y, X = frame["infl"][:150], frame[["unemp", "realint"]][:150]
    model = ARForecaster(2).fit(y, X)
    with pytest.raises(ValueError, match=r"exogenous regressors \['unemp', 'realint'\]: pass their future values"):
        model.predict(4)
    with pytest.raises(ValueError, match=r"X has 3 row\(s\); 4 are needed"):
        model.predict(4, frame[["unemp", "realint"]][150:153])
    with pytest.raises(ValueError, match=r"X lacks the regressor column\(s\) \['realint'\]"):
        model.predict(4, frame[["unemp"]][150:154])
    with pytest.raises(ValueError, match="X contains NaN or infinity in column 'unemp', first at row 1"):
        ARForecaster(2).fit(y, X.assign(unemp=np.where(np.arange(150) == 1, np.nan, X["unemp"])))
    with pytest.raises(ValueError, match="fitted without exogenous regressors"):
        ARForecaster(2).fit(y).predict(3, X[:3])
    with pytest.raises(ValueError, match=r"X has 100 row\(s\); 150 are needed"):
        ARForecaster(2).fit(y, X[:100])
    with pytest.raises(ValueError, match="hold_back=1 must be >= the largest lag"):
        ARForecaster(2, hold_back=1).fit(y)
    with pytest.raises(ValueError, match="linearly dependent"):
        ARForecaster(2, trend="c").fit(y, X.assign(one=1.0))
    with pytest.raises(ValueError, match=r"exog \(the future regressors \['unemp', 'realint'\]\) is needed"):
        model.predict_from_windows(np.zeros((1, 2)), horizon=3)
    with pytest.raises(ValueError, match=r"exog must have shape \(1, 3, 2\), got \(1, 3, 1\)"):
        model.predict_from_windows(np.zeros((1, 2)), np.zeros((1, 3, 1)), horizon=3)


def last_windows(model) -> np.ndarray:
    """The windows that forecast from the end of the fitted series, from public attributes: per
    series the last p values, then (with terms beyond the constant) the position n."""
    values = np.asarray(model.endog_, dtype=np.float64).T.reshape(-1, len(model.index_))  # (S, n)
    window = values[:, -max(model.lags_) :]
    deterministic = [n for n in model.params_.index if ".L" not in n and n not in (model.exog_names_ or [])]
    if set(deterministic) - {"const"}:
        window = np.c_[window, np.full(len(window), len(model.index_))]
    return window  # (S, w)


@pytest.mark.parametrize(
    "settings, exog, panel",
    [
        (dict(lags=3, trend="ct", seasonal=True), "shared", False),
        (dict(lags=[1, 4], trend="n", seasonal=True, hold_back=6), None, False),
        (dict(lags=2, trend="ctt"), "shared", False),
        (dict(lags=2, seasonal=True), "shared", True),
        (dict(lags=2, trend="ct"), "per_series", True),
    ],
)
def test_onnx_forecaster_with_seasonal_terms_and_exog(settings, exog, panel, tmp_path):
    """The graph computes the trend and seasonal columns from the window's position and reads
    the future regressors as a second input (batch, horizon, n_exog), or (batch, series,
    horizon, n_exog) for regressors per series; validated at 1e-8 against predict_from_windows,
    which equals predict at the end of the history."""
    frame = macro_frame()
    y = frame[["infl", "unemp"]] if panel else frame["infl"]
    X = {"shared": frame[["realint"]], "per_series": {c: frame[["realint"]] * (i + 1) for i, c in enumerate(y)}}.get(
        exog
    )
    model = ARForecaster(**settings).fit(y, X)
    export(model, tmp_path, horizon=6)
    last = last_windows(model)
    report = validate(model, tmp_path, np.stack([last] * 3) if panel else last)
    assert report.passed and report.max_abs_error < 1e-8
    window = last[None] if panel else last
    future = None
    if X is not None:
        rows = np.arange(6.0)[:, None]
        future = (
            {c: pd.DataFrame({"realint": rows[:, 0] * (i + 2)}) for i, c in enumerate(y)}
            if exog == "per_series"
            else pd.DataFrame({"realint": rows[:, 0]})
        )
        feed = np.stack([f.to_numpy() for f in future.values()])[None] if exog == "per_series" else rows[None]
        got = load(tmp_path).run({"X": window, "exog": feed})["forecast"]
    else:
        got = load(tmp_path).run(window)["forecast"]
    np.testing.assert_allclose(np.squeeze(got), np.asarray(model.predict(6, future)).T.squeeze(), rtol=1e-10)


def test_a_users_deterministic_process_does_not_export(tmp_path):
    from statsmodels.tsa.deterministic import DeterministicProcess

    y = macro_frame()["infl"]
    model = ARForecaster(2, trend="n", deterministic=DeterministicProcess(y.index, constant=True)).fit(y)
    with pytest.raises(NotImplementedError, match="a user's DeterministicProcess cannot be"):
        export(model, tmp_path)
