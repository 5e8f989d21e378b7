"""ARForecaster on Dask DataFrames (wide, and long via long_panel) on a 2-process LocalCluster:
the same fit and forecasts as the in-memory panel fit, and errors that name the series."""

import numpy as np
import pandas as pd
import pytest

from toolkit.timeseries import ARForecaster, long_panel

dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    options = {"n_workers": 2, "processes": True, "threads_per_worker": 1, "dashboard_address": ":0"}
    with distributed.LocalCluster(**options) as cluster, distributed.Client(cluster) as client:
        yield client


def ar2_panel(n=240, n_series=23, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n, n_series))
    y = np.zeros((n, n_series))
    for t in range(2, n):
        y[t] = 0.5 * y[t - 1] - 0.2 * y[t - 2] + noise[t]
    index = pd.date_range("2001-01", periods=n, freq="MS", name="month")
    return pd.DataFrame(y + np.linspace(0, 3, n)[:, None], index=index, columns=[f"s{i:02d}" for i in range(n_series)])


def assert_same_forecaster(a, b, atol=1e-10):
    for name in ("params_", "bse_", "sigma2_", "llf_", "aic_", "bic_", "hqic_"):
        left, right = getattr(a, name), getattr(b, name)
        assert list(np.atleast_1d(right.index)) == list(np.atleast_1d(left.index)), name
        np.testing.assert_allclose(np.asarray(right), np.asarray(left), rtol=0, atol=atol, err_msg=name)
    pd.testing.assert_frame_equal(b.predict(12), a.predict(12), rtol=0, atol=atol)
    pd.testing.assert_frame_equal(b.predict_interval(6), a.predict_interval(6), rtol=0, atol=atol)


@pytest.mark.parametrize("options", [{"lags": 2, "trend": "ct"}, {"lags": [1, 3], "seasonal": True}])
def test_a_wide_dask_frame_fits_as_the_in_memory_panel(client, options):
    wide = ar2_panel()
    in_memory = ARForecaster(**options).fit(wide)
    on_cluster = ARForecaster(**options).fit(dd.from_pandas(wide, npartitions=4))
    assert list(on_cluster.params_.columns) == list(wide.columns)
    assert_same_forecaster(in_memory, on_cluster)


def test_a_2d_dask_array_fits_as_the_in_memory_array(client):
    values = ar2_panel().to_numpy()
    in_memory = ARForecaster(lags=3).fit(values)
    on_cluster = ARForecaster(lags=3).fit(da.from_array(values, chunks=(60, 5)))
    assert list(on_cluster.params_.columns) == list(range(values.shape[1]))
    assert_same_forecaster(in_memory, on_cluster)
    with pytest.raises(ValueError, match="2-D"):
        ARForecaster(lags=2).fit(da.from_array(values[:, 0], chunks=60))


def test_a_long_frame_fits_as_its_pivot(client):
    wide = ar2_panel()
    long = wide.reset_index().melt(id_vars="month", var_name="store", value_name="sales")
    shuffled = long.sample(frac=1.0, random_state=0)  # rows in no order at all
    in_memory = ARForecaster(lags=2, trend="ct").fit(long.pivot(index="month", columns="store", values="sales"))
    panel = long_panel(dd.from_pandas(shuffled, npartitions=5), series="store", time="month", value="sales")
    on_cluster = ARForecaster(lags=2, trend="ct").fit(panel)
    assert_same_forecaster(in_memory, on_cluster)


def test_bad_panels_name_the_series(client):
    wide = ar2_panel()
    fitted = ARForecaster(lags=2).fit(wide)
    params = fitted.params_.copy()
    wide.iloc[200, 7] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite value.* in column 's07'"):
        fitted.set_params(lags=3).fit(dd.from_pandas(wide, npartitions=4))
    pd.testing.assert_frame_equal(fitted.params_, params)  # a failed fit leaves the earlier one in place
    assert fitted.lags_ == [1, 2]
    long = ar2_panel().reset_index().melt(id_vars="month", var_name="series")
    gap = long.drop(index=long.index[(long["series"] == "s03") & (long["month"] == "2005-06-01")])
    with pytest.raises(ValueError, match=r"series \['s03'\] are not observed at every time"):
        ARForecaster(lags=2).fit(long_panel(dd.from_pandas(gap, npartitions=3), time="month"))
    twice = pd.concat([long, long.iloc[[10]]])
    with pytest.raises(ValueError, match="series 's00' has more than one value at time"):
        ARForecaster(lags=2).fit(long_panel(dd.from_pandas(twice, npartitions=3), time="month"))
    with pytest.raises(ValueError, match=r"no column\(s\) \['time'\]"):
        long_panel(dd.from_pandas(long, npartitions=2))
    ddf = dd.from_pandas(ar2_panel(), npartitions=2)
    with pytest.raises(NotImplementedError, match="exogenous"):
        ARForecaster(lags=2).fit(ddf, X=ar2_panel())
    with pytest.raises(NotImplementedError, match="criterion"):
        ARForecaster(max_lags=3, criterion="aic").fit(ddf)
    with pytest.raises(TypeError, match="wide dask DataFrame"):
        ARForecaster(lags=2).fit(ddf["s00"])
