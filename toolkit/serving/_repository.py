"""The models a server offers: every export folder directly under one directory, by name.

A folder holding ``model.onnx`` without ``model.json`` (a graph made elsewhere) is a model too,
as is one ``.onnx`` file given instead of the directory.

Names are discovered once, when the repository is built, and requests only look names up
in that table: no path is ever built from a request, so ``..``, absolute paths and the
like can only miss. A folder (or a symlink) that resolves outside the directory is refused
at discovery. Folders holding several graphs (a VAE's encoder and decoder) offer each as
``<folder>.<graph>``. Nothing is unpickled: a model is its ONNX files and ``model.json``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from toolkit.serving._batching import Batcher
from toolkit.serving._fast_path import FastPath
from toolkit.serving._format import GRAPH_FILE, graph_folder, marker, read_metadata
from toolkit.serving._model import OnnxModel
from toolkit.serving._shared_state import SharedState
from toolkit.serving._tensor_types import BY_NAME, BY_ONNX

LOG = logging.getLogger("toolkit.serving")
RECHECK_SECONDS = 0.25


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
    def output_args(self) -> list:
        """The graph's tensor outputs in session order (onnxruntime's NodeArgs; a graph made
        elsewhere may have others, which are not served)."""
        return [o for o in self.model.session.get_outputs() if o.name in self.model.outputs]

    @cached_property
    def output_names(self) -> list[str]:
        """The names of ``output_args`` (read once: every request needs them)."""
        return [o.name for o in self.output_args]

    @cached_property
    def output_index(self) -> dict[str, int]:
        """Each output's position among ``output_names``."""
        return {name: position for position, name in enumerate(self.output_names)}

    @cached_property
    def fast_path(self) -> FastPath | None:
        """The decoder of JSON requests in the common form (None: the graph has an input it does
        not take): :class:`~toolkit.serving._fast_path.FastPath`."""
        return FastPath.of(self.model.inputs)

    @property
    def batchable(self) -> bool:
        """Whether requests can be stacked: every input and output has a free first (batch) axis,
        and the outputs' other axes are fixed (a free one, as the steps of a caption decoder that
        stops when every row has ended, could take its size from the whole batch)."""
        inputs = all(spec["shape"] and spec["shape"][0] is None for spec in self.model.inputs)
        outputs = all(
            out.shape and not isinstance(out.shape[0], int) and all(isinstance(d, int) for d in out.shape[1:])
            for out in self.output_args
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
            feed[spec["name"]] = values.astype(BY_NAME[spec["dtype"]].numpy)
        try:
            run, names = self.model.session.run, self.output_names
            together = run(names, feed)
            parts = [(0, 1), (1, 2), (2, 5), (5, rows)]
            apart = [run(names, {k: v[a:b] for k, v in feed.items()}) for a, b in parts]
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
                "datatype": BY_NAME[spec["dtype"]].datatype,
                "shape": [-1 if d is None else d for d in spec["shape"]],
            }
            for spec in self.model.inputs
        ]
        outputs = [
            {
                "name": out.name,
                "datatype": BY_ONNX[out.type].datatype if out.type in BY_ONNX else out.type,
                "shape": [d if isinstance(d, int) else -1 for d in out.shape],
            }
            for out in self.output_args
        ]
        return {
            "name": self.name,
            "versions": self.versions,
            "platform": "onnxruntime_onnx",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {
                "estimator": self.model.estimator_class,
                "feature_names": self.model.entry.get("feature_names"),
                "precision": self.model.precision,
                "opset": self.model.opset,
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

    def accepts_missing(self, column: str) -> bool:
        """Whether records may leave ``column`` empty (null): its input accepts missing values
        (model.json's ``allow_nan``; the one input of a model of named columns stands for all)."""
        inputs = self.model.inputs
        spec = inputs[0] if len(inputs) == 1 else next(s for s in inputs if s["name"] == column)
        return bool(spec.get("allow_nan", False))

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
    each an export folder or a folder of ``model.onnx``), lowest number first; [] for anything else."""
    if not folder.is_dir() or marker(folder) is not None:
        return []
    numbered = [child for child in folder.iterdir() if child.name.isdigit() and marker(child) is not None]
    return sorted(numbered, key=lambda child: int(child.name))


def _stamp(folder: Path) -> tuple | None:
    """(inode, mtime) of the model's marker file (model.json, or the graph of one made
    elsewhere), or of each version's: an export swapped in, or a version added or removed,
    changes it (None: gone)."""
    versions = _version_folders(folder)
    if versions:
        return tuple((child.name, _stamp(child)) for child in versions)
    found = marker(folder)
    if found is None:
        return None
    try:
        status = found.stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


def is_one_model(path: Path, model_name: str | None = None) -> bool:
    """Whether ``path`` is one model to serve alone (an ``.onnx`` file, an export folder, a
    folder of versions) rather than a directory of models; ValueError when ``model_name`` is
    given for a directory of models (each is served by its folder's name)."""
    one = path.is_file() or marker(path) is not None or bool(_version_folders(path))
    if model_name is not None and not one:
        raise ValueError(
            f"a model name is for one model served alone (an export folder or an .onnx file); {path} "
            "is a folder of models, each served by its folder's name"
        )
    return one


def served_name(path: Path) -> str:
    """The name a model served alone is served by: a folder's own, and for one ``.onnx`` file its
    folder's for ``model.onnx`` (Triton names a model by its folder), its own stem for any other."""
    if path.is_dir():
        return path.name
    if path.name != GRAPH_FILE:
        return path.stem
    return path.parent.parent.name if path.parent.name.isdigit() else path.parent.name


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

    A folder holding ``model.onnx`` and no model.json (a graph made elsewhere) is served with
    the inputs and outputs its graph declares. ``directory`` may also be one model served alone:
    an export folder (or a folder of versions) under its own name, or one ``.onnx`` file under
    its folder's name (``model.onnx``) or its own stem; ``model_name`` names it otherwise.

    A folder that keeps versions (no model.json of its own, export folders named by number
    inside: ``digits_cnn/1``, ``digits_cnn/2``) serves each version, the highest by default. A
    folder whose graph cannot be read (truncated, corrupt, a digest that does not match) is
    listed as unavailable with its reason while the others serve. A folder replaced on disk (an
    export swapped in: its model.json changes; a version added or removed) is read again at its
    next request, without a restart (model.json is looked at no more than every
    RECHECK_SECONDS per folder), and a folder added is served at its first request or the next
    index; ``poll=False`` serves the folders as they were read (at start, or by ``load_folder``).
    ``prepare(served)`` runs on every model made (the server starts its batching).

    ``shared``: the state the workers of one server share (``_shared_state.py``). A worker
    then serves what the operations recorded there say: at start (a worker restarted after the
    others loaded or unloaded a model), and at each lookup after another worker recorded one
    (``follow``); its own load and unload it records with ``publish``.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        intra_op_num_threads: int | None = None,
        prepare=None,
        poll: bool = True,
        shared: SharedState | None = None,
        model_name: str | None = None,
    ) -> None:
        path = Path(directory).resolve()
        if path.is_file() and path.suffix != ".onnx":
            raise ValueError(f"{directory} is a file but no .onnx graph; give a directory of models or an .onnx file")
        self.single = path if is_one_model(path) else None
        self.root = path.parent if self.single else path
        if not self.root.is_dir():
            raise FileNotFoundError(f"{directory} is not a directory of exported models")
        is_one_model(path, model_name)  # refuses a model name for a directory of models
        self.single_name = model_name or (None if self.single is None else served_name(self.single))
        self.intra_op_num_threads, self.prepare, self.poll = intra_op_num_threads, prepare, poll
        self.scanned = time.monotonic()  # when the directory was last listed for new folders
        self.models: dict[str, ServedModel] = {}  # name: its highest version
        self.versions: dict[str, dict[str, ServedModel]] = {}  # name: {version: model}
        self.unavailable: dict[str, Unavailable] = {}
        self.stamps: dict[str, tuple | None] = {}
        self.checked: dict[str, float] = {}  # when each folder's model.json was last looked at
        self.shared, self.generations, self.epoch = shared, {}, 0  # the shared operations applied here
        recorded = None if shared is None else shared.read()
        for folder_name in sorted(self.listing()):
            # without polling, a worker started later serves the folders recorded, not those added on disk since
            if recorded is None or poll or folder_name in recorded["folders"]:
                self.load_folder(folder_name)
        if recorded is not None:
            self._apply(recorded, fresh=True)

    def follow(self) -> None:
        """Apply the load and unload operations other workers recorded since the last look (one
        read of shared memory when there are none)."""
        if self.shared is not None and self.shared.epoch() != self.epoch:
            self._apply(self.shared.read())

    def publish(self, folder_name: str, loaded: bool) -> None:
        """Record this worker's load (``loaded``) or unload of a folder for the other workers,
        and apply the operations they recorded meanwhile."""
        if self.shared is not None:
            self._apply(self.shared.record(folder_name, loaded), own=folder_name)

    def _apply(self, state: dict, *, own: str | None = None, fresh: bool = False) -> None:
        """Serve as ``state`` says: each folder whose generation moved is read again (loaded)
        or unloaded; ``own``: the folder this worker's operation changed already; ``fresh``:
        the folders were just read from disk (at start), so only unloads remain to apply."""
        for folder_name, entry in state["folders"].items():
            if self.generations.get(folder_name) == entry["generation"]:
                continue
            self.generations[folder_name] = entry["generation"]
            if folder_name == own or (fresh and entry["loaded"]):
                continue
            try:
                if entry["loaded"]:
                    self.load_folder(folder_name)
                else:
                    self.unload(folder_name)
            except KeyError:  # gone from disk, or never served here: nothing to unload
                pass
        self.epoch = state["epoch"]

    def listing(self) -> set[str]:
        """The names of the model folders (and folders of versions) directly under the directory
        (or the one file's name)."""
        if self.single is not None:
            return {self.single_name}
        return {path.name for path in self.root.iterdir() if path.is_dir() and (marker(path) or _version_folders(path))}

    def path_of(self, folder_name: str) -> Path:
        """Where a listed folder name's model is on disk (the one file, when the server has one)."""
        return self.single if self.single is not None else self.root / folder_name

    def folder_of(self, name: str) -> str:
        """The folder a model or folder name refers to (``<folder>.<graph>`` names a graph of
        one); matched against names, no path is built from it."""
        served = self.models.get(name)
        if served is not None:
            return served.folder
        if name in self.unavailable:
            return self.unavailable[name].folder
        return name if name in self.listing() else name.split(".", 1)[0]

    def _forget(self, folder_name: str) -> None:
        for name in [n for n, m in self.models.items() if m.folder == folder_name]:
            del self.models[name], self.versions[name]
        for name in [n for n, u in self.unavailable.items() if u.folder == folder_name]:
            del self.unavailable[name]

    def load_folder(self, folder_name: str) -> list[str]:
        """(Re)load one export folder's graphs (every version's); returns the names now served from it."""
        self._forget(folder_name)  # a folder gone from disk is served no more
        if folder_name not in self.listing():  # names are matched against the listing: no path is built from them
            raise KeyError(folder_name)
        folder = self.path_of(folder_name)
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
            if self.root not in (graph_folder(folder) / model.entry["file"]).resolve().parents:
                LOG.warning("refusing %s: its graph file resolves outside %s", name, self.root)
                continue
            model_served = ServedModel(name, model, version=version, folder=folder_name)
            if self.prepare is not None:
                self.prepare(model_served)
            served.append((name, model_served))
        return served

    def unload(self, name: str) -> None:
        """Stop serving a model (all graphs and versions of its folder) until it is loaded again."""
        folder = self.folder_of(name)
        names = [n for n, m in self.models.items() if m.folder == folder]
        if not names and not any(u.folder == folder for u in self.unavailable.values()):
            raise KeyError(name)
        for served in names:
            version = self.models[served].version
            del self.models[served], self.versions[served]
            self.unavailable[served] = Unavailable(folder, "unloaded (POST .../load to serve it again)", version)

    def _load_new_folders(self) -> None:
        """Polling: read the folders added under the directory since it was last listed (no
        more than every RECHECK_SECONDS); one read before that serves nothing (its model.json
        unreadable) is read again only once it changes on disk."""
        now = time.monotonic()
        if not self.poll or now - self.scanned <= RECHECK_SECONDS:
            return
        self.scanned = now
        known = {m.folder for m in self.models.values()} | {u.folder for u in self.unavailable.values()}
        for folder_name in sorted(self.listing() - known):
            if _stamp(self.path_of(folder_name)) != self.stamps.get(folder_name):
                self.load_folder(folder_name)

    def get(self, name: str) -> ServedModel:
        """The served model (its highest version: ``versions[name]`` has every one); KeyError
        when unknown, LookupError(reason) when not ready. Polling, a folder replaced on disk is
        read again first, and an unknown name looked for among the folders added."""
        self.follow()
        served = self.models.get(name)
        if served is None and name not in self.unavailable:
            self._load_new_folders()
            served = self.models.get(name)
        if served is not None and self.poll:
            folder, now = served.folder, time.monotonic()
            if now - self.checked.get(folder, 0.0) > RECHECK_SECONDS:
                self.checked[folder] = now
                if _stamp(self.path_of(folder)) != self.stamps.get(folder):
                    self.load_folder(folder)
                    served = self.models.get(name)
        if served is not None:
            return served
        if name in self.unavailable:
            raise LookupError(self.unavailable[name].reason)
        raise KeyError(name)

    def index(self) -> list[dict]:
        """``POST /v2/repository/index``: every model version with its state and, when not ready, why."""
        self.follow()
        self._load_new_folders()
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
