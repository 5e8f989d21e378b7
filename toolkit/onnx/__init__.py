"""Export fitted estimators (and Pipelines around them) to ONNX, and validate the files.

An estimator exports when it implements the export protocol (:class:`SupportsOnnxExport`:
``__onnx_spec__`` returning :class:`InferenceSpec`); every toolkit estimator does, and so may
any scikit-learn-style class of a user's.
"""

from pathlib import Path

from toolkit._export_spec import InferenceSpec, InputSpec, OutputSpec, SupportsOnnxExport
from toolkit.onnx._export import ExportResult, export
from toolkit.onnx._validate import ValidationError, ValidationReport, validate
from toolkit.serving import OnnxModel


def load(folder: str | Path, **session_options) -> OnnxModel:
    """Load an export folder for inference (see :class:`toolkit.serving.OnnxModel`)."""
    return OnnxModel(folder, **session_options)


__all__ = [
    "ExportResult",
    "InferenceSpec",
    "InputSpec",
    "OnnxModel",
    "OutputSpec",
    "SupportsOnnxExport",
    "ValidationError",
    "ValidationReport",
    "export",
    "load",
    "validate",
]
