"""Scale-out paths on this machine: the in-memory path against Dask on 1 and 2 local workers
(GaussianMixture EM, ARForecaster panel fit, batch scoring) and DDP on 1 and 2 processes.

Each Dask path: the data persisted in the workers' memory first (so that the timings compare
computation, not data generation), then rounds interleaved in-memory / 1 worker / 2 workers,
median of the rounds. Peak memory per worker is the workers' VmHWM (their own processes' high
water mark; workers are restarted before each path). Then the memory check: a mixture fit of an
X ten times larger than each worker's memory limit, made block by block (never whole anywhere).

    python benchmarks/scaleout.py [--rounds 3] [--rows 2000000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

PEAK = lambda: next(  # noqa: E731  (a lambda: cloudpickle sends it by value, no import of this file)
    int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")
)


def seconds(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def side_by_side(name: str, in_memory, per_cluster: dict, clusters: dict, rounds: int) -> None:
    """Interleaved rounds of the in-memory call and each cluster's call; prints medians, speed-ups, peaks."""
    times = {"in memory": [], **{f"{n} worker(s)": [] for n in clusters}}
    for _ in range(rounds):
        times["in memory"].append(seconds(in_memory))
        for n, client in clusters.items():
            with client.as_current():
                times[f"{n} worker(s)"].append(seconds(per_cluster[n]))
    medians = {key: statistics.median(value) for key, value in times.items()}
    base = medians["in memory"]
    print(f"\n{name}")
    for key, value in medians.items():
        n = key.split()[0]
        peak = ""
        if n in {str(k) for k in clusters}:
            peaks = clusters[int(n)].run(PEAK)
            peak = f", peak memory per worker {max(peaks.values()) / 2**20:.0f} MB"
        print(f"  {key:12s} {value:7.2f} s  ({value / base:.2f}x the in-memory time){peak}")


