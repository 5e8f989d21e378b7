"""Run exported models with onnxruntime, numpy and pandas only (no torch, no scikit-learn)."""

from toolkit.serving._format import (
    METADATA_FILE,
    graph_entry,
    read_metadata,
)
from toolkit.serving._model import OnnxModel


def __getattr__(name: str):
    """``serve`` and ``ServerSettings`` need the [serve] extras (Starlette, uvicorn), so they load on use."""
    if name in ("serve", "ServerSettings", "create_app"):
        from toolkit.serving import _server

        return getattr(_server, name)
    raise AttributeError(f"module 'toolkit.serving' has no attribute {name!r}")


__all__ = ["METADATA_FILE", "OnnxModel", "ServerSettings", "create_app", "graph_entry", "read_metadata", "serve"]
