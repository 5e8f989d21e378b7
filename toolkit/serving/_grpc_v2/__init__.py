"""The Open Inference Protocol's gRPC service, made from ``grpc_predict_v2.proto`` beside this file.

The proto is compiled by grpc_tools' protoc (into a FileDescriptorSet, in a temporary folder)
the first time :func:`protocol` is called, and its messages are built in a descriptor pool of
their own: no generated code is kept in the repository, so the messages always match the proto
and the installed protobuf, and a process may also import other stubs of the ``inference``
package (tritonclient.grpc's define the same names in protobuf's default pool).
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import ServiceDescriptor

PROTO = Path(__file__).with_name("grpc_predict_v2.proto")


@dataclass(frozen=True)
class Protocol:
    """The compiled service: its descriptor (methods with their request and response types) and
    every message class by its full name ("inference.ModelInferRequest")."""

    service: ServiceDescriptor
    messages: dict[str, type]

    def __getitem__(self, short_name: str) -> type:
        """A message class by its name in the proto ("ModelInferRequest")."""
        return self.messages[f"inference.{short_name}"]


@functools.cache
def protocol() -> Protocol:
    """The service and messages of ``grpc_predict_v2.proto`` (compiled once per process)."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "descriptors.pb"
        status = protoc.main(["protoc", f"-I{PROTO.parent}", f"--descriptor_set_out={output}", PROTO.name])
        if status != 0:
            raise RuntimeError(f"protoc could not compile {PROTO} (exit status {status})")
        files = descriptor_pb2.FileDescriptorSet.FromString(output.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    service = pool.FindServiceByName("inference.GRPCInferenceService")
    names = {method.input_type.full_name for method in service.methods}
    names |= {method.output_type.full_name for method in service.methods}
    messages = {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name)) for name in names}
    return Protocol(service, messages)