def mixture(clusters, rounds, rows, d=16, k=8):
    import dask.array as da
    from distributed import wait

    from toolkit.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (k, d))
    X = centres[rng.integers(0, k, rows)] + rng.normal(size=(rows, d))
    start = GaussianMixture(k, max_iter=2, random_state=0).fit(X[:20_000])
    options = {"weights_init": start.weights_, "means_init": start.means_, "precisions_init": start.precisions_}
    options |= {"max_iter": 10, "tol": 0.0}
    persisted = {}
    for n, client in clusters.items():
        client.restart()
        persisted[n] = client.persist(da.from_array(X, chunks=(rows // 16, d)))
        with client.as_current():
            wait(persisted[n])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        side_by_side(
            f"GaussianMixture: {rows:,} x {d} float64 ({X.nbytes / 2**20:.0f} MB), k={k} full, 10 EM iterations",
            lambda: GaussianMixture(k, **options).fit(X),
            {n: (lambda n=n: GaussianMixture(k, **options).fit(persisted[n])) for n in clusters},
            clusters,
            rounds,
        )
    floats = 1 + k * (1 + d + d * (d + 1) // 2)
    print(f"  traffic per EM iteration: {floats:,} floats ({floats * 8 / 1024:.1f} KB) of statistics per block")


def ar_panel(clusters, rounds, n_series=20_000, n=500):
    import dask.array as da
    import dask.dataframe as dd
    from distributed import wait
    from scipy.signal import lfilter

    from toolkit.timeseries import ARForecaster

    values = lfilter([1.0], [1.0, -0.6, 0.2], np.random.default_rng(0).standard_normal((n, n_series)), axis=0)
    wide = pd.DataFrame(values, columns=[f"s{i}" for i in range(n_series)])
    arrays, frames = {}, {}
    for n_workers, client in clusters.items():
        client.restart()
        arrays[n_workers] = client.persist(da.from_array(values, chunks=(n, n_series // 8)))
        frames[n_workers] = client.persist(dd.from_pandas(wide, npartitions=8))
        with client.as_current():
            wait([arrays[n_workers], frames[n_workers]])
    title = f"ARForecaster(12): panel of {n_series:,} series x {n} ({values.nbytes / 2**20:.0f} MB)"
    side_by_side(
        f"{title}, as a 2-D dask array",
        lambda: ARForecaster(12).fit(values),
        {m: (lambda m=m: ARForecaster(12).fit(arrays[m])) for m in clusters},
        clusters,
        rounds,
    )
    side_by_side(
        f"{title}, as a wide dask DataFrame (one round: dask's own cost per computation on {n_series:,} columns)",
        lambda: ARForecaster(12).fit(wide),
        {m: (lambda m=m: ARForecaster(12).fit(frames[m])) for m in clusters},
        clusters,
        1,
    )


def batch_scoring(clusters, rounds, folder: Path, rows=1_000_000):
    import dask.dataframe as dd
    from distributed import wait

    from toolkit.serving import OnnxModel
    from toolkit.serving.dask import predict

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(rows, 30)), columns=FEATURES)
    persisted = {}
    for n, client in clusters.items():
        client.restart()
        persisted[n] = client.persist(dd.from_pandas(frame, npartitions=16))
        with client.as_current():
            wait(persisted[n])
    model = OnnxModel(folder)
    side_by_side(
        f"batch scoring: {rows:,} rows of the breast-cancer MLP (onnxruntime; in memory: one session, 2 threads)",
        lambda: model.predict(frame),
        {n: (lambda n=n: predict(persisted[n], folder).compute()) for n in clusters},
        clusters,
        rounds,
    )


FEATURES = []


def export_mlp(folder: Path) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from toolkit.neural_network import MLPClassifier
    from toolkit.onnx import export

    data = load_breast_cancer(as_frame=True)
    FEATURES.extend(data.data.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_pipeline(StandardScaler(), MLPClassifier((64, 64), max_epochs=20, random_state=0, device="cpu"))
        export(model.fit(data.data, data.target), folder)


def ddp(rounds):
    from sklearn.datasets import load_digits

    from toolkit.neural_network import CNNClassifier

    X, y = load_digits(return_X_y=True)
    options = {"channels": (32, 64), "image_shape": (8, 8), "max_epochs": 20, "batch_size": 64, "random_state": 0}
    times = {1: [], 2: []}
    epochs = {1: [], 2: []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(rounds):
            for procs in (1, 2):
                extra = {"distributed": "ddp", "n_procs": 2} if procs == 2 else {}
                started = time.perf_counter()
                model = CNNClassifier(device="cpu", **options, **extra).fit(X / 16, y)
                times[procs].append(time.perf_counter() - started)
                epochs[procs].append(statistics.median(h["duration"] for h in model.history_))
    n_params = sum(p.numel() for p in model.module_.parameters())
    print(f"\nDDP: digits CNN (32, 64), {len(X)} images, 20 epochs at batch 64, {n_params:,} parameters")
    for procs in (1, 2):
        fit, epoch = statistics.median(times[procs]), statistics.median(epochs[procs])
        print(f"  {procs} process(es): fit {fit:5.1f} s, median epoch {epoch * 1e3:6.1f} ms")
    speedup = statistics.median(epochs[1]) / statistics.median(epochs[2])
    print(
        f"  epoch speed-up {speedup:.2f}x; the 2-process fit's launch (spawn, imports, rendezvous) is most of the rest"
    )
    print(f"  traffic per DDP step: an all-reduce of {n_params:,} float32 gradients ({n_params * 4 / 1024:.0f} KB)")


def larger_than_memory(limit_mb=256, factor=10, d=16):
    import dask.array as da
    from distributed import Client, LocalCluster

    from toolkit.mixture import GaussianMixture

    rows = factor * limit_mb * 2**20 // (8 * d)
    X = da.random.default_rng(0).normal(size=(rows, d), chunks=(65_536, d))
    options = {"weights_init": [0.5, 0.5], "means_init": [[-1] * d, [1] * d], "precisions_init": [np.eye(d)] * 2}
    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=f"{limit_mb}MB", dashboard_address=":0") as c:
        with Client(c) as client, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            model = GaussianMixture(2, max_iter=3, tol=0.0, **options).fit(X)
            spent = time.perf_counter() - started
            peaks = client.run(PEAK)
    print(
        f"\nlarger than memory: X {X.nbytes / 2**30:.2f} GB ({rows:,} x {d}, made block by block) on 2 workers of "
        f"{limit_mb} MB each: {model.n_iter_} EM iterations in {spent:.1f} s (mostly drawing the normals, 4 passes); "
        f"peak memory per worker {max(peaks.values()) / 2**20:.0f} MB of {limit_mb} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Sending large graph")  # persisting local data sends it once
    from distributed import Client, LocalCluster

    clusters, keep = {}, []
    for n in (1, 2):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=":0", memory_limit="4GB")
        keep.append(cluster)
        clusters[n] = Client(cluster, set_as_default=False)
    try:
        mixture(clusters, args.rounds, args.rows)
        ar_panel(clusters, args.rounds)
        with tempfile.TemporaryDirectory() as tmp:
            export_mlp(Path(tmp) / "mlp")
            batch_scoring(clusters, args.rounds, Path(tmp) / "mlp")
    finally:
        for client in clusters.values():
            client.close()
        for cluster in keep:
            cluster.close()
    ddp(args.rounds)
    larger_than_memory()


if __name__ == "__main__":
    main()
