"""``toolkit serve``: exported models over HTTP, speaking the Open Inference Protocol (V2).

The protocol KServe, Triton and MLServer share: health, server and model metadata,
readiness, and ``POST /v2/models/{name}/infer`` with named, typed, shaped tensors. Beside
it, ``POST /v2/models/{name}/predict`` takes DataFrame-shaped ``{"records": [...]}`` and
``GET /metrics`` gives Prometheus counters and latency histograms per model.

Every bad request gets a 4xx with ``{"error": "..."}`` naming the problem. Concurrent
requests for a model are batched (``_batching.py``) unless the graph's answers would change;
small runs go on the event loop itself, larger ones to a worker thread, on onnxruntime
sessions shared by all requests (``run`` is thread-safe).
"""

from __future__ import annotations

import itertools
import re
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from toolkit._version import __version__
from toolkit.serving._batching import INLINE_ELEMENTS, QueueFull
from toolkit.serving._model import column_mismatch
from toolkit.serving._repository import (
    ModelRepository,
    ServedModel,
    decode_tensor,
    encode_binary_tensor,
    encode_tensor,
)


@dataclass(frozen=True)
class ServerSettings:
    """Limits and threads of a server.

    Parameters
    ----------
    max_rows : int
        Rows (first dimension) a request may send.
    max_body_bytes : int
        Request bodies above this get 413 before they are parsed.
    intra_op_num_threads : int, optional
        onnxruntime threads per session (None: onnxruntime's default).
    max_batch_size : int
        Adaptive batching (``_batching.py``): concurrent requests for a model stacked into one
        run of at most this many rows (default 32); 0 or 1: off. A model.json's ``serving`` entry
        (``{"max_batch_size": .., "max_queue_delay_us": ..}``) overrides it for its model;
        graphs without a free batch axis on every input and output are never batched.
    max_queue_delay_us : int
        How long a batch's first request waits for others (microseconds).
    max_queue_size : int
        Requests a model's batching queue holds; the next gets 503 with Retry-After.
    """

    max_rows: int = 10_000
    max_body_bytes: int = 16 * 2**20
    intra_op_num_threads: int | None = None
    max_batch_size: int = 32
    max_queue_delay_us: int = 0
    max_queue_size: int = 1024


