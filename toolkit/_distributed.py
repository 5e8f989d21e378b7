"""Data-parallel training of the torch estimators with PyTorch's DistributedDataParallel.

``distributed="ddp"`` on a net estimator makes ``fit`` train in ``n_procs`` processes:

- started from a plain ``fit`` call, the processes are launched with torch's elastic launcher
  (``torch.distributed.launcher.api.elastic_launch``: what ``torchrun`` runs), on this
  machine, with a c10d rendezvous on a free local port. The estimator, initialised here, and
  the training arrays are sent to each; rank 0 sends the trained estimator back and this
  process takes its state. A worker that fails (an exception, a crash, a kill) makes the
  launcher stop the others; ``fit`` then raises ``DataParallelError`` naming the rank and its
  exit, and the estimator is left as it was.
- in a process that an elastic agent started (``torchrun``, across machines with ``--nnodes``;
  the environment holds ``TORCHELASTIC_RUN_ID``) ``fit`` joins the job's process group (made
  from the environment when the script has not made it) and trains its shard there: every
  rank ends holding the same fitted estimator (the script saves it on rank 0). See
  pipelines/digits_cnn_ddp.py, a pipeline that is also a torchrun script.

Each rank reads its shard of every epoch by a DistributedSampler over the same shuffled order,
so that the ranks' batches of one step together form the single-process batch of that step
(``batch_size`` stays the global batch size: each rank takes batch_size / world of it); DDP
averages the gradients across ranks before every optimizer step. Batch norm normalises each
rank's part of the batch (its statistics are per rank, as DDP does without SyncBatchNorm).
The backend is gloo on the CPU and NCCL on CUDA (a rank per GPU: ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import os
import pickle
import uuid
import warnings
from contextlib import contextmanager

import torch
import torch.distributed as dist

from toolkit._cpu_budget import cpu_budget

LAUNCHED = "TORCHELASTIC_RUN_ID"  # set by the elastic agent (torchrun, elastic_launch) in its workers


class DataParallelError(RuntimeError):
    """A data-parallel fit's worker process failed; the estimator was left as it was."""


def in_launched_worker() -> bool:
    """Whether this process was started by an elastic agent (torchrun or our own launch)."""
    return LAUNCHED in os.environ


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


@contextmanager
def process_group(device: torch.device):
    """The job's default process group: the existing one, or one made from the environment
    (and destroyed on exit) when the script made none. Yields (rank, world size, device of
    this rank)."""
    made = not dist.is_initialized()
    if made:
        dist.init_process_group(backend_for(device))
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    try:
        yield dist.get_rank(), dist.get_world_size(), device
    finally:
        if made:
            dist.destroy_process_group()


def _train_on_rank(payload: bytes, max_epochs: int) -> bytes | None:
    """The elastic launch's entry point in each worker: train; on rank 0 return the pickled
    estimator and the warnings its training raised (message, category), which the launching
    process raises again, so that its own warning filters decide (the ranks' stderr would
    bypass them; the other ranks' warnings repeat rank 0's and are dropped).

    Estimator and arrays travel as plain pickles: handed to the launcher as objects, torch's
    multiprocessing would share the parameters' memory between the processes (and with the
    caller), and every rank would step the same weights.
    """
    if "OMP_NUM_THREADS" not in os.environ:  # as torchrun does: the CPU budget shared out, no oversubscription
        torch.set_num_threads(max(1, cpu_budget().threads // int(os.environ["LOCAL_WORLD_SIZE"])))
    estimator, X, targets = pickle.loads(payload)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator._train(X, targets, max_epochs=max_epochs, partial=False)
    if int(os.environ["RANK"]) != 0:
        return None
    return pickle.dumps((estimator, [(str(w.message), w.category) for w in caught]))


def launch_data_parallel(estimator, X, targets, max_epochs: int) -> None:
    """Train ``estimator`` in ``estimator.n_procs`` local processes; take rank 0's result."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=estimator.n_procs,
        run_id=f"toolkit-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    try:
        results = elastic_launch(config, _train_on_rank)(pickle.dumps((estimator, X, targets)), max_epochs)
    except ChildFailedError as error:
        failures = "; ".join(
            f"rank {rank} {'exited with code ' + str(failure.exitcode) if failure.exitcode else 'failed'}"
            + (f" ({failure.message})" if failure.message else "")
            for rank, failure in sorted(error.failures.items())
        )
        raise DataParallelError(
            f"data-parallel training in {estimator.n_procs} processes failed: {failures}; the estimator was "
            "left as it was"
        ) from None
    trained, caught = pickle.loads(results[0])
    estimator.__dict__.update(trained.__dict__)
    for message, category in caught:
        warnings.warn(message, category, stacklevel=4)  # at the user's fit call
