"""Run exported models with onnxruntime, numpy and pandas only (no torch, no scikit-learn)."""

from toolkit.serving._format import METADATA_FILE, MODEL_FILE, read_metadata
from toolkit.serving._model import OnnxModel

__all__ = ["METADATA_FILE", "MODEL_FILE", "OnnxModel", "read_metadata"]
