"""The Open Inference Protocol (V2) over gRPC: ``inference.GRPCInferenceService`` onto the
:class:`~toolkit.serving._dataplane.DataPlane` that HTTP uses (the same models, batchers and
metrics, in the same process and event loop).

A request message becomes the protocol's JSON object (``raw_input_contents`` as binary tensor
data, typed ``contents`` as lists), so that every check, cast and message of HTTP applies
as is; an answer carries ``raw_output_contents`` when the request sent raw inputs (as
tritonclient.grpc does) or an output is FP16, typed contents otherwise, as KServe's servers
answer. Errors are gRPC status codes with HTTP's messages (:data:`STATUS_CODES`).
"""

from __future__ import annotations

import logging
import time

import grpc
import numpy as np

from toolkit.serving._codec import encode_binary_tensor
from toolkit.serving._dataplane import RequestError
from toolkit.serving._grpc_v2 import protocol
from toolkit.serving._tensor_types import of_array

LOG = logging.getLogger("toolkit.serving")

# The field of InferTensorContents that carries each datatype's values (FP16: raw contents only).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    **dict.fromkeys(("INT8", "INT16", "INT32"), "int_contents"),
    "INT64": "int64_contents",
    **dict.fromkeys(("UINT8", "UINT16", "UINT32"), "uint_contents"),
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

# HTTP's status of a RequestError -> the gRPC code that says the same.
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    403: grpc.StatusCode.FAILED_PRECONDITION,  # load / unload outside explicit model control
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def status_code(error: RequestError) -> grpc.StatusCode:
    """The gRPC code of a RequestError: a full batching queue (503 with Retry-After) is
    RESOURCE_EXHAUSTED, a model not ready UNAVAILABLE."""
    if error.status == 503 and error.retry_after:
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return STATUS_CODES.get(error.status, grpc.StatusCode.INTERNAL)


def _parameters(entries) -> dict:
    """A protobuf map of InferParameter as the JSON object's ``parameters``."""
    return {key: getattr(value, value.WhichOneof("parameter_choice") or "bool_param") for key, value in entries.items()}


def _input_data(tensor, raw: bytes | None):
    """An input's ``data`` as the JSON path takes it: raw bytes (Triton's binary layout), or the
    list of its datatype's typed contents (BYTES decoded as UTF-8 strings)."""
    if raw is not None:
        if tensor.HasField("contents"):
            raise RequestError(400, f"input {tensor.name!r} has contents while raw_input_contents is given")
        return raw
    field = CONTENTS_FIELD.get(tensor.datatype)
    if field is None:
        known = sorted(CONTENTS_FIELD)
        raise RequestError(
            400,
            f"input {tensor.name!r} has datatype {tensor.datatype!r}, which has no typed contents; send it in "
            f"raw_input_contents (typed contents carry {known})",
        )
    values = getattr(tensor.contents, field)
    if not values:
        sent = [f.name for f, _ in tensor.contents.ListFields()]
        if sent:
            where = f"its values belong in {field}, not {sent}"
            raise RequestError(400, f"input {tensor.name!r} is {tensor.datatype}: {where}")
    if field == "bytes_contents":
        return [value.decode("utf-8", errors="replace") for value in values]
    return list(values)


def request_payload(request) -> dict:
    """A ModelInferRequest as the protocol's JSON object (what DataPlane.infer takes)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise RequestError(
            400, f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; give one per input"
        )
    inputs = []
    for index, tensor in enumerate(request.inputs):
        entry = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
            "data": _input_data(tensor, raw[index] if raw else None),
        }
        if tensor.parameters:
            entry["parameters"] = _parameters(tensor.parameters)
        inputs.append(entry)
    payload = {"inputs": inputs}
    if request.outputs:
        payload["outputs"] = [{"name": o.name, "parameters": _parameters(o.parameters)} for o in request.outputs]
    if request.id:
        payload["id"] = request.id
    return payload


def fill_response(response, names: list[str], outputs: list[np.ndarray], raw: bool) -> None:
    """Put the outputs in a ModelInferResponse: raw contents, or each in its datatype's field."""
    kinds = [of_array(value) for value in outputs]
    raw = raw or any(kind.datatype not in CONTENTS_FIELD for kind in kinds)
    for name, value, kind in zip(names, outputs, kinds):
        entry = response.outputs.add(name=name, datatype=kind.datatype, shape=value.shape)
        if raw and kind.datatype == "BYTES":
            response.raw_output_contents.append(encode_binary_tensor(name, value)[1])
        elif raw:
            response.raw_output_contents.append(np.ascontiguousarray(value, dtype=kind.little_endian).tobytes())
        elif kind.datatype == "BYTES":
            entry.contents.bytes_contents.extend(str(v).encode("utf-8") for v in value.reshape(-1).tolist())
        else:
            getattr(entry.contents, CONTENTS_FIELD[kind.datatype]).extend(value.reshape(-1).tolist())


