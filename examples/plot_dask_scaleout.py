"""
Scaling out on a Dask cluster: EM, AR panels and batch scoring
==============================================================

Three paths, on a 2-process :class:`~distributed.LocalCluster` (a real cluster is the same calls
with ``Client("tcp://scheduler:8786")``):

- :class:`~toolkit.mixture.GaussianMixture` fits a dask array with one pass over the blocks per
  EM iteration, each block's sufficient statistics computed where it lives;
- :class:`~toolkit.timeseries.ARForecaster` solves a wide panel, or a long table through
  :func:`~toolkit.timeseries.long_panel`, on the workers;
- :func:`toolkit.serving.dask.predict` scores partitions with one onnxruntime session per worker.
"""

import tempfile
from pathlib import Path

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

from toolkit.mixture import GaussianMixture
from toolkit.onnx import export
from toolkit.serving.dask import predict
from toolkit.timeseries import ARForecaster, long_panel

client = Client(LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0"))
X = da.random.default_rng(0).normal(size=(1_000_000, 4), chunks=(100_000, 4))  # made block by block, on the workers
gmm = GaussianMixture(3, random_state=0).fit(X)  # each EM iteration: one pass where the blocks live
labels = gmm.predict(X)  # a dask array: nothing computed yet
print("rows per component:", np.bincount(labels.compute()))

# %%
# Fifty weekly series, wide (one column per series) or long (one row per observation).
weeks = pd.date_range("2020-01-05", periods=200, freq="W")
sales = pd.DataFrame(
    np.random.default_rng(0).normal(size=(200, 50)).cumsum(axis=0),
    index=weeks,
    columns=[f"store{i}" for i in range(50)],
)
wide = ARForecaster(lags=2).fit(dd.from_pandas(sales, npartitions=4))
long = sales.rename_axis("week").reset_index().melt(id_vars="week", var_name="store", value_name="sales")
panel = long_panel(dd.from_pandas(long, npartitions=4), series="store", time="week", value="sales")
ar = ARForecaster(lags=2).fit(panel)
print(ar.predict(4)[["store0", "store1", "store2"]])  # as ARForecaster(lags=2).fit(sales) forecasts
in_memory = ARForecaster(lags=2).fit(sales).predict(4)
assert np.allclose(ar.predict(4)[sales.columns], in_memory) and np.allclose(wide.predict(4), in_memory)

# %%
# Batch scoring: the workers read the export folder at the same path, and need only the base
# install and dask (no torch, no scikit-learn).
folder = Path(tempfile.mkdtemp()) / "gmm"
export(gmm, folder)
print(predict(X, folder, "predict_proba")[:5].compute())
client.close()
