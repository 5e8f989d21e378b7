"""The digits CNN trained data-parallel in 2 processes (torch DDP over gloo, started by torch's elastic
launcher), against the same net trained in one process; also a torchrun script for many machines."""

# Across machines, run this file under torchrun on every node (the same command, its --node-rank):
#   torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \
#       pipelines/digits_cnn_ddp.py exports/digits_cnn_ddp_torchrun
# Each process then joins the job in fit (distributed="ddp" sees TORCHELASTIC_RUN_ID), trains its
# shard, and rank 0 exports the fitted pipeline. On one machine: torchrun --standalone --nproc-per-node 2 ...

import os
import sys
import time
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from toolkit.jobs import Baseline, Job, import_file

digits = import_file(Path(__file__).with_name("_digits.py"))

SECONDS = {"quick": 12, "full": 30}


def fit(X, y, max_epochs: int, **options) -> tuple[Pipeline, float]:
    """(the digits_cnn pipeline fitted with ``options``, its fit's wall seconds)."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the quick budget ends before early stopping
        model = Pipeline([("scale", MinMaxScaler()), ("cnn", digits.cnn(max_epochs, device="cpu", **options))])
        model.fit(X, y)
    return model, time.perf_counter() - started


def run(full: bool = False) -> Job:
    X_train, X_test, y_train, y_test = digits.split()
    epochs = 60 if full else 20
    single, single_seconds = fit(X_train, y_train, epochs)
    parallel, parallel_seconds = fit(X_train, y_train, epochs, distributed="ddp", n_procs=2)
    details = (
        f"2 processes {parallel_seconds:.1f} s ({parallel[-1].n_iter_} epochs; ~3 s of it starting the processes), "
        f"1 process {single_seconds:.1f} s ({single[-1].n_iter_} epochs)"
    )
    return Job(
        parallel,
        X_test,
        "accuracy",
        parallel.score(X_test, y_test),
        Baseline("the same net in one process", single.score(X_test, y_test)),
        floor=0.95,
        details=details,
    )


def main(folder: str) -> None:
    """Under torchrun: every rank fits its shard; rank 0 reports and exports."""
    from toolkit.onnx import export

    X_train, X_test, y_train, y_test = digits.split()
    model, seconds = fit(X_train, y_train, 60, distributed="ddp")
    if os.environ.get("RANK", "0") == "0":
        world = os.environ.get("WORLD_SIZE", "1")
        print(f"{world} processes: test accuracy {model.score(X_test, y_test):.4f} after {seconds:.1f} s")
        print(f"exported to {export(model, folder).folder}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "exports/digits_cnn_ddp_torchrun")
