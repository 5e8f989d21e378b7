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
