"""The export folder's layout: one or more ONNX graphs (``model.onnx`` for most estimators)
beside ``model.json``, whose ``graphs`` entry describes each, with each file's SHA-256.

A graph made elsewhere (torch.onnx, skl2onnx, a hub model's export) is a model too: a folder
holding ``model.onnx`` and no ``model.json`` (Triton's layout), or one ``.onnx`` file. Its
metadata names its one graph and leaves the inputs and outputs to be read from the graph
itself once it is loaded (``inputs`` and ``outputs`` are None).

An export replaces the files one rename at a time, graphs first and ``model.json`` last, so a
reader that runs meanwhile can meet an old ``model.json`` beside a new graph. The digests let
it tell: :func:`read_graph` reads ``model.json`` and the graph again until they agree, so a
reader sees one export or the other, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

METADATA_FILE = "model.json"
GRAPH_FILE = "model.onnx"  # the graph of a folder without model.json, as Triton names it


def marker(path: str | Path) -> Path | None:
    """The file that makes ``path`` a model: its ``model.json``, else its ``model.onnx`` (a
    graph made elsewhere), or ``path`` itself when it is an ``.onnx`` file; None otherwise.
    It changes (inode, mtime) whenever the model is replaced on disk."""
    path = Path(path)
    if path.is_file():
        return path if path.suffix == ".onnx" else None
    for name in (METADATA_FILE, GRAPH_FILE):
        if (path / name).is_file():
            return path / name
    return None


def graph_folder(path: str | Path) -> Path:
    """The folder a model's graph files are in: ``path`` itself, or the folder of an ``.onnx`` file."""
    path = Path(path)
    return path.parent if path.is_file() else path


def bare_metadata(graph_file: Path) -> dict:
    """The metadata of a graph made elsewhere: no estimator, one graph named "model" whose inputs
    and outputs are read from the graph when it is loaded."""
    entry = {"file": graph_file.name, "inputs": None, "outputs": None}
    return {"estimator": None, "graphs": {"model": entry}}


def read_metadata(folder: str | Path) -> dict:
    """Parse ``model.json`` of an export folder (or describe a graph made elsewhere: a folder of
    ``model.json``-less ``model.onnx``, or an ``.onnx`` file), with a clear error when neither."""
    found = marker(folder)
    if found is not None and found.name != METADATA_FILE:
        return bare_metadata(found)
    path = Path(folder) / METADATA_FILE
    if found is None:
        raise FileNotFoundError(
            f"{path} not found: {folder} is neither a toolkit export folder nor a folder of {GRAPH_FILE} "
            "nor an .onnx file"
        )
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


def shape_text(shape) -> str:
    """A tensor shape as the V2 metadata writes it: a list, -1 on a free axis ([-1, 64])."""
    return "[" + ", ".join("-1" if d is None or (isinstance(d, int) and d < 0) else str(d) for d in shape) + "]"


def file_digest(data: bytes) -> str:
    """The SHA-256 that ``model.json`` records for a graph file."""
    return hashlib.sha256(data).hexdigest()


def read_graph(folder: str | Path, graph: str | None = None, *, attempts: int = 20) -> tuple[dict, str, dict, bytes]:
    """(metadata, graph name, its entry, the graph file's bytes), consistent with each other;
    ``folder`` may also be a graph made elsewhere (see :func:`read_metadata`).

    When the file's digest differs from the one ``model.json`` records (or the file is gone),
    an export is replacing the folder: both are read again, up to ``attempts`` times over
    about a second, before a ValueError says the folder holds a mixed or damaged export.
    Folders written before digests were recorded are read as they are.
    """
    for attempt in range(attempts):
        metadata = read_metadata(folder)
        name, entry = graph_entry(metadata, graph)
        path = graph_folder(folder) / entry["file"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = None
        if data is not None and entry.get("sha256") in (None, file_digest(data)):
            return metadata, name, entry, data
        time.sleep(0.01 * (attempt + 1))
    state = "is missing" if data is None else "does not match the SHA-256 that model.json records"
    raise ValueError(f"{path} {state}: {folder} holds a mixed or damaged export; export the model again")