class InferenceService:
    """``inference.GRPCInferenceService`` on an app's data plane, counted in its metrics under
    the endpoints ``grpc_<method>`` with the HTTP status each answer stands for."""

    def __init__(self, app) -> None:
        self.app, self.plane, self.protocol = app, app.dataplane, protocol()
        self.in_flight = 0  # calls begun and not yet ended (their answers sent), of every method

    def _call_ended(self, context) -> None:
        self.in_flight -= 1

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's methods, each with the (de)serializers of its proto messages."""
        methods = {}
        for method in self.protocol.service.methods:
            request_type = self.protocol.messages[method.input_type.full_name]
            response_type = self.protocol.messages[method.output_type.full_name]
            methods[method.name] = grpc.unary_unary_rpc_method_handler(
                self._answering(method.name, response_type),
                request_deserializer=request_type.FromString,
                response_serializer=response_type.SerializeToString,
            )
        return grpc.method_handlers_generic_handler(self.protocol.service.full_name, methods)

    def _answering(self, method: str, response_type: type):
        """The RPC of ``method``: its answer as a response message, a RequestError as the status
        code and message HTTP would give, each counted in the metrics."""
        answer = getattr(self, method)
        endpoint = "grpc_" + method

        async def rpc(request, context):
            started = time.perf_counter()
            self.in_flight += 1
            context.add_done_callback(self._call_ended)
            name = getattr(request, "model_name", "") or getattr(request, "name", "")
            try:
                response = await answer(request)
                if isinstance(response, dict):
                    response = response_type(**response)
            except RequestError as error:
                self.app.record(endpoint, name, error.status, started)
                await context.abort(status_code(error), str(error))
            except Exception as error:  # a fault of the server's: INTERNAL, counted as HTTP's 500
                LOG.exception("gRPC %s failed", method)
                self.app.record(endpoint, name, 500, started)
                await context.abort(grpc.StatusCode.INTERNAL, f"the server failed on this request: {error!r}")
            self.app.record(endpoint, name, 200, started)
            return response

        return rpc

    # each method: its response message (or the message's fields) from a request message
    async def ServerLive(self, request) -> dict:
        return {"live": True}

    async def ServerReady(self, request) -> dict:
        return {"ready": True}

    async def ModelReady(self, request) -> dict:
        return {"ready": self.plane.model_ready(request.name, request.version or None)[0]}

    async def ServerMetadata(self, request) -> dict:
        metadata = self.plane.server_metadata()
        return {key: metadata[key] for key in ("name", "version", "extensions")}

    async def ModelMetadata(self, request) -> dict:
        metadata = self.plane.model_metadata(request.name, request.version or None)
        return {key: metadata[key] for key in ("name", "versions", "platform", "inputs", "outputs")}

    async def ModelInfer(self, request):
        payload = request_payload(request)
        # grpc.aio hands the loop one call per turn: with others in flight, this one waits for them to batch
        concurrent = self.in_flight > 1
        inference = await self.plane.infer(
            request.model_name, request.model_version or None, payload, typed=True, concurrent=concurrent
        )
        response = self.protocol["ModelInferResponse"](**inference.fields())
        fill_response(response, inference.names, inference.outputs, raw=bool(request.raw_input_contents))
        return response

    async def RepositoryIndex(self, request) -> dict:
        models = self.plane.repository_index()
        if request.ready:
            models = [model for model in models if model["state"] == "READY"]
        return {"models": models}

    async def RepositoryModelLoad(self, request) -> dict:
        name = request.triton_model_name or request.model_name
        await self.plane.repository_load(name)
        return {"model_name": name, "isLoaded": True}

    async def RepositoryModelUnload(self, request) -> dict:
        name = request.triton_model_name or request.model_name
        self.plane.repository_unload(name)
        return {"model_name": name, "isUnloaded": True}


async def start_server(app, host: str, port: int, max_message_bytes: int) -> grpc.aio.Server:
    """A gRPC server answering ``inference.GRPCInferenceService`` for ``app`` on ``host:port``, on
    the running event loop (several worker processes share the port: SO_REUSEPORT)."""
    options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.so_reuseport", 1)]
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers((InferenceService(app).handler(),))
    try:
        server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as error:
        raise RuntimeError(f"gRPC cannot listen on {host}:{port} ({error}); is the port taken?") from None
    await server.start()
    return server
