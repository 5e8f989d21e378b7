"""The models a server offers: every export folder directly under one directory, by name.

Names are discovered once, when the repository is built, and requests only look names up
in that table: no path is ever built from a request, so ``..``, absolute paths and the
like can only miss. A folder (or a symlink) that resolves outside the directory is refused
at discovery. Folders holding several graphs (a VAE's encoder and decoder) offer each as
``<folder>.<graph>``. Nothing is unpickled: a model is its ONNX files and ``model.json``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from toolkit.serving._batching import Batcher
from toolkit.serving._format import METADATA_FILE, read_metadata, shape_text
from toolkit.serving._model import OnnxModel

LOG = logging.getLogger("toolkit.serving")
RECHECK_SECONDS = 0.25

# Open Inference Protocol (V2) tensor datatypes of the dtypes model.json and onnxruntime use.
OIP_DATATYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
    "string": "BYTES",
}
ORT_NUMPY = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32, "bool": np.bool_}
ORT_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


@dataclass
class ServedModel:
    """One graph a server offers: its name and version, the loaded model and its OIP metadata.

    ``folder`` is the repository folder it came from (for a folder that keeps versions, the
    folder above the version's); ``versions`` lists every version of the name being served.
    """

    name: str
    model: OnnxModel
    batcher: Batcher | None = None
    version: str = "1"
    folder: str = ""
    versions: list[str] = field(default_factory=lambda: ["1"])

    @cached_property
    def output_names(self) -> list[str]:
        """The graph's outputs in session order (read once: every request needs them)."""
        return [o.name for o in self.model.session.get_outputs()]

    @cached_property
    def output_index(self) -> dict[str, int]:
        """Each output's position among ``output_names``."""
        return {name: position for position, name in enumerate(self.output_names)}

    @property
    def batchable(self) -> bool:
        """Whether requests can be stacked: every input and output has a free first (batch) axis,
        and the outputs' other axes are fixed (a free one, as the steps of a caption decoder that
        stops when every row has ended, could take its size from the whole batch)."""
        inputs = all(spec["shape"] and spec["shape"][0] is None for spec in self.model.inputs)
        outputs = all(
            out.shape and not isinstance(out.shape[0], int) and all(isinstance(d, int) for d in out.shape[1:])
            for out in self.model.session.get_outputs()
        )
        return inputs and outputs

    def start_batching(self, max_batch_size: int, max_queue_delay_us: int, max_queue_size: int) -> None:
        """Batch this model's requests (settings: the server's, or its model.json's ``serving`` entry)."""
        own = self.model.metadata.get("serving") or {}
        size = int(own.get("max_batch_size", max_batch_size))
        if size <= 1 or not self.batchable:
            self.batcher = None
            return
        problem = self.batching_problem()
        if problem:
            LOG.warning("%s is served unbatched: %s", self.name, problem)
            self.batcher = None
            return
        delay = int(own.get("max_queue_delay_us", max_queue_delay_us))
        session, names = self.model.session, self.output_names
        self.batcher = Batcher(lambda feed: session.run(names, feed), size, delay, max_queue_size)

    def batching_problem(self, rows: int = 8) -> str | None:
        """Why this graph's requests must not be stacked (None: they may). A probe runs ``rows``
        random rows together, each alone and in uneven splits (3 + 5): some graphs' kernels
        (float64 GEMMs, reductions) round differently at another batch size, and batching
        must never change an answer."""
        rng = np.random.default_rng(0)
        feed = {}
        for spec in self.model.inputs:
            shape = (rows, *(1 if d is None else d for d in spec["shape"][1:]))
            if spec["dtype"] == "string":
                return "the start-up probe has no values its string input is sure to accept"
            values = rng.integers(0, 10, shape) if spec["dtype"].startswith("int") else rng.normal(size=shape)
            feed[spec["name"]] = values.astype(ORT_NUMPY[spec["dtype"]])
        try:
            together = self.model.session.run(None, feed)
            parts = [(0, 1), (1, 2), (2, 5), (5, rows)]
            apart = [self.model.session.run(None, {k: v[a:b] for k, v in feed.items()}) for a, b in parts]
        except Exception as error:  # noqa: BLE001 - a graph the probe cannot feed is not batched
            return f"the graph did not run on the start-up probe's random rows ({error})"
        alike = all(
            np.array_equal(whole[a:b], piece[i], equal_nan=whole.dtype.kind in "fc")
            for (a, b), piece in zip(parts, apart)
            for i, whole in enumerate(together)
        )
        if alike:
            return None
        return (
            "onnxruntime's answers for a row differ in the last bits between batch sizes 1 and 8 for this graph, "
            "and batching must not change an answer"
        )

    def metadata(self) -> dict:
        """``GET /v2/models/{name}``: inputs and outputs with name, datatype and shape (-1: any)."""
        inputs = [
            {
                "name": spec["name"],
                "datatype": OIP_DATATYPES[spec["dtype"]],
                "shape": [-1 if d is None else d for d in spec["shape"]],
            }
            for spec in self.model.inputs
        ]
        outputs = [
            {
                "name": out.name,
                "datatype": ORT_TYPES.get(out.type, out.type),
                "shape": [d if isinstance(d, int) else -1 for d in out.shape],
            }
            for out in self.model.session.get_outputs()
        ]
        return {
            "name": self.name,
            "versions": self.versions,
            "platform": "onnxruntime_onnx",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {
                "estimator": self.model.metadata["estimator"]["class"],
                "feature_names": self.model.entry.get("feature_names"),
            },
        }

    @property
    def takes_records(self) -> bool:
        """Whether ``/predict`` can feed the graph from records: the model has named columns, and
        they are either its one input's columns (shape (-1, n_columns)) or one input each."""
        names = self.model.entry.get("feature_names")
        inputs = self.model.inputs
        if not names:
            return False
        if len(inputs) == 1:
            return len(inputs[0]["shape"]) == 2 and inputs[0]["shape"][1] == len(names)
        return [spec["name"] for spec in inputs] == names

    def signature(self) -> str:
        """One line for the server's start-up listing: inputs -> outputs, with datatypes and shapes."""
        metadata = self.metadata()

        def tensors(entries: list[dict]) -> str:
            return ", ".join(f"{e['name']} {e['datatype']} {e['shape']}" for e in entries)

        named = (
            f" ({len(self.model.entry['feature_names'])} named columns: /predict takes records)"
            if self.takes_records
            else ""
        )
        versions = f" (version {self.version} of {', '.join(self.versions)})" if len(self.versions) > 1 else ""
        return f"{self.name}{versions}: {tensors(metadata['inputs'])}{named} -> {tensors(metadata['outputs'])}"


def _version_folders(folder: Path) -> list[Path]:
    """The version folders of a folder that keeps versions (Triton's layout: ``<model>/<n>/``,
    each an export folder), lowest number first; [] for anything else."""
    if (folder / METADATA_FILE).is_file() or not folder.is_dir():
        return []
    numbered = [child for child in folder.iterdir() if child.name.isdigit() and (child / METADATA_FILE).is_file()]
    return sorted(numbered, key=lambda child: int(child.name))


def _stamp(folder: Path) -> tuple | None:
    """(inode, mtime) of the folder's model.json, or of each version's: an export swapped in,
    or a version added or removed, changes it (None: gone)."""
    versions = _version_folders(folder)
    if versions:
        return tuple((child.name, _stamp(child)) for child in versions)
    try:
        status = (folder / METADATA_FILE).stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


@dataclass
class Unavailable:
    """A model the server found but does not serve: its folder, version and why (a damaged
    graph, unloaded)."""

    folder: str
    reason: str
    version: str = "1"


class ModelRepository:
    """The models of a server: every export folder directly under ``directory``, by name, with
    the V2 model-repository extension's index, load and unload.

    A folder that keeps versions (no model.json of its own, export folders named by number
    inside: ``digits_cnn/1``, ``digits_cnn/2``) serves each version, the highest by default. A
    folder whose graph cannot be read (truncated, corrupt, a digest that does not match) is
    listed as unavailable with its reason while the others serve. A folder replaced on disk (an
    export swapped in: its model.json changes; a version added or removed) is read again at its
    next request, without a restart (model.json is looked at no more than every
    RECHECK_SECONDS per folder). ``prepare(served)`` runs on every model made (the server
    starts its batching).
    """

    def __init__(self, directory: str | Path, *, intra_op_num_threads: int | None = None, prepare=None) -> None:
        self.root = Path(directory).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"{directory} is not a directory of exported models")
        self.intra_op_num_threads, self.prepare = intra_op_num_threads, prepare
        self.models: dict[str, ServedModel] = {}  # name: its highest version
        self.versions: dict[str, dict[str, ServedModel]] = {}  # name: {version: model}
        self.unavailable: dict[str, Unavailable] = {}
        self.stamps: dict[str, tuple | None] = {}
        self.checked: dict[str, float] = {}  # when each folder's model.json was last looked at
        for folder in sorted(self.root.iterdir()):
            if (folder / METADATA_FILE).is_file() or _version_folders(folder):
                self.load_folder(folder.name)

    def _folder(self, name: str) -> str:
        """The folder a model or folder name refers to."""
        served = self.models.get(name)
        if served is not None:
            return served.folder
        if name in self.unavailable:
            return self.unavailable[name].folder
        return name.split(".", 1)[0] if not (self.root / name).is_dir() else name

    def _forget(self, folder_name: str) -> None:
        for name in [n for n, m in self.models.items() if m.folder == folder_name]:
            del self.models[name], self.versions[name]
        for name in [n for n, u in self.unavailable.items() if u.folder == folder_name]:
            del self.unavailable[name]

    def load_folder(self, folder_name: str) -> list[str]:
        """(Re)load one export folder's graphs (every version's); returns the names now served from it."""
        self._forget(folder_name)
        listed = {
            path.name for path in self.root.iterdir() if (path / METADATA_FILE).is_file() or _version_folders(path)
        }
        if folder_name not in listed:  # names are matched against the listing: no path is built from a request
            raise KeyError(folder_name)
        folder = self.root / folder_name
        resolved = folder.resolve()
        if resolved.parent != self.root and self.root not in resolved.parents:
            LOG.warning("refusing %s: it resolves to %s, outside %s", folder_name, resolved, self.root)
            return []
        self.stamps[folder_name] = _stamp(folder)
        versions = [(child.name, child) for child in _version_folders(folder)] or [("1", folder)]
        loaded = {}
        for version, version_folder in versions:
            for name, served in self._load_version(folder_name, version, version_folder):
                self.versions.setdefault(name, {})[version] = served
                loaded[name] = served  # the highest version last
        for name, served in loaded.items():
            self.models[name] = served
            for each in self.versions[name].values():
                each.versions = list(self.versions[name])
        return list(loaded)

    def _load_version(self, folder_name: str, version: str, folder: Path) -> list[tuple[str, ServedModel]]:
        """(name, model) of each graph of one export folder that loads."""
        try:
            graphs = read_metadata(folder)["graphs"]
        except ValueError as error:  # one unreadable folder must not take the others down
            LOG.warning("skipping %s: %s", folder.relative_to(self.root), error)
            return []
        served = []
        for graph in graphs:
            name = folder_name if len(graphs) == 1 else f"{folder_name}.{graph}"
            try:
                model = OnnxModel(folder, graph=graph, intra_op_num_threads=self.intra_op_num_threads)
            except Exception as error:  # noqa: BLE001 - a truncated or corrupt graph: not ready, with its reason
                LOG.warning("%s (version %s) is not ready: %s", name, version, error)
                self.unavailable[name] = Unavailable(folder_name, f"its graph could not be loaded: {error}", version)
                continue
            if self.root not in (folder / model.entry["file"]).resolve().parents:
                LOG.warning("refusing %s: its graph file resolves outside %s", name, self.root)
                continue
            model_served = ServedModel(name, model, version=version, folder=folder_name)
            if self.prepare is not None:
                self.prepare(model_served)
            served.append((name, model_served))
        return served

    def unload(self, name: str) -> None:
        """Stop serving a model (all graphs and versions of its folder) until it is loaded again."""
        folder = self._folder(name)
        names = [n for n, m in self.models.items() if m.folder == folder]
        if not names and not any(u.folder == folder for u in self.unavailable.values()):
            raise KeyError(name)
        for served in names:
            version = self.models[served].version
            del self.models[served], self.versions[served]
            self.unavailable[served] = Unavailable(folder, "unloaded (POST .../load to serve it again)", version)

    def get(self, name: str) -> ServedModel:
        """The served model (its highest version: ``versions[name]`` has every one); KeyError
        when unknown, LookupError(reason) when not ready. A folder replaced on disk is read
        again first."""
        served = self.models.get(name)
        if served is not None:
            folder, now = served.folder, time.monotonic()
            if now - self.checked.get(folder, 0.0) > RECHECK_SECONDS:
                self.checked[folder] = now
                if _stamp(self.root / folder) != self.stamps.get(folder):
                    self.load_folder(folder)
                    served = self.models.get(name)
        if served is not None:
            return served
        if name in self.unavailable:
            raise LookupError(self.unavailable[name].reason)
        raise KeyError(name)

    def index(self) -> list[dict]:
        """``POST /v2/repository/index``: every model version with its state and, when not ready, why."""
        entries = [
            {"name": name, "version": version, "state": "READY", "reason": ""}
            for name, versions in self.versions.items()
            for version in versions
        ]
        entries += [
            {"name": name, "version": entry.version, "state": "UNAVAILABLE", "reason": entry.reason}
            for name, entry in self.unavailable.items()
        ]
        return sorted(entries, key=lambda entry: (entry["name"], int(entry["version"])))


