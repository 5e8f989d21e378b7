"""Training under a CPU load, side by side: `toolkit run digits_vae` and one notes experiment
(dropout, quick size, run as `toolkit run` runs a pipeline), unloaded and with a CPU-bound
background load of ``--load`` processes, with toolkit's default threads (one torch thread per
pipeline) and with torch's default (one per physical core: ``--threads`` set to it).

Each run is a fresh process; the settings are interleaved within each round, and the table gives
each one's median wall time, its ratio loaded / unloaded, and the loaded time over the fastest
unloaded one (toolkit's goal: at most 2.5). A run past ``--timeout`` seconds is stopped and shown
as ">timeout".

    python benchmarks/cpu_load.py [--rounds 3] [--load 2] [--timeout 600]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = """
import sys
from pathlib import Path
from toolkit.jobs import import_file
from toolkit.jobs._workers import job_executor
experiments = import_file(Path("pipelines") / "_experiments.py")
threads = [int(sys.argv[2])] if len(sys.argv) > 2 else []  # --threads N
with job_executor(1, *threads) as (executor, _):  # as toolkit run runs one pipeline
    executor.submit(experiments.regularisation.dropout, "quick").result()
"""


def settings() -> dict[str, list[str]]:
    """Setting label -> extra arguments: none for toolkit's defaults, ``--threads`` torch's default."""
    import torch

    return {
        "toolkit's defaults (1 thread)": [],
        f"torch's default ({torch.get_num_threads()} threads)": ["--threads", str(torch.get_num_threads())],
    }


def workloads(out: Path) -> dict[str, list[str]]:
    return {
        "toolkit run digits_vae": [sys.executable, "-m", "toolkit.cli", "run", "digits_vae", "--out", str(out)],
        "notes experiment (dropout)": [sys.executable, "-c", EXPERIMENT],
    }


def timed(command: list[str], timeout: int) -> float:
    """Wall seconds of one run (inf past ``timeout``); the user's thread variables are left out."""
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    started = time.perf_counter()
    try:
        subprocess.run(command, env=environment, cwd=ROOT, check=True, timeout=timeout, capture_output=True)
    except subprocess.TimeoutExpired:
        return float("inf")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", type=int, default=2, help="CPU-bound background processes")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    times, options = {}, settings()
    with tempfile.TemporaryDirectory() as tmp:
        jobs = workloads(Path(tmp))
        for loaded in (False, True):
            spinners = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load if loaded else 0)
            ]
            try:
                for _ in range(args.rounds):
                    for job, command in jobs.items():
                        for label, extra in options.items():
                            seconds = timed(command + extra, args.timeout)
                            times.setdefault((job, label, loaded), []).append(seconds)
            finally:
                for spinner in spinners:
                    spinner.kill()
    print(f"wall seconds, median of {args.rounds} interleaved runs; loaded: {args.load} CPU-bound processes beside")
    print(f"{'workload':28} | {'setting':30} | unloaded | loaded  | loaded / unloaded | loaded / fastest unloaded")
    for job in jobs:
        medians = {key: float(np.median(value)) for key, value in times.items() if key[0] == job}
        fastest = min(seconds for (_, _, loaded), seconds in medians.items() if not loaded)
        for label in options:
            quiet, busy = medians[(job, label, False)], medians[(job, label, True)]
            shown = [f">{args.timeout}" if np.isinf(value) else f"{value:.1f}" for value in (quiet, busy)]
            print(
                f"{job:28} | {label:30} | {shown[0]:>8} | {shown[1]:>7} | {busy / quiet:17.2f} | {busy / fastest:.2f}"
            )


if __name__ == "__main__":
    main()
