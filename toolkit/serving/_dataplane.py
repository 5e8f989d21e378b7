"""What the server does, free of any transport: inference, metadata, readiness and the model
repository's operations, as MLServer's ``DataPlane`` (``toolkit.serving._app`` puts it on
HTTP; every route and the raw-ASGI inference path call the same methods).

Requests come in as the Open Inference Protocol's JSON objects (dicts), answers go out as dicts
and arrays; a client's mistake (or a busy model) raises :class:`RequestError` with the status
the protocol gives it and a message naming the problem.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit._version import __version__
from toolkit.serving._batching import INLINE_ELEMENTS, QueueFull
from toolkit.serving._codec import decode_tensor, parse_body, request_problem
from toolkit.serving._model import column_mismatch
from toolkit.serving._repository import ModelRepository, ServedModel
from toolkit.serving._settings import ServerSettings

EXTENSIONS = ["binary_tensor_data", "model_repository", "predict_records", "metrics"]


class RequestError(Exception):
    """A client's mistake (or a busy server): answered with ``status`` and ``{"error": message}``
    (and a Retry-After header when ``retry_after`` seconds are given)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def parse_request(body: bytes | bytearray, binary_header: str | None) -> dict:
    """A request body as the protocol's JSON object; its problems are 400s."""
    try:
        return parse_body(body, binary_header)
    except ValueError as error:
        raise RequestError(400, str(error)) from None


@dataclass(slots=True)
class Inference:
    """The outputs of one inference request and the answer's other fields."""

    model_name: str
    model_version: str
    id: str
    names: list[str]
    outputs: list[np.ndarray]

    def fields(self) -> dict:
        """The answer's fields besides its outputs."""
        return {"model_name": self.model_name, "model_version": self.model_version, "id": self.id}


