"""``toolkit serve`` as a real process for the tests that speak to one over HTTP."""

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root, log_path, *options):
    """``toolkit serve`` in a subprocess, its stdout and stderr in ``log_path`` (a pipe would
    fill up with access lines and block the server); returns (process, client) once it answers."""
    port = free_port()
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli", "serve", str(root), "--port", str(port), *options],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    deadline = time.time() + 60
    while True:
        try:
            if client.get("/v2/health/live").status_code == 200:
                return process, client
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start: {open(log_path).read()}")
        time.sleep(0.2)


def stop_server(process, client) -> None:
    client.close()
    process.terminate()
    process.wait(timeout=20)


def metric(text: str, series: str, default: float | None = None) -> float:
    """The value of one series (its name with its labels, as exposed) in a Prometheus exposition;
    ``default`` when the series is absent, an AssertionError naming it when no default is given."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    assert default is not None, f"no series {series} in the exposition"
    return default