def discover_models(directory: str | Path, *, intra_op_num_threads: int | None = None) -> dict[str, ServedModel]:
    """{name: ServedModel} for every export folder directly under ``directory`` that loads."""
    return ModelRepository(directory, intra_op_num_threads=intra_op_num_threads).models


# What a request's datatype may be for an input of each kind: the widths of the same family (the
# anchors, MLServer and KServe, cast between them); a value that does not fit the input's width
# is refused by name.
FLOAT_WIDTHS = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
FLOAT_LARGEST = {name: float(np.finfo(dtype).max) for name, dtype in FLOAT_WIDTHS.items()}
INTEGER_WIDTHS = {
    f"{kind}{bits}": np.dtype(f"{kind[0].lower() if kind == 'UINT' else ''}int{bits}")
    for kind in ("INT", "UINT")
    for bits in (8, 16, 32, 64)
}


def _castable(sent: str, expected: str) -> bool:
    """Whether a tensor of datatype ``sent`` may feed an input of ``expected`` (same family)."""
    return (
        sent == expected
        or all(t in FLOAT_WIDTHS for t in (sent, expected))
        or all(t in INTEGER_WIDTHS for t in (sent, expected))
    )


def decode_tensor(spec: dict, request_input: dict, max_rows: int) -> np.ndarray:
    """An OIP request tensor {"name", "shape", "datatype", "data"} as the array the graph's
    input ``spec`` takes (its dtype and shape, ready for ``session.run``); ValueError naming the
    problem otherwise.

    A float datatype of another width than the input's (FP64 data for an FP32 input) is cast,
    as are integer widths; a value out of the input's range is refused by name, as are JSON
    booleans, strings and nulls sent for a numeric input, NaN and infinity.
    """
    name = request_input.get("name")
    expected = OIP_DATATYPES[spec["dtype"]]
    absent = [key for key in ("datatype", "shape", "data") if key not in request_input]
    if absent:
        raise ValueError(
            f"input {name!r} is missing the field(s) {absent}; each input needs name, shape, datatype "
            f"({expected} here) and data"
        )
    datatype, shape, data = request_input["datatype"], request_input["shape"], request_input["data"]
    if isinstance(data, (bytes, bytearray, memoryview)):  # Triton's binary tensor extension
        data = _from_binary(bytes(data), datatype, name)
    if not _castable(datatype, expected):
        raise ValueError(f"input {name!r} has datatype {datatype!r}; the model takes {expected}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ValueError(f"input {name!r}: shape must be a list of non-negative ints, got {shape!r}")
    if not isinstance(data, (list, np.ndarray)):
        raise ValueError(f"input {name!r}: data must be a list, got {type(data).__name__}")
    if len(shape) != len(spec["shape"]):
        raise ValueError(
            f"input {name!r} has {len(shape)} dimensions {shape_text(shape)}; the model expects "
            f"{len(spec['shape'])}: {shape_text(spec['shape'])} (-1: any size)"
        )
    if shape and shape[0] > max_rows:
        raise ValueError(f"input {name!r} has {shape[0]} rows; this server takes at most {max_rows} per request")
    values = np.asarray(data, dtype=object).reshape(-1) if expected == "BYTES" else _numeric(data, name, expected)
    if values.size != math.prod(shape):
        raise ValueError(f"input {name!r}: shape {shape} holds {math.prod(shape)} values but data has {values.size}")
    if any(fixed is not None and fixed != size for fixed, size in zip(spec["shape"], shape)):
        raise ValueError(
            f"input {name!r} has shape {shape_text(shape)}; the model expects {shape_text(spec['shape'])} "
            "(-1: any size)"
        )
    return values.reshape(shape)


BINARY_DTYPES = {
    "BOOL": np.dtype("?"),
    **{name: np.dtype(dtype).newbyteorder("<") for name, dtype in INTEGER_WIDTHS.items()},
    **{name: np.dtype(dtype).newbyteorder("<") for name, dtype in FLOAT_WIDTHS.items()},
}


def _from_binary(raw: bytes, datatype: str, name: str) -> np.ndarray:
    """A binary tensor's flat values: little-endian numbers, or BYTES as 4-byte lengths + bytes."""
    if datatype == "BYTES":
        values, offset = [], 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise ValueError(f"input {name!r}: its binary BYTES data is cut inside an element's length")
            size = int.from_bytes(raw[offset : offset + 4], "little")
            values.append(raw[offset + 4 : offset + 4 + size].decode("utf-8", errors="replace"))
            offset += 4 + size
        return np.asarray(values, dtype=object)
    if datatype not in BINARY_DTYPES:
        raise ValueError(f"input {name!r}: unknown datatype {datatype!r}")
    itemsize = BINARY_DTYPES[datatype].itemsize
    if len(raw) % itemsize:
        raise ValueError(f"input {name!r}: {len(raw)} bytes of binary data is not a whole number of {datatype}")
    return np.frombuffer(raw, dtype=BINARY_DTYPES[datatype])


def _flat(data: list) -> list:
    """Nested lists flattened (the V2 JSON allows the data nested by shape)."""
    while data and isinstance(data[0], list):
        data = [value for row in data for value in (row if isinstance(row, list) else [row])]
    return data


NUMBER_TYPES = {int, float}


def _numeric(data: list | np.ndarray, name: str, expected: str) -> np.ndarray:
    """The flat values of a numeric input, in the numpy dtype of its ``expected`` datatype.

    JSON data is flattened and its element types looked at once (numbers only); when the sum
    of their magnitudes is finite and within the input's float width, no value can be NaN,
    infinite or overflow it, and they are converted straight to it. Otherwise (and for binary
    data) they are read at float64 and checked value by value, to say which problem it is.
    """
    if isinstance(data, np.ndarray):  # decoded from binary: typed already
        flat = data
    else:
        flat = _flat(data)
        types = set(map(type, flat))
        if not types <= NUMBER_TYPES:
            if bool in types:
                raise ValueError(f"input {name!r} is {expected}: JSON booleans (true / false) are not numbers here")
            if type(None) in types:
                raise ValueError(f"input {name!r} contains NaN, infinity or null")
            raise ValueError(f"input {name!r}: data must be numbers (nested lists of one depth are fine)")
    if expected in FLOAT_WIDTHS:
        largest = FLOAT_LARGEST[expected]
        if isinstance(flat, list) and sum(map(abs, flat)) <= largest:  # all finite, none can overflow the width
            return np.array(flat, dtype=FLOAT_WIDTHS[expected])
    values = np.asarray(flat, dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all():
        raise ValueError(f"input {name!r} contains NaN, infinity or null")
    if expected in FLOAT_WIDTHS:
        too_large = np.abs(values) > largest
        if too_large.any():
            raise ValueError(
                f"input {name!r}: the value {values[too_large][0]:g} overflows {expected} (largest magnitude "
                f"{largest:.4g})"
            )
        return values.astype(FLOAT_WIDTHS[expected])
    if not np.array_equal(values, np.round(values)):
        raise ValueError(f"input {name!r} is {expected} but data holds non-integers")
    bounds = np.iinfo(INTEGER_WIDTHS[expected])
    outside = (values < bounds.min) | (values > bounds.max)
    if outside.any():
        raise ValueError(
            f"input {name!r}: the value {values[outside][0]:.0f} does not fit {expected} [{bounds.min}, {bounds.max}]"
        )
    return values.astype(INTEGER_WIDTHS[expected])


def output_datatype(value: np.ndarray) -> str:
    """The OIP datatype of an output array."""
    if value.dtype.kind in "OUS":
        return "BYTES"
    return {"f": "FP64" if value.dtype == np.float64 else "FP32", "i": "INT64", "b": "BOOL"}[value.dtype.kind]


def encode_tensor(name: str, value: np.ndarray) -> dict:
    """An output array as an OIP response tensor (row-major flattened data). Numeric data stays
    a contiguous array, which the server's JSON encoder (orjson) writes without a Python value
    per element: float32 values in their shortest float32 form, NaN as null."""
    datatype = output_datatype(value)
    flat = value.reshape(-1)
    return {
        "name": name,
        "datatype": datatype,
        "shape": list(value.shape),
        "data": [str(v) for v in flat.tolist()] if datatype == "BYTES" else np.ascontiguousarray(flat),
    }


def encode_binary_tensor(name: str, value: np.ndarray) -> tuple[dict, bytes]:
    """An output as Triton's binary tensor extension sends it: the entry (no data, its byte
    count in parameters.binary_data_size) and the bytes (little-endian; BYTES length-prefixed)."""
    datatype = output_datatype(value)
    if datatype == "BYTES":
        raw = b"".join(len(b := str(v).encode("utf-8")).to_bytes(4, "little") + b for v in value.reshape(-1).tolist())
    else:
        raw = np.ascontiguousarray(value, dtype=BINARY_DTYPES[datatype]).tobytes()
    entry = {
        "name": name,
        "datatype": datatype,
        "shape": list(value.shape),
        "parameters": {"binary_data_size": len(raw)},
    }
    return entry, raw
