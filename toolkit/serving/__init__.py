"""Run exported models with onnxruntime, numpy and pandas only (no torch, no scikit-learn)."""

from toolkit.serving._format import (
    METADATA_FILE,
    MODEL_FILE,
    graph_entry,
    read_metadata,
)
from toolkit.serving._model import OnnxModel

__all__ = ["METADATA_FILE", "MODEL_FILE", "OnnxModel", "graph_entry", "read_metadata"]
