"""Export fitted estimators (and Pipelines around them) to ONNX, and validate the files."""

from pathlib import Path

from toolkit.onnx._export import ExportResult, export
from toolkit.onnx._validate import ValidationError, ValidationReport, validate
from toolkit.serving import OnnxModel


def load(folder: str | Path, **session_options) -> OnnxModel:
    """Load an export folder for inference (see :class:`toolkit.serving.OnnxModel`)."""
    return OnnxModel(folder, **session_options)


__all__ = ["ExportResult", "OnnxModel", "ValidationError", "ValidationReport", "export", "load", "validate"]
