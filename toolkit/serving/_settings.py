"""``ServerSettings``: the limits, threads and listeners of a server, and their one trip through the
environment (uvicorn's worker processes build the app from ``TOOLKIT_SERVE_*`` variables)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DIRECTORY_VARIABLE = "TOOLKIT_SERVE_DIR"
PREFIX = "TOOLKIT_SERVE_"
MODEL_CONTROL_MODES = ("none", "poll", "explicit")


@dataclass(frozen=True)
class ServerSettings:
    """Limits, threads and listeners of a server.

    Parameters
    ----------
    max_rows : int
        Rows (first dimension) a request may send.
    max_body_bytes : int
        Request bodies above this get 413 before they are parsed.
    intra_op_num_threads : int, optional
        onnxruntime threads per session (None: the CPU budget, ``toolkit.show_config()``; with
        several workers, each worker's share of it).
    max_batch_size : int
        Adaptive batching (``_batching.py``): concurrent requests for a model stacked into one
        run of at most this many rows (default 32); 0 or 1: off. A model.json's ``serving`` entry
        (``{"max_batch_size": .., "max_queue_delay_us": ..}``) overrides it for its model;
        graphs without a free batch axis on every input and output are never batched.
    max_queue_delay_us : int
        How long a batch's first request waits for others (microseconds).
    max_queue_size : int
        Requests a model's batching queue holds; the next gets 503 with Retry-After.
    model_control_mode : {"none", "poll", "explicit"}
        Triton's model control: "none" serves the repository as found at start; "poll" (the
        default) also serves what changes on disk (an export swapped in, a version or a folder
        added, a folder removed) without a restart; "explicit" serves what the repository API's
        load and unload requests say, and nothing else changes. Load and unload answer 403
        except in "explicit" mode: no request can take a model away by default.
    grpc_port : int, optional
        Also answer the protocol over gRPC (``inference.GRPCInferenceService``) on this port,
        from the same process, models, batchers and metrics (None: HTTP only).
    grpc_host : str
        The address gRPC listens on (``toolkit serve`` gives it HTTP's).
    drain_seconds : int
        On shutdown (SIGTERM), how long gRPC calls in flight may take to finish.
    model_name : str, optional
        The name of a model served alone (the directory given is one export folder, a folder of
        versions, or one ``.onnx`` file): by default its folder's name (a file's stem unless it
        is ``model.onnx``). KServe passes the InferenceService's name this way.
    """

    max_rows: int = 10_000
    max_body_bytes: int = 16 * 2**20
    intra_op_num_threads: int | None = None
    max_batch_size: int = 32
    max_queue_delay_us: int = 0
    max_queue_size: int = 1024
    model_control_mode: str = "poll"
    grpc_port: int | None = None
    grpc_host: str = "127.0.0.1"
    drain_seconds: int = 30
    model_name: str | None = None

    def __post_init__(self):
        if self.model_control_mode not in MODEL_CONTROL_MODES:
            mode = self.model_control_mode
            raise ValueError(f"model_control_mode must be one of {MODEL_CONTROL_MODES}, got {mode!r}")

    def to_environment(self, directory: str | Path) -> dict[str, str]:
        """The ``TOOLKIT_SERVE_*`` variables that give a worker process these settings and the
        directory it serves (a None field is left out)."""
        variables = {
            PREFIX + field.name.upper(): str(value)
            for field in dataclasses.fields(self)
            if (value := getattr(self, field.name)) is not None
        }
        return {DIRECTORY_VARIABLE: str(Path(directory).resolve()), **variables}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> tuple[ServerSettings, str]:
        """(settings, directory) from the variables :meth:`to_environment` wrote (a field
        without its variable keeps its default)."""
        values = {
            field.name: value if "str" in str(field.type) else int(value)
            for field in dataclasses.fields(cls)
            if (value := environ.get(PREFIX + field.name.upper())) is not None
        }
        return cls(**values), environ[DIRECTORY_VARIABLE]
