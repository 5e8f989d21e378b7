"""Training under a CPU load, side by side: `toolkit run digits_vae` and one notes experiment
(dropout, quick size), unloaded and with a CPU-bound background load of ``--load`` processes,
under each thread setting: toolkit's defaults (the CPU budget), libgomp's passive waiting
(``OMP_WAIT_POLICY=PASSIVE``) and one torch thread (``OMP_NUM_THREADS=1``).

Each run is a fresh process (the thread settings act when torch loads OpenMP); the settings are
interleaved within each round, and the table gives each one's median wall time and its ratio
loaded / unloaded (toolkit's goal: at most 2.5). A run past ``--timeout``
seconds is stopped and shown as ">timeout".

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
SETTINGS = {
    "toolkit's defaults (CPU budget)": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
}
EXPERIMENT = """
from pathlib import Path
from toolkit._cpu_budget import cpu_budget
from toolkit.jobs import import_file
from toolkit.jobs._workers import set_torch_threads
set_torch_threads(cpu_budget().threads, at_most=True)  # as toolkit run does one pipeline at a time
experiments = import_file(Path("pipelines") / "_experiments.py")
experiments.regularisation.dropout("quick")
"""


def workloads(out: Path) -> dict[str, list[str]]:
    return {
        "toolkit run digits_vae": [sys.executable, "-m", "toolkit.cli", "run", "digits_vae", "--out", str(out)],
        "notes experiment (dropout)": [sys.executable, "-c", EXPERIMENT],
    }


def timed(command: list[str], settings: dict, timeout: int) -> float:
    """Wall seconds of one run (inf past ``timeout``); the user's thread variables are left out."""
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    started = time.perf_counter()
    try:
        subprocess.run(
            command, env={**environment, **settings}, cwd=ROOT, check=True, timeout=timeout, capture_output=True
        )
    except subprocess.TimeoutExpired:
        return float("inf")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", type=int, default=2, help="CPU-bound background processes")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        jobs = workloads(Path(tmp))
        for loaded in (False, True):
            spinners = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load if loaded else 0)
            ]
            try:
                for _ in range(args.rounds):
                    for job, command in jobs.items():
                        for label, settings in SETTINGS.items():
                            seconds = timed(command, settings, args.timeout)
                            times.setdefault((job, label, loaded), []).append(seconds)
            finally:
                for spinner in spinners:
                    spinner.kill()
    print(f"wall seconds, median of {args.rounds} interleaved runs; loaded: {args.load} CPU-bound processes beside")
    print(f"{'workload':28} | {'setting':32} | unloaded | loaded  | loaded / unloaded")
    for job in jobs:
        for label in SETTINGS:
            quiet, busy = (float(np.median(times[(job, label, loaded)])) for loaded in (False, True))
            shown = [f">{args.timeout}" if np.isinf(value) else f"{value:.1f}" for value in (quiet, busy)]
            print(f"{job:28} | {label:32} | {shown[0]:>8} | {shown[1]:>7} | {busy / quiet:.2f}")


if __name__ == "__main__":
    main()
