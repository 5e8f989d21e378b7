"""Serving load, side by side: toolkit serve (as installed: adaptive batching, and unbatched; one
process, and N worker processes), MLServer with an onnxruntime runtime, KServe's model server
around onnxruntime, and a bare Starlette endpoint, on the digits CNN (the same ONNX file, one
onnxruntime thread per process), with wrk as the HTTP load generator and h2load (nghttp2-client)
as the gRPC one, sending what tritonclient.grpc sends (C clients: a Python client would share
the 2 cores and measure itself). The gRPC rows compare toolkit serve --grpc-port with MLServer's
gRPC endpoint.

Each server is checked first: its answer to a row must equal onnxruntime's in this process. Then
rounds, interleaved across servers, at each concurrency (one wrk thread, c connections, one-row
V2 requests back to back); the table shows the median over rounds of requests/s, p50 and p99.
MLServer and KServe run from their own virtual environments (they conflict with each other and
are never imported by toolkit): --mlserver-python / --kserve-python name their interpreters.

    python benchmarks/serving_load.py [--seconds 10] [--rounds 3] [--concurrency 1 8 32] [--workers 2]
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


def servers(root: Path, args) -> dict[str, tuple[callable, bool]]:
    """{label: ((http port, grpc port) -> command, whether it answers gRPC)} of every server compared."""
    toolkit = [sys.executable, "-m", "toolkit.cli", "serve", str(root), "--threads", "1", "--quiet"]

    def ours(*options, base=toolkit):
        return lambda port, grpc: [*base, "--port", str(port), "--grpc-port", str(grpc), *options]

    delay = ("--max-queue-delay-us", str(args.queue_delay_us))
    table = {
        "toolkit serve (batching)": (ours(*delay), True),
        "toolkit serve, unbatched": (ours("--max-batch-size", "0"), True),
    }
    for n in args.workers:
        table[f"toolkit serve, {n} workers (batching)"] = (ours("--workers", str(n), *delay), False)
        table[f"toolkit serve, {n} workers, unbatched"] = (ours("--workers", str(n), "--max-batch-size", "0"), False)
    table["bare Starlette (no model)"] = (
        lambda port, grpc: [sys.executable, str(PEER_SERVERS / "bare_starlette.py"), str(port)],
        False,
    )
    for tree in args.baseline_tree or []:  # another checkout's toolkit, e.g. before a change
        old = ["env", f"PYTHONPATH={Path(tree).resolve()}", *toolkit]
        table |= {
            f"{Path(tree).name}: batching": (ours(base=old), False),
            f"{Path(tree).name}: unbatched": (ours("--max-batch-size", "0", base=old), False),
        }
    if args.mlserver_python:
        table["MLServer 1.7.1"] = (lambda port, grpc: mlserver_command(root, port, grpc, args.mlserver_python), True)
    if args.kserve_python:
        model = str(root / "digits_cnn" / "model.onnx")
        table["KServe 0.21.0"] = (
            lambda port, grpc: [args.kserve_python, str(PEER_SERVERS / "kserve_server.py"), model, str(port)],
            False,
        )
    return table


def mlserver_command(root: Path, port: int, grpc_port: int, python: str) -> list[str]:
    folder = root / f"mlserver-{port}"
    model = folder / "digits_cnn"
    model.mkdir(parents=True, exist_ok=True)
    shutil.copy(PEER_SERVERS / "mlserver_runtime.py", folder / "runtime.py")
    settings = {"http_port": port, "grpc_port": grpc_port, "metrics_port": free_port(), "parallel_workers": 0}
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


def h2load(port: int, frame: Path, answer_bytes: int, streams: int, seconds: int, log: Path) -> tuple:
    """(requests/s, p50 ms, p99 ms, calls answered without a response message) of one h2load run
    of gRPC ModelInfer calls: one connection, ``streams`` concurrent streams, the framed request
    ``frame``. h2load reads HTTP statuses only, and a gRPC error is a 200 whose grpc-status
    trailer says so, with no message: the data bytes received must hold ``answer_bytes`` (one
    framed response) per call, or the shortfall counts as failed calls."""
    log.unlink(missing_ok=True)  # h2load appends to its log
    command = ["h2load", "-c1", f"-m{streams}", "-t1", f"-D{seconds}", "-d", str(frame), "--log-file", str(log)]
    command += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    run = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/inference.GRPCInferenceService/ModelInfer"], capture_output=True, text=True
    )
    out = run.stdout
    if "req/s" not in out:
        raise RuntimeError(f"h2load failed on port {port}: {out}{run.stderr}")
    rate = float(re.search(r"([\d.]+) req/s", out).group(1))
    done = int(re.search(r"(\d+) succeeded", out).group(1))
    answered = int(re.search(r"\((\d+)\) data", out).group(1)) // answer_bytes
    durations = np.array([int(line.split("\t")[2]) for line in log.read_text().splitlines()]) / 1e3
    return rate, float(np.percentile(durations, 50)), float(np.percentile(durations, 99)), max(done - answered, 0)


def grpc_frame(row: np.ndarray) -> bytes:
    """A one-row ModelInfer request as tritonclient.grpc sends it (raw contents), gRPC-framed."""
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(
        model_name="digits_cnn",
        inputs=[{"name": "X", "datatype": "FP32", "shape": list(row.shape)}],
        raw_input_contents=[row.tobytes()],
    )
    message = request.SerializeToString()
    return b"\0" + len(message).to_bytes(4, "big") + message


def grpc_answer(port: int, frame: bytes, expected: np.ndarray, label: str) -> int:
    """Check a server's gRPC answer to the row against onnxruntime's; its framed size in bytes."""
    import grpc
    from tritonclient.grpc import service_pb2

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        answer = call(frame[5:], timeout=30)
    response = service_pb2.ModelInferResponse.FromString(answer)
    names = [o.name for o in response.outputs]
    if response.raw_output_contents:
        got = np.frombuffer(response.raw_output_contents[names.index("probabilities")], dtype=np.float32)
    else:
        got = np.asarray(response.outputs[names.index("probabilities")].contents.fp32_contents)
    np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f"{label} over gRPC")
    return len(answer) + 5


LUA = """wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
"""


def table_lines(title: str, results: dict, labels: list[str], concurrency: list[int], unit: str) -> list[str]:
    """The printed table: per label and concurrency the medians of requests/s, p50 and p99."""
    lines = [title, f"{'server':38s}" + "".join(f" | {unit}={c}: req/s, p50, p99 ms" for c in concurrency)]
    for label in labels:
        cells = []
        for c in concurrency:
            runs = results[(label, c)]
            rate, p50, p99 = (statistics.median(r[i] for r in runs) for i in range(3))
            errors = sum(r[3] for r in runs)
            cells.append(f" | {rate:7.0f}, {p50:5.2f}, {p99:6.2f}" + (f" ({errors} failed)" if errors else ""))
        lines.append(f"{label:38s}{''.join(cells)}")
    return lines


def ratio_lines(results: dict, pairs: list[tuple[str, str]], concurrency: list[int]) -> list[str]:
    """Throughput ratios of (numerator, denominator) rows, on the medians."""
    lines = []
    for top, bottom in pairs:
        if (top, concurrency[0]) not in results or (bottom, concurrency[0]) not in results:
            continue
        cells = []
        for c in concurrency:
            rates = [statistics.median(r[0] for r in results[(label, c)]) for label in (top, bottom)]
            cells.append(f"c={c}: {rates[0] / rates[1]:.2f}")
        lines.append(f"  {top} / {bottom}: {', '.join(cells)}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--queue-delay-us", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, nargs="*", default=[2], help="worker counts measured beside one worker (default: 2)"
    )
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
    measure_grpc = shutil.which("h2load") is not None
    if not measure_grpc:
        print("h2load is not installed (Debian: apt-get install nghttp2-client): no gRPC rows")
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
        frame = root / "infer.grpc"
        frame.write_bytes(grpc_frame(row))
        table = servers(root, args)
        grpc_labels = [label for label, (_, speaks) in table.items() if speaks and measure_grpc]
        results = {(label, c): [] for label in table for c in args.concurrency}
        grpc_results = {(label, c): [] for label in grpc_labels for c in args.concurrency}
        running, answer_bytes = {}, {}
        try:
            for label, (command, _) in table.items():
                port, grpc_port = free_port(), free_port()
                running[label] = (start(command(port, grpc_port), port, root / f"{len(running)}.log"), port, grpc_port)
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
                if label in grpc_labels:
                    answer_bytes[label] = grpc_answer(grpc_port, frame.read_bytes(), expected, label)
            for _ in range(args.rounds):
                for c in args.concurrency:
                    for label, (_, port, grpc_port) in running.items():
                        url = f"http://127.0.0.1:{port}/v2/models/digits_cnn/infer"
                        results[(label, c)].append(wrk(url, body, c, args.seconds, script))
                        if label in grpc_labels:
                            log = root / "h2load.log"
                            run = h2load(grpc_port, frame, answer_bytes[label], c, args.seconds, log)
                            grpc_results[(label, c)].append(run)
        finally:
            for process, *_ in running.values():
                process.terminate()
                process.wait(timeout=30)
    rounds = f"{args.seconds:g} s rounds, median of {args.rounds} interleaved"
    lines = table_lines(
        f"\none-row digits CNN requests over HTTP, wrk -t1, {rounds}", results, list(table), args.concurrency, "c"
    )
    single = ["toolkit serve (batching)", "toolkit serve, unbatched"]
    pairs = [(label, "bare Starlette (no model)") for label in single]
    for n in args.workers:
        pairs += [
            (f"toolkit serve, {n} workers (batching)", single[0]),
            (f"toolkit serve, {n} workers, unbatched", single[1]),
        ]
    lines += ["throughput ratios:", *ratio_lines(results, pairs, args.concurrency)]
    if grpc_labels:
        title = (
            f"\nthe same over gRPC (ModelInfer, raw contents as tritonclient.grpc), h2load -c1 -m<streams>, {rounds}"
        )
        lines += table_lines(title, grpc_results, grpc_labels, args.concurrency, "streams")
        grpc_pairs = [(label, "MLServer 1.7.1") for label in single]
        lines += ["throughput ratios:", *ratio_lines(grpc_results, grpc_pairs, args.concurrency)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