class RequestError(Exception):
    """A client's mistake (or a busy server): answered with ``status`` and ``{"error": message}``
    (and a Retry-After header when ``retry_after`` seconds are given)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Metrics:
    """Prometheus series of one app (its own registry, so apps in one process do not clash)."""

    def __init__(self) -> None:
        self._series: dict[tuple, tuple] = {}
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "toolkit_requests",
            "Requests by model, endpoint and status code",
            ["model", "endpoint", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "toolkit_request_errors",
            "Requests answered with an error, by model and endpoint",
            ["model", "endpoint"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "toolkit_request_seconds",
            "Request latency by model and endpoint",
            ["model", "endpoint"],
            registry=self.registry,
        )

        self.batches = Counter("toolkit_batches", "Adaptive batches run, by model", ["model"], registry=self.registry)
        self.queued = Gauge(
            "toolkit_queued_requests", "Requests waiting in a model's batching queue", ["model"], registry=self.registry
        )
        self.batch_requests = Histogram(
            "toolkit_batch_requests",
            "Requests per adaptive batch, by model",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )

    def record_batch(self, model: str, n_requests: int) -> None:
        self.batches.labels(model).inc()
        self.batch_requests.labels(model).observe(n_requests)

    def observe(self, model: str, endpoint: str, code: int, seconds: float) -> None:
        series = self._series.get((model, endpoint, code))
        if series is None:  # labels() validates and looks up on every call: done once per series
            series = self._series[(model, endpoint, code)] = (
                self.requests.labels(model, endpoint, str(code)),
                self.latency.labels(model, endpoint),
                self.errors.labels(model, endpoint) if code >= 400 else None,
            )
        series[0].inc()
        series[1].observe(seconds)
        if series[2] is not None:
            series[2].inc()


BINARY_HEADER = "inference-header-content-length"  # Triton's binary tensor extension
NON_JSON_NUMBER = re.compile(rb"\bNaN\b|\bInfinity\b")  # what Python's json.dumps writes for them


async def read_json(request: Request, limit: int) -> dict:
    """The body of a Starlette request as a JSON object (see :func:`parse_body`)."""
    check_declared_length(request.headers.get("content-length"), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        check_length(len(body), limit)
    return parse_body(body, request.headers.get(BINARY_HEADER))


def check_declared_length(declared: str | None, limit: int) -> None:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body of {declared} bytes is over this server's limit of {limit}")


def check_length(size: int, limit: int) -> None:
    if size > limit:
        raise RequestError(413, f"request body is over this server's limit of {limit} bytes")


def parse_body(body: bytearray, header: str | None) -> dict:
    """The body as a JSON object, 400 if malformed (413 above the limit is the reader's).

    With Triton's binary tensor extension (an ``Inference-Header-Content-Length`` header) the
    JSON is the body's first that many bytes and the inputs whose parameters give a
    ``binary_data_size`` take their bytes, in order, from the rest: they come back as the
    input's ``data`` (bytes) for :func:`decode_tensor`.
    """
    if header is not None and (not header.isdigit() or int(header) > len(body)):
        raise RequestError(400, f"{BINARY_HEADER} is {header!r}; the body has {len(body)} bytes")
    json_size = len(body) if header is None else int(header)
    try:
        payload = orjson.loads(memoryview(body)[:json_size])
    except orjson.JSONDecodeError as error:
        hint = " (NaN and Infinity are not JSON numbers)" if NON_JSON_NUMBER.search(body, 0, json_size) else ""
        raise RequestError(400, f"malformed JSON{hint}: {error}") from None
    if not isinstance(payload, dict):
        raise RequestError(400, f"the body must be a JSON object, got {type(payload).__name__}")
    if header is not None:
        attach_binary_inputs(payload, memoryview(body)[json_size:])
    return payload


def attach_binary_inputs(payload: dict, binary: memoryview) -> None:
    """Give each input that declares ``parameters.binary_data_size`` its bytes, in input order."""
    offset = 0
    for tensor in payload.get("inputs") or []:
        size = (tensor.get("parameters") or {}).get("binary_data_size") if isinstance(tensor, dict) else None
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise RequestError(
                400, f"input {tensor.get('name')!r} declares {size!r} binary bytes; {len(binary) - offset} are left"
            )
        tensor["data"] = bytes(binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise RequestError(400, f"{len(binary) - offset} binary bytes after the inputs' declared sizes")


def binary_outputs(payload: dict, names: list[str]) -> set[str]:
    """The outputs to send as binary: all with ``parameters.binary_data_output``, else those
    requested with ``parameters.binary_data``."""
    if (payload.get("parameters") or {}).get("binary_data_output"):
        return set(names)
    requested = payload.get("outputs") or []
    return {o["name"] for o in requested if isinstance(o, dict) and (o.get("parameters") or {}).get("binary_data")}


def json_bytes(content) -> bytes:
    """Compact UTF-8 JSON, numpy arrays included (written by orjson, ~15x faster than ``json``
    on an inference answer, which weighs on every request)."""
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def infer_response(body: dict, names: list[str], outputs: list[np.ndarray], binary: set[str]) -> tuple:
    """(content, media type, extra headers) of the answer: JSON, or JSON + binary blobs
    (Triton's extension) when outputs are binary."""
    if not binary:
        body["outputs"] = [encode_tensor(n, v) for n, v in zip(names, outputs)]
        return json_bytes(body), "application/json", {}
    entries, blobs = [], []
    for name, value in zip(names, outputs):
        if name in binary:
            entry, raw = encode_binary_tensor(name, value)
            blobs.append(raw)
        else:
            entry = encode_tensor(name, value)
        entries.append(entry)
    header = json_bytes({**body, "outputs": entries})
    return header + b"".join(blobs), "application/octet-stream", {"Inference-Header-Content-Length": str(len(header))}


def infer_feed(served: ServedModel, payload: dict, settings: ServerSettings) -> tuple[dict, list[str]]:
    """(feed for the graph, output names) from an OIP inference request."""
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, dict) for i in inputs):
        raise RequestError(400, 'the body needs "inputs": a non-empty list of {"name", "shape", "datatype", "data"}')
    specs = {spec["name"]: spec for spec in served.model.inputs}
    given = [i.get("name") for i in inputs]
    unknown = [n for n in given if n not in specs]
    missing = [n for n in specs if n not in given]
    if unknown or missing or len(set(given)) != len(given):
        raise RequestError(
            400, f"inputs {given} do not match the model's {list(specs)} (unknown {unknown}, missing {missing})"
        )
    try:
        feed = {i["name"]: decode_tensor(specs[i["name"]], i, settings.max_rows) for i in inputs}
    except ValueError as error:
        raise RequestError(400, str(error)) from None
    available = served.output_names
    requested = payload.get("outputs")
    if requested is None:
        return feed, available
    names = (
        [o.get("name") if isinstance(o, dict) else None for o in requested] if isinstance(requested, list) else [None]
    )
    wrong = [n for n in names if n not in available]
    if wrong:
        raise RequestError(400, f"outputs {wrong} are not among the model's {available}")
    return feed, names


