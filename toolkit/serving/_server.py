"""``toolkit serve``: every model under a directory, served over HTTP by uvicorn (and over gRPC,
from the same process, when ``ServerSettings.grpc_port`` is set: :mod:`toolkit.serving._grpc`).

The app is :mod:`toolkit.serving._app` (routes) on :mod:`toolkit.serving._dataplane` (what the
server does); :mod:`toolkit.serving._codec` turns V2 tensors into arrays and back,
:mod:`toolkit.serving._repository` finds and reloads the models, and concurrent requests for a
model are batched (:mod:`toolkit.serving._batching`) unless its graph's answers would change.
With several workers each process builds its own app from the settings passed through the
environment (:mod:`toolkit.serving._settings`), and they share one repository state
(:mod:`toolkit.serving._shared_state`) and one set of metrics.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import tempfile
from pathlib import Path

from toolkit._cpu_budget import cpu_budget
from toolkit.serving._app import V2App, create_app
from toolkit.serving._metrics import MULTIPROCESS_VARIABLE
from toolkit.serving._repository import ServedModel
from toolkit.serving._settings import ServerSettings
from toolkit.serving._shared_state import STATE_VARIABLE, SharedState

__all__ = ["ServerSettings", "app_from_environment", "create_app", "serve", "startup_lines"]


def app_from_environment() -> V2App:
    """The app ``toolkit serve`` hands uvicorn's workers (settings travel in TOOLKIT_SERVE_* variables)."""
    settings, directory = ServerSettings.from_environment()
    return create_app(directory, settings)


def startup_lines(models: dict[str, ServedModel], url: str, grpc_address: str | None = None) -> list[str]:
    """What ``toolkit serve`` prints before it listens: the addresses and each model's signature."""
    lines = [
        f"toolkit serve: {len(models)} model(s) at {url} (Open Inference Protocol V2: POST "
        f"{url}/v2/models/<name>/infer; records: POST .../predict; metrics: GET {url}/metrics)"
    ]
    if grpc_address is not None:
        lines.append(f"  and over gRPC at {grpc_address} (inference.GRPCInferenceService)")
    return lines + ["  " + served.signature() for served in models.values()]


def serve(
    directory: str | Path = "exports",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    settings: ServerSettings | None = None,
    log_level: str = "info",
    announce: bool = True,
) -> None:
    """Serve every export folder under ``directory`` until interrupted.

    Parameters
    ----------
    directory : str or Path
        Folder of export folders.
    host, port
        Where uvicorn listens.
    workers : int, default=1
        Server processes, each with its own sessions and batcher, sharing the repository's
        state (a load or unload holds on all of them) and the metrics (settings reach them
        through TOOLKIT_SERVE_* variables).
    settings : ServerSettings, optional
    log_level : str, default="info"
        uvicorn's log level; at "info" each request is logged as an access line.
    announce : bool, default=True
        Print the address and the served models' signatures before listening.
    """
    import os

    import uvicorn

    settings = dataclasses.replace(settings or ServerSettings(), grpc_host=host)
    if workers > 1 and settings.intra_op_num_threads is None:  # each worker its share of the CPU budget
        settings = dataclasses.replace(settings, intra_op_num_threads=max(1, cpu_budget().threads // workers))
    app = create_app(directory, settings)
    if announce:
        grpc_address = None if settings.grpc_port is None else f"{host}:{settings.grpc_port}"
        print("\n".join(startup_lines(app.state.models, f"http://{host}:{port}", grpc_address)), flush=True)
    options = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": log_level in ("info", "debug", "trace"),
    }
    # uvicorn drains in-flight requests on SIGTERM / SIGINT, then raises the signal again so that
    # the process dies of it; a handler that ignores that second one makes a drained server exit 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if workers == 1:
        uvicorn.run(app, **options)
        return
    folders = sorted(app.dataplane.repository.listing())
    del app  # each worker loads its own sessions
    os.environ.update(settings.to_environment(directory))
    # One repository state for the workers (_shared_state.py), in a folder of this run's; their
    # metrics, summed at each scrape: prometheus_client's multiprocess mode, in a folder of this
    # run's too (or the one the environment names already, kept as found).
    made = {STATE_VARIABLE: tempfile.mkdtemp(prefix="toolkit-serve-state-")}
    if MULTIPROCESS_VARIABLE not in os.environ:
        made[MULTIPROCESS_VARIABLE] = tempfile.mkdtemp(prefix="toolkit-serve-metrics-")
    os.environ.update(made)
    SharedState(made[STATE_VARIABLE]).initialize(folders)
    try:
        uvicorn.run("toolkit.serving._server:app_from_environment", factory=True, workers=workers, **options)
    finally:
        for variable in made:
            shutil.rmtree(os.environ.pop(variable), ignore_errors=True)
