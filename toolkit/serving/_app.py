"""The Open Inference Protocol (V2) over HTTP: routes onto the :class:`~toolkit.serving._dataplane.DataPlane`.

The protocol KServe, Triton and MLServer share: health, server and model metadata,
readiness, and ``POST /v2/models/{name}/infer`` with named, typed, shaped tensors. Beside
it, ``POST /v2/models/{name}/predict`` takes DataFrame-shaped ``{"records": [...]}``, the
repository extension loads and unloads models, and ``GET /metrics`` gives Prometheus
counters and latency histograms per model.

Inference, the hot path, is answered straight on ASGI (no Starlette routing, Request or Response
objects: ~40 us less a request); every other request goes through Starlette's routes. Both
answer errors with :func:`error_answer` (``{"error": "..."}`` with the protocol's status), count
requests with :meth:`V2App.record` and read bodies with :func:`read_body`.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from toolkit.serving._codec import BINARY_HEADER, binary_outputs, infer_answer, json_bytes
from toolkit.serving._dataplane import DataPlane, Inference, RequestError, parse_request
from toolkit.serving._metrics import Metrics
from toolkit.serving._repository import ModelRepository, ServedModel
from toolkit.serving._settings import ServerSettings
from toolkit.serving._shared_state import STATE_VARIABLE, SharedState

JSON = "application/json"
JSON_BYTES = JSON.encode()
BINARY_HEADER_BYTES = BINARY_HEADER.encode()  # ASGI headers are bytes, lower-case


class Answer(NamedTuple):
    """An HTTP answer: status, body, media type and extra headers."""

    status: int
    content: bytes
    media_type: str = JSON
    headers: dict | None = None


def json_answer(content, status: int = 200) -> Answer:
    return Answer(status, json_bytes(content))


def error_answer(error: RequestError) -> Answer:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
    return Answer(error.status, json_bytes({"error": str(error)}), JSON, headers)


class ClientGone(Exception):
    """The client hung up before its request was read: there is no one to answer."""


async def read_body(receive, declared: str | None, limit: int) -> bytearray:
    """A request's body from ASGI ``receive`` messages; 413 above ``limit`` (the declared length
    is checked before reading); :class:`ClientGone` when the client went away."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body of {declared} bytes is over this server's limit of {limit}")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body += message.get("body", b"")
        if len(body) > limit:
            raise RequestError(413, f"request body is over this server's limit of {limit} bytes")
        if not message.get("more_body", False):
            return body


