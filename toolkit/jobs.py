"""End-to-end jobs: what a pipeline in ``pipelines/`` returns and how ``toolkit run`` runs it.

A pipeline file defines ``run(full: bool = False) -> Job``: it loads data that ships with
scikit-learn or statsmodels, fits a model and scores it on held-out rows. The runner then
exports the model, validates the export on the held-out rows, times onnxruntime at batch 1
and prints one table row.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from toolkit.onnx import export, load, validate
from toolkit.onnx._validate import graph_feed, graph_inputs
from toolkit.serving import read_metadata


@dataclass
class Job:
    """A fitted model and its held-out score, as a pipeline returns it.

    Parameters
    ----------
    model : fitted estimator or Pipeline
    X_test : array-like or DataFrame
        Held-out inputs; the export is validated on them.
    metric : str
        Name of the held-out metric, e.g. "accuracy".
    score : float
    floor : float, optional
        The job fails when ``score`` is below it.
    details : str
        More figures for the table's metric column (e.g. a baseline's score).
    export_options : dict
        Passed to :func:`toolkit.onnx.export` (e.g. a forecaster's ``horizon``).
    plot : callable, optional
        Called with the export folder after the export, to write figures beside it.
    """

    model: object
    X_test: object
    metric: str
    score: float
    floor: float | None = None
    details: str = ""
    export_options: dict = field(default_factory=dict)
    plot: Callable[[Path], None] | None = None

    @property
    def meets_floor(self) -> bool:
        return self.floor is None or self.score >= self.floor


@dataclass
class JobOutcome:
    """One row of the ``toolkit run`` table."""

    name: str
    model: str = ""
    metric: str = ""
    onnx_max_error: float = float("nan")
    latency_ms: float = float("nan")
    path: str = ""
    seconds: float = 0.0
    ok: bool = False
    problem: str = ""


def discover(directory: Path) -> dict[str, Path]:
    """Pipeline files in ``directory`` (``*.py`` not starting with ``_``), by name."""
    return {path.stem: path for path in sorted(directory.glob("*.py")) if not path.stem.startswith("_")}


def import_file(path: Path) -> ModuleType:
    """Import a Python file by path (pipelines and their helpers are not a package)."""
    spec = importlib.util.spec_from_file_location(f"toolkit_pipeline_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_pipeline(path: Path) -> ModuleType:
    """Import a pipeline file by path (the package never imports ``pipelines/`` by name)."""
    module = import_file(path)
    if not callable(getattr(module, "run", None)):
        raise TypeError(f"{path} defines no run(full=False) function")
    return module


def batch1_latency_ms(folder: Path, estimator, X_test, repeats: int = 200) -> float:
    """Median wall time of one onnxruntime run of the export's first graph on a single row
    (for a VAE the encoder, for a diffusion model the denoiser), in milliseconds."""
    graph, entry = next(iter(read_metadata(folder)["graphs"].items()))
    model = load(folder, graph=graph, intra_op_num_threads=1)
    row = X_test.iloc[:1] if hasattr(X_test, "iloc") else X_test[:1]
    feed = model.prepare(graph_feed(model, graph_inputs(estimator, entry, row)))
    for _ in range(10):
        model.session.run(None, feed)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.session.run(None, feed)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def model_name(model) -> str:
    steps = getattr(model, "steps", None)
    return " > ".join(type(step).__name__ for _, step in steps) if steps else type(model).__name__


def run_job(name: str, path: Path, out: Path, *, full: bool = False) -> JobOutcome:
    """Run one pipeline file, export and validate its model; never raises."""
    outcome = JobOutcome(name)
    started = time.perf_counter()
    try:
        job = load_pipeline(path).run(full=full)
        folder = out / name
        outcome.model = model_name(job.model)
        outcome.metric = f"{job.metric}={job.score:.4f}" + ("" if job.meets_floor else f" < floor {job.floor}")
        outcome.metric += f" ({job.details})" if job.details else ""
        export(job.model, folder, **job.export_options)
        if job.plot is not None:
            job.plot(folder)
        report = validate(job.model, folder, job.X_test, raise_on_failure=False)
        outcome.onnx_max_error = report.max_abs_error
        outcome.latency_ms = batch1_latency_ms(folder, job.model, job.X_test)
        outcome.path = str(folder)
        outcome.ok = report.passed and job.meets_floor
        if not report.passed:
            outcome.problem = str(report)
    except Exception:  # one failing pipeline must not hide the others' rows
        outcome.problem = traceback.format_exc()
    outcome.seconds = time.perf_counter() - started
    return outcome


def format_table(outcomes: list[JobOutcome]) -> str:
    header = ("pipeline", "model", "metric", "onnx max err", "ort b=1 ms", "seconds", "status", "path")
    rows = [
        (
            o.name,
            o.model,
            o.metric,
            f"{o.onnx_max_error:.2e}",
            f"{o.latency_ms:.3f}",
            f"{o.seconds:.1f}",
            "ok" if o.ok else "FAIL",
            o.path,
        )
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def run_all(names: list[str], directory: Path, out: Path, *, full: bool = False, stream=None) -> list[JobOutcome]:
    """Run the named pipelines (all when ``names`` is empty) and print the table to
    ``stream`` (default: the current ``sys.stdout``)."""
    stream = stream or sys.stdout
    available = discover(directory)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown pipeline(s) {unknown}; available: {sorted(available)}")
    outcomes = []
    for name in names or list(available):
        print(f"running {name} ...", file=stream, flush=True)
        outcomes.append(run_job(name, available[name], out, full=full))
    for outcome in outcomes:
        if outcome.problem:
            print(f"\n{outcome.name}:\n{outcome.problem}", file=stream)
    print("\n" + format_table(outcomes), file=stream)
    return outcomes
