"""Batch scoring of dask collections with an exported model, on the workers.

``predict(ddf, folder)`` maps each partition through an onnxruntime session: one session per
worker process and export folder, created at the worker's first partition and reused for
every later one (rebuilt only when the folder's model.json changes). The workers import
onnxruntime, numpy and pandas (``toolkit.serving``), never torch or scikit-learn. The folder
must be readable at the same path from every worker (a shared file system, or the folder
copied to each machine). The output's ``meta`` (its dtype and columns) is declared from the
model itself, so nothing is computed before the caller asks.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.serving._format import METADATA_FILE
from toolkit.serving._model import OnnxModel

__all__ = ["predict"]

METHODS = ("predict", "predict_proba", "transform", "inverse_transform", "run")
_sessions: dict[tuple, OnnxModel] = {}
_sessions_lock = threading.Lock()


def _worker_model(folder: str, graph: str | None, intra_op_num_threads: int) -> OnnxModel:
    """This process's OnnxModel of ``folder`` (created once, reused; a new one when model.json changed)."""
    folder = str(Path(folder).resolve())
    stamp = os.stat(Path(folder) / METADATA_FILE).st_mtime_ns
    key = (folder, graph, intra_op_num_threads)
    with _sessions_lock:
        cached = _sessions.get(key)
        if cached is None or cached[0] != stamp:
            model = OnnxModel(
                folder, graph=graph, providers=["CPUExecutionProvider"], intra_op_num_threads=intra_op_num_threads
            )
            _sessions[key] = cached = (stamp, model)
    return cached[1]


def _as_frame(outputs: dict[str, np.ndarray], index) -> pd.DataFrame:
    """run()'s outputs as one frame: a column per 1-D output, ``name[j]`` per column of a 2-D one."""
    columns = {}
    for name, value in outputs.items():
        if value.ndim == 1:
            columns[name] = value
        else:
            columns |= {f"{name}[{j}]": value[:, j] for j in range(value.shape[1])}
    return pd.DataFrame(columns, index=index)


def _score_partition(part, folder: str, method: str, graph: str | None, intra_op_num_threads: int):
    """``method`` of the worker's model on one partition (a pandas frame or a numpy block)."""
    model = _worker_model(folder, graph, intra_op_num_threads)
    if method != "run":
        return getattr(model, method)(part)
    outputs = model.run(part)
    if isinstance(part, pd.DataFrame):
        return _as_frame(outputs, part.index)
    if len(outputs) != 1:
        raise ValueError(f"method='run' on a dask array needs a graph with one output, this one has {list(outputs)}")
    return next(iter(outputs.values()))


def predict(data, folder, method: str = "predict", *, graph: str | None = None, intra_op_num_threads: int = 1):
    """Score a dask DataFrame or array with the export in ``folder``, lazily.

    Parameters
    ----------
    data : dask.dataframe.DataFrame or dask.array.Array
        Rows as the model takes them (a DataFrame's columns are checked against the model's
        feature names in each partition). An array is scored per block of rows (one chunk
        across columns).
    folder : str or Path
        The export folder, at the same path on every worker.
    method : {"predict", "predict_proba", "transform", "inverse_transform", "run"}
        The estimator method whose output to compute; "run" gives every output of the graph
        (a DataFrame: one column per 1-D output, ``name[j]`` per column of a 2-D one).
    graph : str, optional
        Which graph of a folder with several (an auto-encoder's "encoder" / "decoder").
    intra_op_num_threads : int, default=1
        onnxruntime threads per session; the workers' own threads give the parallelism.

    Returns
    -------
    dask Series / DataFrame (DataFrame in, index kept) or dask array (array in), not computed.
    """
    import dask.array as da
    import dask.dataframe as dd

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    folder = str(Path(folder).resolve())
    local = OnnxModel(folder, graph=graph, providers=["CPUExecutionProvider"])  # checks the folder here, once
    arguments = (folder, method, local.graph, intra_op_num_threads)
    if isinstance(data, dd.DataFrame):
        sample = data._meta_nonempty
        meta = _score_partition(sample, *arguments).iloc[:0]
        return data.map_partitions(_score_partition, *arguments, meta=meta)
    if isinstance(data, da.Array):
        if data.ndim < 2:
            raise ValueError(f"Expected a dask array of rows (n_samples, ...), got shape {data.shape}")
        rows = data.rechunk({axis: -1 for axis in range(1, data.ndim)})
        sample = np.ones((1, *rows.shape[1:]), dtype=rows.dtype)
        example = _score_partition(sample, *arguments)
        chunks = (rows.chunks[0], *((size,) for size in example.shape[1:]))
        drop = tuple(range(example.ndim, rows.ndim)) or None
        return rows.map_blocks(
            _score_partition,
            *arguments,
            chunks=chunks,
            drop_axis=drop,
            meta=np.empty((0,) * example.ndim, example.dtype),
        )
    raise TypeError(f"data must be a dask DataFrame or array, got {type(data).__name__}")