class V2App:
    """The server's ASGI app: POST /v2/models/{name}[/versions/{version}]/infer on raw ASGI,
    every other request through Starlette's routes (``state.models``: the served models)."""

    def __init__(self, dataplane: DataPlane, metrics: Metrics, settings: ServerSettings) -> None:
        self.dataplane, self.metrics, self.settings = dataplane, metrics, settings
        self.routes = Starlette(
            routes=self._routes(),
            exception_handlers={404: _not_found, 405: _wrong_method},
            lifespan=self._lifespan,
        )
        self.state = self.routes.state
        self.state.models = dataplane.models

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            parts = scope["path"].split("/")  # "", "v2", "models", name, ["versions", version,] "infer"
            if parts[-1] == "infer" and parts[1:3] == ["v2", "models"] and parts[3]:
                if len(parts) == 5:
                    await self._infer(parts[3], None, scope, receive, send)
                    return
                if len(parts) == 7 and parts[4] == "versions" and parts[5]:
                    await self._infer(parts[3], parts[5], scope, receive, send)
                    return
        await self.routes(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        """Start the gRPC listener (``settings.grpc_port``) with the server; on shutdown, let its
        calls in flight finish (up to ``settings.drain_seconds``) as uvicorn lets HTTP's, and take
        this process's live gauges out of the workers' metrics."""
        settings, server = self.settings, None
        self.metrics.started()
        if settings.grpc_port is not None:
            from toolkit.serving._grpc import start_server

            server = await start_server(self, settings.grpc_host, settings.grpc_port, settings.max_body_bytes)
        try:
            yield
        finally:
            if server is not None:
                await server.stop(settings.drain_seconds)
            self.metrics.close()

    def record(self, endpoint: str, name: str, status: int, started: float) -> None:
        """Count an answered request in the metrics, under ``endpoint`` and its model's label."""
        self.metrics.observe(self.dataplane.metrics_label(name), endpoint, status, time.perf_counter() - started)

    # ------------------------------------------------------------------ inference (raw ASGI)
    async def _infer(self, name: str, version: str | None, scope, receive, send) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        try:
            declared = headers.get(b"content-length")
            body = await read_body(receive, declared.decode() if declared else None, self.settings.max_body_bytes)
            binary = headers.get(BINARY_HEADER_BYTES)
            inference, payload = await self.dataplane.infer_json(
                name, version, body, None if binary is None else binary.decode()
            )
            answer = self._encode(inference, payload)
        except RequestError as error:
            answer = error_answer(error)
        except ClientGone:
            return  # nothing to answer
        self.record("infer", name, answer.status, started)
        raw_headers = [
            (b"content-type", JSON_BYTES if answer.media_type == JSON else answer.media_type.encode()),
            (b"content-length", str(len(answer.content)).encode()),
        ]
        if answer.headers:
            raw_headers += [(key.lower().encode(), value.encode()) for key, value in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": answer.content})

    @staticmethod
    def _encode(inference: Inference, payload: dict) -> Answer:
        """An inference's answer: JSON, or binary tensors where the request asked for them."""
        content, media_type, headers = infer_answer(
            inference.fields(), inference.names, inference.outputs, binary_outputs(payload, inference.names)
        )
        return Answer(200, content, media_type, headers)

    # ------------------------------------------------------------------ the other routes (Starlette)
    def _routes(self) -> list[Route]:
        plane = self.dataplane

        def route(path: str, endpoint: str, handler, methods=("GET",)) -> Route:
            """A route answered by ``handler(request) -> Answer``, its errors and metrics as inference's."""

            async def respond(request: Request) -> Response:
                started = time.perf_counter()
                name = request.path_params.get("name", "")
                try:
                    answer = await handler(request)
                except RequestError as error:
                    answer = error_answer(error)
                except ClientGone:
                    return Response(b"", 499)  # nobody reads it
                self.record(endpoint, name, answer.status, started)
                return Response(answer.content, answer.status, answer.headers, answer.media_type)

            return Route(path, respond, methods=list(methods))

        def params(request: Request) -> tuple[str, str | None]:
            return request.path_params["name"], request.path_params.get("version")

        async def payload(request: Request) -> dict:
            body = await read_body(request.receive, request.headers.get("content-length"), self.settings.max_body_bytes)
            return parse_request(body, request.headers.get(BINARY_HEADER))

        async def live(request):
            return json_answer({"live": True})

        async def ready(request):
            return json_answer({"ready": True})

        async def server(request):
            return json_answer(plane.server_metadata())

        async def metadata(request):
            return json_answer(plane.model_metadata(*params(request)))

        async def model_ready(request):
            is_ready, content = plane.model_ready(*params(request))
            return json_answer(content, 200 if is_ready else 503)

        async def infer(request):  # reached by other methods than POST only: Starlette answers 405
            body = await payload(request)
            return self._encode(await plane.infer(*params(request), body), body)

        async def predict(request):
            name = request.path_params["name"]
            plane.lookup(name)  # an unknown model is named before the body is read
            return json_answer(await plane.predict_records(name, await payload(request)))

        async def index(request):
            return json_answer(plane.repository_index())

        async def load(request):
            return json_answer(await plane.repository_load(request.path_params["name"]))

        async def unload(request):
            return json_answer(plane.repository_unload(request.path_params["name"]))

        async def prometheus(request: Request) -> Response:
            content, media_type = self.metrics.exposition()
            return Response(content, media_type=media_type)

        return [
            route("/v2/models/{name}/infer", "infer", infer, methods=["POST"]),
            route("/v2/health/live", "live", live),
            route("/v2/health/ready", "ready", ready),
            route("/v2", "server", server),
            route("/v2/models/{name}", "metadata", metadata),
            route("/v2/models/{name}/ready", "ready", model_ready),
            route("/v2/models/{name}/versions/{version}", "metadata", metadata),
            route("/v2/models/{name}/versions/{version}/ready", "ready", model_ready),
            route("/v2/models/{name}/versions/{version}/infer", "infer", infer, methods=["POST"]),
            route("/v2/models/{name}/predict", "predict", predict, methods=["POST"]),
            route("/v2/repository/index", "repository", index, methods=["POST"]),
            route("/v2/repository/models/{name}/load", "repository", load, methods=["POST"]),
            route("/v2/repository/models/{name}/unload", "repository", unload, methods=["POST"]),
            Route("/metrics", prometheus),
        ]


async def _not_found(request: Request, exc) -> Response:
    return Response(json_bytes({"error": f"no route {request.method} {request.url.path}"}), 404, media_type=JSON)


async def _wrong_method(request: Request, exc) -> Response:
    allowed = (exc.headers or {}).get("Allow", "")
    message = f"{request.method} is not allowed on {request.url.path}; use {allowed.replace(', ', ' or ')}"
    return Response(json_bytes({"error": message}), 405, {"Allow": allowed}, JSON)


def create_app(directory: str | Path, settings: ServerSettings | None = None) -> V2App:
    """The ASGI app serving every export folder under ``directory``."""
    settings = settings or ServerSettings()
    metrics = Metrics()

    def prepare(served: ServedModel) -> None:
        served.start_batching(settings.max_batch_size, settings.max_queue_delay_us, settings.max_queue_size)
        if served.batcher is not None:
            metrics.watch_batcher(served.name, served.batcher)

    shared = os.environ.get(STATE_VARIABLE)  # set by toolkit serve for its workers
    repository = ModelRepository(
        directory,
        intra_op_num_threads=settings.intra_op_num_threads,
        prepare=prepare,
        poll=settings.model_control_mode == "poll",
        shared=None if shared is None else SharedState(shared),
        model_name=settings.model_name,
    )
    return V2App(DataPlane(repository, settings), metrics, settings)