class DataPlane:
    """The models of one repository, served under ``settings``."""

    def __init__(self, repository: ModelRepository, settings: ServerSettings) -> None:
        self.repository, self.settings = repository, settings
        self._id_prefix, self._counter = uuid.uuid4().hex[:16], itertools.count(1)  # ids of requests that send none

    @property
    def models(self) -> dict[str, ServedModel]:
        """The models being served, by name (their highest version)."""
        return self.repository.models

    def metrics_label(self, name: str) -> str:
        """The model label a request's metrics carry: its model's name (served, or known and not
        ready), "unknown" for a name no model has (so that made-up names cannot grow the
        series), "" for no model."""
        known = name in self.repository.models or name in self.repository.unavailable
        return name if known else ("unknown" if name else "")

    def lookup(self, name: str, version: str | None = None) -> ServedModel:
        """The model a request names (its highest version unless it names one)."""
        try:
            served = self.repository.get(name)
        except KeyError:
            raise RequestError(404, f"unknown model {name!r}; this server has {sorted(self.models)}") from None
        except LookupError as reason:
            raise RequestError(503, f"model {name!r} is not ready: {reason}") from None
        if version is None:
            return served
        versions = self.repository.versions[name]
        if version not in versions:
            raise RequestError(404, f"model {name!r} has no version {version!r}; it has {list(versions)}")
        return versions[version]

    # ------------------------------------------------------------------ health and metadata
    def server_metadata(self) -> dict:
        self.repository.follow()
        return {"name": "toolkit", "version": __version__, "extensions": EXTENSIONS, "models": sorted(self.models)}

    def model_metadata(self, name: str, version: str | None = None) -> dict:
        return self.lookup(name, version).metadata()

    def model_ready(self, name: str, version: str | None = None) -> tuple[bool, dict]:
        """(ready, answer): a model found but not ready is an answer (with why), not an error."""
        try:
            self.lookup(name, version)
        except RequestError as error:
            if error.status != 503:
                raise
            return False, {"name": name, "ready": False, "error": str(error)}
        return True, {"name": name, "ready": True}

    # ------------------------------------------------------------------ the repository extension
    def repository_index(self) -> list[dict]:
        return self.repository.index()

    def _check_model_control(self, action: str) -> None:
        mode = self.settings.model_control_mode
        if mode != "explicit":
            raise RequestError(
                403,
                f"{action} requests are refused in model control mode {mode!r}; start the server with "
                "--model-control-mode explicit to load and unload models by request",
            )

    async def repository_load(self, name: str) -> dict:
        self._check_model_control("load")
        try:
            folder = self.repository.folder_of(name)
            loaded = await asyncio.to_thread(self.repository.load_folder, folder)
        except KeyError:
            raise RequestError(404, f"no export folder {name!r} under this server's directory") from None
        self.repository.publish(folder, loaded=True)  # the other workers read it again before they answer
        return {"name": name, "loaded": loaded}

    def repository_unload(self, name: str) -> dict:
        self._check_model_control("unload")
        self.repository.follow()
        try:
            folder = self.repository.folder_of(name)
            self.repository.unload(name)
        except KeyError:
            raise RequestError(404, f"unknown model {name!r}; this server has {sorted(self.models)}") from None
        self.repository.publish(folder, loaded=False)
        return {"name": name, "unloaded": True}

    # ------------------------------------------------------------------ inference
    async def infer(
        self, name: str, version: str | None, payload: dict, *, typed: bool = False, concurrent: bool = False
    ) -> Inference:
        """Run an inference request {"inputs": [...], "outputs": [...], "id": ...} on a model:
        batched with others when its model batches, on the event loop when small, else on a
        worker thread. ``typed``: every field has the protocol's type already (the request was a
        protobuf message), so only the values are checked. ``concurrent``: other calls of a
        transport that hands the loop one call per turn are in flight (Batcher.submit)."""
        served = self.lookup(name, version)
        feed, names = self._feed(served, payload, typed)
        return await self._run(served, feed, names, payload.get("id"), concurrent)

    async def infer_json(
        self, name: str, version: str | None, body: bytes | bytearray, binary_header: str | None = None
    ) -> tuple[Inference, dict]:
        """(inference, the request's JSON object: what the answer's encoding reads of it) of an
        HTTP request body, JSON or with Triton's binary tensors after its ``binary_header`` bytes of
        JSON: decoded by the model's fast path (:mod:`toolkit.serving._fast_path`) when it takes
        it, else parsed and each field checked in turn. A malformed body is named before an
        unknown model, as it always was."""
        try:
            served = self.lookup(name, version)
        except RequestError:
            parse_request(body, binary_header)
            raise
        fast = served.fast_path
        decoded = None if fast is None else fast.decode(body, self.settings.max_rows, binary_header)
        if decoded is None:
            payload = parse_request(body, binary_header)
            feed, names = self._feed(served, payload)
            return await self._run(served, feed, names, payload.get("id")), payload
        feed, fields = decoded
        return await self._run(served, feed, served.output_names, fields.get("id")), fields

    async def _run(
        self, served: ServedModel, feed: dict, names: list[str], request_id: str | None, concurrent: bool = False
    ) -> Inference:
        """Run a checked feed (batched when the model batches) and name the answer's ``request_id``
        (one of the server's when the request gave none)."""
        if served.batcher is not None:  # stacked with other checked requests into one run
            try:
                outputs = await served.batcher.submit(feed, concurrent=concurrent)
            except QueueFull as error:
                message = f"model {served.name!r} is busy: {error}; retry shortly"
                raise RequestError(503, message, retry_after=1) from None
            except Exception as error:  # onnxruntime refused it (a refused batch is rerun request by request)
                raise RequestError(400, f"the model could not run on these inputs: {error}") from None
            if names is not served.output_names:  # the outputs requested, of all the graph's
                outputs = [outputs[served.output_index[name]] for name in names]
        elif sum(value.size for value in feed.values()) <= INLINE_ELEMENTS:
            outputs = run_graph(served, feed, names)
        else:
            outputs = await asyncio.to_thread(run_graph, served, feed, names)
        if request_id is None:
            request_id = f"{self._id_prefix}-{next(self._counter)}"
        return Inference(served.name, served.version, request_id, names, outputs)

    def _feed(self, served: ServedModel, payload: dict, typed: bool = False) -> tuple[dict, list[str]]:
        """(feed for the graph, output names) from an inference request, each field checked in
        turn, naming the first problem."""
        problem = None if typed else request_problem(payload)
        if problem:
            raise RequestError(400, problem)
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
            raise RequestError(
                400, 'the body needs "inputs": a non-empty list of {"name", "shape", "datatype", "data"}'
            )
        specs = {spec["name"]: spec for spec in served.model.inputs}
        given = [i.get("name") for i in inputs]
        unknown = [n for n in given if n not in specs]
        missing = [n for n in specs if n not in given]
        if unknown or missing or len(set(given)) != len(given):
            raise RequestError(
                400, f"inputs {given} do not match the model's {list(specs)} (unknown {unknown}, missing {missing})"
            )
        try:
            feed = {i["name"]: decode_tensor(specs[i["name"]], i, self.settings.max_rows) for i in inputs}
        except ValueError as error:
            raise RequestError(400, str(error)) from None
        available = served.output_names
        requested = payload.get("outputs")
        if requested is None:
            return feed, available
        names = (
            [o.get("name") if isinstance(o, dict) else None for o in requested]
            if isinstance(requested, list)
            else [None]
        )
        wrong = [n for n in names if n not in available]
        if wrong:
            other = served.model.entry.get("other_outputs") or {}
            kinds = "".join(f"; {n!r} is a {other[n]}, which the protocol cannot carry" for n in wrong if n in other)
            raise RequestError(400, f"outputs {wrong} are not among the model's {available}{kinds}")
        return feed, names

    async def predict_records(self, name: str, payload: dict) -> dict:
        """``{"records": [{column: value}]}`` through a model of named columns: every output."""
        served = self.lookup(name)
        frame = self._records(served, payload)
        names = served.output_names

        def run() -> list[np.ndarray]:
            try:
                feed = served.model.prepare(frame)
            except (TypeError, ValueError) as error:
                raise RequestError(400, str(error)) from None
            return run_graph(served, feed, names)

        outputs = await asyncio.to_thread(run)
        return {
            "model_name": served.name,
            "outputs": {n: v.tolist() for n, v in zip(names, outputs)},
            "classes": served.model.entry.get("classes"),
        }

    def _records(self, served: ServedModel, payload: dict) -> pd.DataFrame:
        """The request's records as a DataFrame in the model's column order."""
        records = payload.get("records")
        if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
            raise RequestError(400, 'the body needs "records": a non-empty list of {column: value} objects')
        if len(records) > self.settings.max_rows:
            raise RequestError(
                400, f"{len(records)} records; this server takes at most {self.settings.max_rows} per request"
            )
        frame = pd.DataFrame.from_records(records)
        if not served.takes_records:
            raise RequestError(
                400,
                f"model {served.name!r} does not take records (its inputs are not one row of named columns); use "
                f"/v2/models/{served.name}/infer",
            )
        names = served.model.entry["feature_names"]
        problem = column_mismatch(names, [str(c) for c in frame.columns])
        if problem:
            raise RequestError(400, f"records do not match the model's columns: {problem}")
        for column in names:  # a column null in every record reads as text: it is a number column left empty
            if served.accepts_missing(column) and frame[column].isna().all():
                frame[column] = frame[column].astype(np.float64)
        refused = [c for c in names if not served.accepts_missing(c) and frame[c].isna().any()]
        if refused:
            raise RequestError(400, "records hold null or missing values: " + ", ".join(refused))
        return frame[names]


def run_graph(served: ServedModel, feed: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """Run the session on a checked feed; onnxruntime's refusals are 400s with its reason."""
    try:
        return served.model.session.run(names, feed)
    except Exception as error:  # onnxruntime's InvalidArgument, Fail, ... carry the reason
        raise RequestError(400, f"the model could not run on these inputs: {error}") from None
