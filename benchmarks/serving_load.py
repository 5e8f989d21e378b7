"""Load test of ``toolkit serve`` on loopback: the digits CNN under N concurrent clients.

Exports the digits_cnn pipeline's model, starts ``toolkit serve`` as its own process, and
runs ``--clients`` concurrent clients (one connection each) for ``--seconds``, each sending
one-row Open Inference Protocol requests back to back. Prints requests/s, p50 / p99
latency and the errors: non-200 answers and answers that differ from the same row run
serially in-process (onnxruntime#22967 reports wrong results under a shared session); then the
same rows through ``OnnxModel`` in this process (no HTTP), for comparison.

    python benchmarks/serving_load.py [--clients 20] [--seconds 30] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import numpy as np

from toolkit.jobs import discover, load_pipeline
from toolkit.onnx import export, load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(
    url: str, work: list[tuple[dict, list]], deadline: float, latencies: list[float], errors: list[str]
) -> None:
    """Send the (body, expected probabilities) pairs in turn until the deadline; a non-200
    answer, or one that differs from the serial in-process answer, is an error."""
    async with httpx.AsyncClient(timeout=30) as http:
        k = 0
        while time.perf_counter() < deadline:
            body, expected = work[k % len(work)]
            started = time.perf_counter()
            response = await http.post(url, json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors.append(f"status {response.status_code}")
            else:
                got = next(o["data"] for o in response.json()["outputs"] if o["name"] == "probabilities")
                if got != expected:
                    errors.append("answer differs from the serial one")
            k += 1


async def load_test(
    url: str, work: list[tuple[dict, list]], clients: int, seconds: float
) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(client(url, work[i::clients] or work, deadline, latencies, errors) for i in range(clients)))
    return latencies, errors, time.perf_counter() - started


def wait_until_live(base: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        try:
            if httpx.get(base + "/v2/health/live").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode())
    raise RuntimeError("server did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    pipelines = discover(Path(__file__).resolve().parents[1] / "pipelines")
    job = load_pipeline(pipelines["digits_cnn"]).run(full=False)
    rows = np.asarray(job.X_test, dtype=np.float32)
    bodies = [{"inputs": [{"name": "X", "shape": [1, 64], "datatype": "FP32", "data": row.tolist()}]} for row in rows]
    with tempfile.TemporaryDirectory() as root:
        export(job.model, Path(root) / "digits_cnn")
        serial = load(Path(root) / "digits_cnn", intra_op_num_threads=1)
        # The answers concurrent requests must give: the same rows run one at a time in-process.
        work = [
            (body, serial.session.run(["probabilities"], serial.prepare(row[None, :]))[0].reshape(-1).tolist())
            for body, row in zip(bodies, rows)
        ]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # --quiet: no access line per request (a pipe nobody reads would fill up and stall the server).
        command = [
            sys.executable,
            "-m",
            "toolkit.cli",
            "serve",
            root,
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--threads",
            "1",
            "--quiet",
        ]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until_live(base, process)
            latencies, errors, elapsed = asyncio.run(
                load_test(base + "/v2/models/digits_cnn/infer", work, args.clients, args.seconds)
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
        ms = np.asarray(latencies) * 1e3
        print(
            f"HTTP  {args.clients} clients, {args.workers} worker(s), {elapsed:.0f} s: "
            f"{len(latencies) / elapsed:8.1f} requests/s   "
            f"p50 {np.percentile(ms, 50):.2f} ms   p99 {np.percentile(ms, 99):.2f} ms   errors {len(errors)} of "
            f"{len(latencies)} "
            f"(non-200 or differing from the serial answer){': ' + errors[0] if errors else ''}"
        )
        model = load(Path(root) / "digits_cnn", intra_op_num_threads=1)
        in_process = []
        started = time.perf_counter()
        while time.perf_counter() - started < min(args.seconds, 10):
            row = rows[len(in_process) % len(rows)][None, :]
            t = time.perf_counter()
            model.run(row)
            in_process.append(time.perf_counter() - t)
        ms = np.asarray(in_process) * 1e3
        print(
            f"OnnxModel in-process, one thread: {len(in_process) / sum(in_process):8.1f} rows/s   p50 "
            f"{np.percentile(ms, 50):.3f} ms   p99 {np.percentile(ms, 99):.3f} ms"
        )


if __name__ == "__main__":
    main()
