"""The export folder's layout: ``model.onnx`` beside ``model.json``."""

from __future__ import annotations

import json
from pathlib import Path

MODEL_FILE = "model.onnx"
METADATA_FILE = "model.json"


def read_metadata(folder: str | Path) -> dict:
    """Parse ``model.json`` of an export folder, with a clear error when it is missing."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a toolkit export folder")
    return json.loads(path.read_text())