def prepared_feed(served: ServedModel, X: pd.DataFrame) -> dict[str, np.ndarray]:
    """The graph's feed from records, checked by the model (its refusals are 400s)."""
    try:
        return served.model.prepare(X)
    except (TypeError, ValueError) as error:
        raise RequestError(400, str(error)) from None


def run_graph(served: ServedModel, feed: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """Run the session on a checked feed; onnxruntime's refusals are 400s with its reason."""
    try:
        return served.model.session.run(names, feed)
    except Exception as error:  # onnxruntime's InvalidArgument, Fail, ... carry the reason
        raise RequestError(400, f"the model could not run on these inputs: {error}") from None


async def run_batched(served: ServedModel, feed: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    """The request's outputs from its model's batcher: run stacked with other checked requests."""
    try:
        outputs = await served.batcher.submit(feed)
    except QueueFull as error:
        raise RequestError(503, f"model {served.name!r} is busy: {error}; retry shortly", retry_after=1) from None
    except Exception as error:  # onnxruntime's refusal of this request (a refused batch is rerun request by request)
        raise RequestError(400, f"the model could not run on these inputs: {error}") from None
    return [outputs[served.output_index[name]] for name in names]


def records_frame(served: ServedModel, payload: dict, settings: ServerSettings) -> pd.DataFrame:
    """``{"records": [{column: value}]}`` as a DataFrame in the model's column order."""
    records = payload.get("records")
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise RequestError(400, 'the body needs "records": a non-empty list of {column: value} objects')
    if len(records) > settings.max_rows:
        raise RequestError(400, f"{len(records)} records; this server takes at most {settings.max_rows} per request")
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
    if frame.isna().to_numpy().any():
        raise RequestError(
            400, "records hold null or missing values: " + ", ".join(c for c in names if frame[c].isna().any())
        )
    return frame[names]


def create_app(directory: str | Path, settings: ServerSettings | None = None) -> FastInfer:
    """The ASGI app serving every export folder under ``directory``."""
    settings = settings or ServerSettings()
    metrics = Metrics()

    def prepare(served: ServedModel) -> None:
        served.start_batching(settings.max_batch_size, settings.max_queue_delay_us, settings.max_queue_size)
        if served.batcher is not None:
            served.batcher.on_batch = lambda n, name=served.name: metrics.record_batch(name, n)
            metrics.queued.labels(served.name).set_function(lambda batcher=served.batcher: len(batcher.pending))

    repository = ModelRepository(directory, intra_op_num_threads=settings.intra_op_num_threads, prepare=prepare)
    id_prefix, counter = uuid.uuid4().hex[:16], itertools.count(1)  # ids of requests that send none
    models = repository.models

    def lookup(name: str, version: str | None = None) -> ServedModel:
        """The model a request names (its highest version unless it names one)."""
        try:
            served = repository.get(name)
        except KeyError:
            raise RequestError(404, f"unknown model {name!r}; this server has {sorted(models)}") from None
        except LookupError as reason:
            raise RequestError(503, f"model {name!r} is not ready: {reason}") from None
        if version is None:
            return served
        versions = repository.versions[name]
        if version not in versions:
            raise RequestError(404, f"model {name!r} has no version {version!r}; it has {list(versions)}")
        return versions[version]

    def endpoint(kind: str, handler):
        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            name = request.path_params.get("name", "")
            try:
                response = await handler(request)
            except RequestError as error:
                headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
                response = JSONResponse({"error": str(error)}, status_code=error.status, headers=headers)
            label = name if name in models else ("" if not name else "unknown")
            metrics.observe(label, kind, response.status_code, time.perf_counter() - started)
            return response

        return wrapped

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": True})

    async def server_metadata(request: Request) -> Response:
        return JSONResponse(
            {
                "name": "toolkit",
                "version": __version__,
                "extensions": ["binary_tensor_data", "model_repository", "predict_records", "metrics"],
                "models": sorted(models),
            }
        )

    async def model_metadata(request: Request) -> Response:
        return JSONResponse(lookup(request.path_params["name"], request.path_params.get("version")).metadata())

    async def model_ready(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            lookup(name, request.path_params.get("version"))
        except RequestError as error:
            if error.status != 503:
                raise
            return JSONResponse({"name": name, "ready": False, "error": str(error)}, status_code=503)
        return JSONResponse({"name": name, "ready": True})

    async def repository_index(request: Request) -> Response:
        return JSONResponse(repository.index())

    async def repository_load(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            loaded = await run_in_threadpool(repository.load_folder, repository._folder(name))
        except KeyError:
            raise RequestError(404, f"no export folder {name!r} under this server's directory") from None
        return JSONResponse({"name": name, "loaded": loaded})

    async def repository_unload(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            repository.unload(name)
        except KeyError:
            raise RequestError(404, f"unknown model {name!r}; this server has {sorted(models)}") from None
        return JSONResponse({"name": name, "unloaded": True})

    async def answer_infer(name: str, version: str | None, payload: dict) -> tuple:
        """(content, media type, headers) of the answer to an inference request."""
        served = lookup(name, version)
        feed, names = infer_feed(served, payload, settings)
        if served.batcher is not None:
            outputs = await run_batched(served, feed, names)
        elif sum(value.size for value in feed.values()) <= INLINE_ELEMENTS:
            outputs = run_graph(served, feed, names)
        else:
            outputs = await run_in_threadpool(run_graph, served, feed, names)
        body = {
            "model_name": served.name,
            "model_version": served.version,
            "id": payload["id"] if "id" in payload else f"{id_prefix}-{next(counter)}",
        }
        return infer_response(body, names, outputs, binary_outputs(payload, names))

    async def infer(request: Request) -> Response:
        payload = await read_json(request, settings.max_body_bytes)
        content, media_type, headers = await answer_infer(
            request.path_params["name"], request.path_params.get("version"), payload
        )
        return Response(content, media_type=media_type, headers=headers)

    async def fast_infer(name: str, version: str | None, scope, receive, send) -> None:
        """POST /v2/models/{name}/infer straight on ASGI, without Starlette's routing, Request and
        Response objects (~40 us a request): the same answers, errors and metrics."""
        started = time.perf_counter()
        headers = dict(scope["headers"])
        extra = {}
        try:
            declared = headers.get(b"content-length")
            check_declared_length(declared.decode() if declared else None, settings.max_body_bytes)
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client went away: nothing to answer
                body += message.get("body", b"")
                check_length(len(body), settings.max_body_bytes)
                if not message.get("more_body", False):
                    break
            binary = headers.get(BINARY_HEADER.encode())
            payload = parse_body(body, binary.decode() if binary is not None else None)
            content, media_type, extra = await answer_infer(name, version, payload)
            status = 200
        except RequestError as error:
            status, content, media_type = error.status, json_bytes({"error": str(error)}), "application/json"
            extra = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        metrics.observe(name if name in models else "unknown", "infer", status, time.perf_counter() - started)
        raw_headers = [(b"content-type", media_type.encode()), (b"content-length", str(len(content)).encode())]
        raw_headers += [(key.lower().encode(), value.encode()) for key, value in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": content})

    async def predict(request: Request) -> Response:
        served = lookup(request.path_params["name"])
        payload = await read_json(request, settings.max_body_bytes)
        frame = records_frame(served, payload, settings)
        names = served.output_names
        outputs = await run_in_threadpool(lambda: run_graph(served, prepared_feed(served, frame), names))
        return JSONResponse(
            {
                "model_name": served.name,
                "outputs": {n: v.tolist() for n, v in zip(names, outputs)},
                "classes": served.model.entry.get("classes"),
            }
        )

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/v2/models/{name}/infer", endpoint("infer", infer), methods=["POST"]),  # first: the hot path
        Route("/v2/health/live", endpoint("live", live)),
        Route("/v2/health/ready", endpoint("ready", ready)),
        Route("/v2", endpoint("server", server_metadata)),
        Route("/v2/models/{name}", endpoint("metadata", model_metadata)),
        Route("/v2/models/{name}/ready", endpoint("ready", model_ready)),
        Route("/v2/models/{name}/versions/{version}", endpoint("metadata", model_metadata)),
        Route("/v2/models/{name}/versions/{version}/ready", endpoint("ready", model_ready)),
        Route("/v2/models/{name}/versions/{version}/infer", endpoint("infer", infer), methods=["POST"]),
        Route("/v2/models/{name}/predict", endpoint("predict", predict), methods=["POST"]),
        Route("/v2/repository/index", endpoint("repository", repository_index), methods=["POST"]),
        Route("/v2/repository/models/{name}/load", endpoint("repository", repository_load), methods=["POST"]),
        Route("/v2/repository/models/{name}/unload", endpoint("repository", repository_unload), methods=["POST"]),
        Route("/metrics", prometheus),
    ]

    async def not_found(request: Request, exc) -> Response:
        return JSONResponse({"error": f"no route {request.method} {request.url.path}"}, status_code=404)

    async def wrong_method(request: Request, exc) -> Response:
        allowed = (exc.headers or {}).get("Allow", "")
        return JSONResponse(
            {"error": f"{request.method} is not allowed on {request.url.path}; use {allowed.replace(', ', ' or ')}"},
            status_code=405,
            headers={"Allow": allowed},
        )

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: wrong_method})
    app.state.models = models
    return FastInfer(app, fast_infer)


class FastInfer:
    """The server's ASGI app: POST /v2/models/{name}[/versions/{version}]/infer goes to ``infer``
    (raw ASGI), every other request to the Starlette ``app`` (whose ``state`` this exposes)."""

    def __init__(self, app: Starlette, infer) -> None:
        self.app, self.infer, self.state = app, infer, app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            parts = scope["path"].split("/")  # "", "v2", "models", name, ["versions", version,] "infer"
            if parts[-1] == "infer" and parts[1:3] == ["v2", "models"] and parts[3]:
                if len(parts) == 5:
                    await self.infer(parts[3], None, scope, receive, send)
                    return
                if len(parts) == 7 and parts[4] == "versions" and parts[5]:
                    await self.infer(parts[3], parts[5], scope, receive, send)
                    return
        await self.app(scope, receive, send)


def app_from_environment() -> FastInfer:
    """The app ``toolkit serve`` hands uvicorn's workers (settings travel in TOOLKIT_SERVE_* variables)."""
    import os

    threads = os.environ.get("TOOLKIT_SERVE_THREADS")
    settings = ServerSettings(
        max_rows=int(os.environ.get("TOOLKIT_SERVE_MAX_ROWS", ServerSettings.max_rows)),
        max_body_bytes=int(os.environ.get("TOOLKIT_SERVE_MAX_BODY_BYTES", ServerSettings.max_body_bytes)),
        intra_op_num_threads=int(threads) if threads else None,
        max_batch_size=int(os.environ.get("TOOLKIT_SERVE_MAX_BATCH_SIZE", ServerSettings.max_batch_size)),
        max_queue_delay_us=int(os.environ.get("TOOLKIT_SERVE_MAX_QUEUE_DELAY_US", 0)),
        max_queue_size=int(os.environ.get("TOOLKIT_SERVE_MAX_QUEUE_SIZE", ServerSettings.max_queue_size)),
    )
    return create_app(os.environ["TOOLKIT_SERVE_DIR"], settings)


def startup_lines(models: dict[str, ServedModel], url: str) -> list[str]:
    """What ``toolkit serve`` prints before it listens: the address and each model's signature."""
    lines = [
        f"toolkit serve: {len(models)} model(s) at {url} (Open Inference Protocol V2: POST "
        f"{url}/v2/models/<name>/infer; records: POST .../predict; metrics: GET {url}/metrics)"
    ]
    return lines + ["  " + served.signature() for served in models.values()]


def serve(
    directory: str | Path = "exports",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    settings: ServerSettings | None = None,
    log_level: str = "info",
    announce: bool = True,
) -> None:
    """Serve every export folder under ``directory`` until interrupted.

    Parameters
    ----------
    directory : str or Path
        Folder of export folders.
    host, port
        Where uvicorn listens.
    workers : int, default=1
        Server processes, each with its own sessions (settings reach them through
        TOOLKIT_SERVE_* variables).
    settings : ServerSettings, optional
    log_level : str, default="info"
        uvicorn's log level; at "info" each request is logged as an access line.
    announce : bool, default=True
        Print the address and the served models' signatures before listening.
    """
    import os

    import uvicorn

    settings = settings or ServerSettings()
    app = create_app(directory, settings)
    if announce:
        print("\n".join(startup_lines(app.state.models, f"http://{host}:{port}")), flush=True)
    options = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": log_level in ("info", "debug", "trace"),
    }
    # uvicorn drains in-flight requests on SIGTERM / SIGINT, then raises the signal again so that
    # the process dies of it; a handler that ignores that second one makes a drained server exit 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if workers == 1:
        uvicorn.run(app, **options)
        return
    del app  # each worker loads its own sessions
    os.environ["TOOLKIT_SERVE_DIR"] = str(Path(directory).resolve())
    os.environ["TOOLKIT_SERVE_MAX_ROWS"] = str(settings.max_rows)
    os.environ["TOOLKIT_SERVE_MAX_BODY_BYTES"] = str(settings.max_body_bytes)
    if settings.intra_op_num_threads:
        os.environ["TOOLKIT_SERVE_THREADS"] = str(settings.intra_op_num_threads)
    os.environ["TOOLKIT_SERVE_MAX_BATCH_SIZE"] = str(settings.max_batch_size)
    os.environ["TOOLKIT_SERVE_MAX_QUEUE_DELAY_US"] = str(settings.max_queue_delay_us)
    os.environ["TOOLKIT_SERVE_MAX_QUEUE_SIZE"] = str(settings.max_queue_size)
    uvicorn.run("toolkit.serving._server:app_from_environment", factory=True, workers=workers, **options)
