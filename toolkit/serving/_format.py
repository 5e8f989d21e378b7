"""The export folder's layout: one or more ONNX graphs (``model.onnx`` for most estimators)
beside ``model.json``, whose ``graphs`` entry describes each."""

from __future__ import annotations

import json
from pathlib import Path

METADATA_FILE = "model.json"


def read_metadata(folder: str | Path) -> dict:
    """Parse ``model.json`` of an export folder, with a clear error when it is missing."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a toolkit export folder")
    metadata = json.loads(path.read_text())
    if "graphs" not in metadata:
        raise ValueError(f"{path} was written by an older toolkit (no 'graphs' entry); export the model again")
    return metadata


def graph_entry(metadata: dict, graph: str | None) -> tuple[str, dict]:
    """(name, entry) of ``graph`` in ``model.json``'s graphs; ``None`` means the only one."""
    graphs = metadata["graphs"]
    if graph is None:
        if len(graphs) > 1:
            raise ValueError(f"this export holds several graphs {list(graphs)}; pass graph=<one of them>")
        graph = next(iter(graphs))
    if graph not in graphs:
        raise ValueError(f"no graph {graph!r} in this export; it holds {list(graphs)}")
    return graph, graphs[graph]
