"""The container and the KServe runtime in deploy/: the runtime's arguments are the image's
command, and that command, run here on an export folder as KServe mounts it, serves the model
under the InferenceService's name to tritonclient over HTTP and gRPC."""

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
import yaml
from sklearn.datasets import load_wine
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests._server import free_port
from toolkit.mixture import GaussianMixture
from toolkit.onnx import export
from toolkit.serving import OnnxModel

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def dockerfile_instruction(name: str) -> list[str]:
    """The exec form (a JSON list) of a Dockerfile instruction."""
    lines = [line for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith(f"{name} ")]
    assert len(lines) == 1, f"one {name} in deploy/Dockerfile"
    return json.loads(lines[0][len(name) + 1 :])


def manifests() -> dict[str, dict]:
    return {document["kind"]: document for document in yaml.safe_load_all((DEPLOY / "kserve.yaml").read_text())}


def test_the_runtime_runs_the_images_command_with_the_inference_services_name():
    documents = manifests()
    runtime, service = documents["ServingRuntime"], documents["InferenceService"]
    (container,) = runtime["spec"]["containers"]
    assert dockerfile_instruction("ENTRYPOINT") == ["toolkit", "serve"]
    assert container["args"] == dockerfile_instruction("CMD") + ["--model-name={{.Name}}"]
    assert "command" not in container  # the image's entrypoint stays
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"] and model["protocolVersion"] == "v2"
    assert model["modelFormat"]["name"] in [f["name"] for f in runtime["spec"]["supportedModelFormats"]]
    assert {"v2", "grpc-v2"} <= set(runtime["spec"]["protocolVersions"])


@pytest.fixture(scope="module")
def mounted_model(tmp_path_factory):
    """An export folder where KServe's storage initializer puts it (/mnt/models here: a temporary folder)."""
    wine = load_wine()
    model = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(wine.data)
    folder = tmp_path_factory.mktemp("mnt") / "models"
    export(model, folder)
    return folder, wine.data[:5]


def test_the_containers_command_serves_the_mounted_model_under_the_services_name(mounted_model, tmp_path):
    folder, rows = mounted_model
    service = manifests()["InferenceService"]["metadata"]["name"]
    http_port, grpc_port = free_port(), free_port()
    (container,) = manifests()["ServingRuntime"]["spec"]["containers"]
    arguments = [str(folder) if a == "/mnt/models" else a.replace("{{.Name}}", service) for a in container["args"]]
    arguments[arguments.index("8080")], arguments[arguments.index("8081")] = str(http_port), str(grpc_port)
    arguments[arguments.index("0.0.0.0")] = "127.0.0.1"  # listen here only, on the test's ports
    command = [sys.executable, "-m", "toolkit.cli", *dockerfile_instruction("ENTRYPOINT")[1:], *arguments]
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        http = triton_http.InferenceServerClient(f"127.0.0.1:{http_port}")
        deadline = time.time() + 60
        while True:
            try:
                if http.is_model_ready(service):
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            assert server.poll() is None and time.time() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        grpc = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        assert grpc.is_model_ready(service)
        expected = OnnxModel(folder).predict_proba(rows)
        for client, module in ((http, triton_http), (grpc, triton_grpc)):
            tensor = module.InferInput("X", list(rows.shape), "FP64")
            tensor.set_data_from_numpy(rows)
            answer = client.infer(service, [tensor], outputs=[module.InferRequestedOutput("probabilities")])
            np.testing.assert_allclose(answer.as_numpy("probabilities"), expected, rtol=1e-12)
        unload = httpx.post(f"http://127.0.0.1:{http_port}/v2/repository/models/{service}/unload")
        assert unload.status_code == 403  # the repository is fixed at start: model control "none"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
