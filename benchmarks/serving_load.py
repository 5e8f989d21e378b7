"""Serving load, side by side: toolkit serve (as installed: adaptive batching, and unbatched), MLServer with
an onnxruntime runtime, KServe's model server around onnxruntime, and a bare Starlette endpoint,
on the digits CNN (the same ONNX file, one process, one onnxruntime thread each), with wrk as the
load generator (a C client: a Python client would share the 2 cores and measure itself).

Each server is checked first: its answer to a row must equal onnxruntime's in this process. Then
rounds, interleaved across servers, at each concurrency (one wrk thread, c connections, one-row
V2 requests back to back); the table shows the median over rounds of requests/s, p50 and p99.
MLServer and KServe run from their own virtual environments (they conflict with each other and
are never imported by toolkit): --mlserver-python / --kserve-python name their interpreters.

    python benchmarks/serving_load.py [--seconds 10] [--rounds 3] [--concurrency 1 8 32]
        [--mlserver-python MLSERVER_VENV/bin/python] [--kserve-python KSERVE_VENV/bin/python]
        [--baseline-tree ../before]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
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

HERE = Path(__file__).resolve().parent
PEER_SERVERS = HERE / "peer_servers"  # MLServer, KServe and bare Starlette apps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def servers(root: Path, args) -> dict[str, callable]:
    """{label: (port) -> command} of every server this run compares."""
    toolkit = [sys.executable, "-m", "toolkit.cli", "serve", str(root), "--threads", "1", "--quiet"]
    table = {
        "toolkit serve (batching)": lambda port: [
            *toolkit,
            "--port",
            str(port),
            "--max-queue-delay-us",
            str(args.queue_delay_us),
        ],
        "toolkit serve, unbatched": lambda port: [*toolkit, "--port", str(port), "--max-batch-size", "0"],
        "bare Starlette (no model)": lambda port: [sys.executable, str(PEER_SERVERS / "bare_starlette.py"), str(port)],
    }
    for tree in args.baseline_tree or []:  # another checkout's toolkit, e.g. before a change
        old = ["env", f"PYTHONPATH={Path(tree).resolve()}", *toolkit]
        table |= {
            f"{Path(tree).name}: batching": lambda port, old=old: [*old, "--port", str(port)],
            f"{Path(tree).name}: unbatched": lambda port, old=old: [*old, "--port", str(port), "--max-batch-size", "0"],
        }
    if args.mlserver_python:
        table["MLServer 1.7.1"] = lambda port: mlserver_command(root, port, args.mlserver_python)
    if args.kserve_python:
        model = str(root / "digits_cnn" / "model.onnx")
        table["KServe 0.21.0"] = lambda port: [
            args.kserve_python,
            str(PEER_SERVERS / "kserve_server.py"),
            model,
            str(port),
        ]
    return table


def mlserver_command(root: Path, port: int, python: str) -> list[str]:
    folder = root / f"mlserver-{port}"
    model = folder / "digits_cnn"
    model.mkdir(parents=True, exist_ok=True)
    shutil.copy(PEER_SERVERS / "mlserver_runtime.py", folder / "runtime.py")
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port(), "parallel_workers": 0}
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": "digits_cnn",
        "implementation": "runtime.OnnxRuntime",
        "parameters": {"uri": str(root / "digits_cnn" / "model.onnx")},
    }
    (model / "model-settings.json").write_text(json.dumps(model_settings))
    return [str(Path(python).with_name("mlserver")), "start", str(folder)]


def start(command: list[str], port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=Path(command[-1]).parent, env=env)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"{command} did not come up")


def wrk(url: str, body: str, connections: int, seconds: int, script: Path) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx) of one wrk run."""
    run = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        env={**os.environ, "WRK_BODY": body},
    )
    out = run.stdout
    if "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed on {url}: {out}{run.stderr}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, percentile("50"), percentile("99"), int(bad.group(1)) if bad else 0


LUA = """wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--queue-delay-us", type=int, default=0)
    parser.add_argument("--mlserver-python")
    parser.add_argument("--kserve-python")
    parser.add_argument(
        "--baseline-tree",
        nargs="+",
        help="checkouts whose toolkit serve runs beside this one's (PYTHONPATH=<tree>; its compiled kernels "
        "need not be built), to measure a change side by side",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    warnings.simplefilter("ignore")
    job = load_pipeline(discover(HERE.parent / "pipelines")["digits_cnn"]).run(full=False)
    row = np.asarray(job.X_test, dtype=np.float32)[:1]
    body = json.dumps({"inputs": [{"name": "X", "shape": [1, 64], "datatype": "FP32", "data": row[0].tolist()}]})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        export(job.model, root / "digits_cnn")
        expected = load(root / "digits_cnn", intra_op_num_threads=1).run(row)["probabilities"].reshape(-1)
        script = root / "post.lua"
        script.write_text(LUA)
        table = servers(root, args)
        results = {(label, c): [] for label in table for c in args.concurrency}
        running = {}
        try:
            for label, command in table.items():
                port = free_port()
                running[label] = (start(command(port), port, root / f"{len(running)}.log"), port)
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/v2/models/digits_cnn/infer",
                    content=body,
                    headers={"Content-Type": "application/json"},
                ).json()
                if "no model" not in label:
                    if "outputs" not in answer:
                        raise RuntimeError(f"{label} answered {answer}")
                    got = next(o for o in answer["outputs"] if o["name"] == "probabilities")["data"]
                    np.testing.assert_allclose(np.ravel(got), expected, rtol=1e-6, err_msg=label)
            for _ in range(args.rounds):
                for c in args.concurrency:
                    for label, (_, port) in running.items():
                        url = f"http://127.0.0.1:{port}/v2/models/digits_cnn/infer"
                        results[(label, c)].append(wrk(url, body, c, args.seconds, script))
        finally:
            for process, _ in running.values():
                process.terminate()
                process.wait(timeout=30)
    print(f"\none-row digits CNN requests, wrk -t1, {args.seconds:g} s rounds, median of {args.rounds} interleaved")
    header = "".join(f" | c={c}: req/s, p50, p99 ms" for c in args.concurrency)
    print(f"{'server':28s}{header}")
    for label in table:
        cells = []
        for c in args.concurrency:
            runs = results[(label, c)]
            rate, p50, p99 = (statistics.median(r[i] for r in runs) for i in range(3))
            errors = sum(r[3] for r in runs)
            cells.append(f" | {rate:7.0f}, {p50:5.2f}, {p99:6.2f}" + (f" ({errors} non-2xx)" if errors else ""))
        print(f"{label:28s}{''.join(cells)}")


if __name__ == "__main__":
    main()
