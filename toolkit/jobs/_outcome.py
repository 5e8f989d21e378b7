"""One pipeline of ``toolkit run``: fit (the pipeline's ``run``), export, validate, time; its row.

:func:`run_job` never raises an Exception: a pipeline that fails, or whose export fails
validation, is a FAIL row that says why, and the other pipelines go on.
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

from toolkit._timing import timed
from toolkit.jobs._catalog import load_pipeline
from toolkit.jobs._figures import training_curves
from toolkit.jobs._job import Job
from toolkit.jobs._report import TRAINING_FIGURE
from toolkit.onnx import export, load, validate
from toolkit.onnx._validate import graph_checks, graph_feed
from toolkit.serving import read_metadata


@dataclass
class Outcome:
    """One row of the ``toolkit run`` table and of ``results.json``.

    ``status`` is "FAIL" when the pipeline raised, its export failed validation, its score
    is worse than its floor or one of its requirements does not hold, else "ok"; ``verdict``
    says whether the model beats, ties with or loses to its baseline (a loss is shown in
    capitals, and does not fail).
    """

    name: str
    model: str = ""
    metric: str = ""
    score: float = math.nan
    greater_is_better: bool = True
    floor: float | None = None
    baseline: str = ""
    baseline_score: float = math.nan
    verdict: str = ""
    details: str = ""
    onnx_max_error: float = math.nan
    latency_ms: float = math.nan
    seconds: float = 0.0
    status: str = "FAIL"
    path: str = ""
    problem: str = ""

    def record(self, job: Job) -> None:
        """Copy the job's figures into the row."""
        self.model = model_name(job.model)
        self.metric, self.score, self.greater_is_better, self.floor = (
            job.metric,
            float(job.score),
            job.greater_is_better,
            job.floor,
        )
        self.baseline, self.baseline_score, self.verdict = job.baseline.name, float(job.baseline.score), job.verdict
        self.details = job.details
        self.problem = "; ".join(job.unmet)

    def to_json(self) -> dict:
        """The row with NaN as null (JSON has no NaN)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def model_name(model) -> str:
    steps = getattr(model, "steps", None)
    return " > ".join(type(step).__name__ for _, step in steps) if steps else type(model).__name__


def batch1_latency_ms(folder: Path, estimator, X_test, repeats: int = 200) -> float:
    """Median wall time of one onnxruntime run of the export's first graph on a single row
    (for a VAE the encoder, for a diffusion model the denoiser), in milliseconds."""
    metadata = read_metadata(folder)
    graph = next(iter(metadata["graphs"]))
    model = load(folder, graph=graph, intra_op_num_threads=1)
    row = X_test.iloc[:1] if hasattr(X_test, "iloc") else X_test[:1]
    feed = model.prepare(graph_feed(model, graph_checks(estimator, metadata)[graph].inputs(row)))
    return timed(lambda: model.session.run(None, feed), repeats=repeats, warmup=10)[1] * 1e3


def run_job(name: str, path: Path, out: Path, *, full: bool = False) -> Outcome:
    """Run one pipeline file, export and validate its model; never raises an Exception
    (a KeyboardInterrupt passes through)."""
    outcome = Outcome(name)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # A pipeline's budgets are chosen on purpose: a net that would train longer is not news
            # in the run's output (a developer tuning one sees the warning in a plain fit).
            warnings.simplefilter("ignore", ConvergenceWarning)
            job = load_pipeline(path).run(full=full)
        outcome.record(job)
        folder = out / name
        export(job.model, folder, **job.export_options)
        if job.plot is not None:
            job.plot(folder)
        history = getattr(job.model[-1] if hasattr(job.model, "steps") else job.model, "history_", None)
        if isinstance(history, list) and history:  # a net's epochs
            training_curves(history, folder / TRAINING_FIGURE)
        report = validate(job.model, folder, job.X_test, raise_on_failure=False)
        outcome.onnx_max_error = report.max_abs_error
        outcome.latency_ms = batch1_latency_ms(folder, job.model, job.X_test)
        outcome.path = str(folder)
        if not report.passed:
            outcome.problem = str(report)
        outcome.status = "FAIL" if outcome.problem else "ok"
    except Exception as error:  # one failing pipeline must not hide the others' rows
        outcome.problem = traceback.format_exc()
        if isinstance(error, ModuleNotFoundError):
            hint = f'{error.name} is not installed; the pipelines need: pip install "toolkit[pipelines]"'
            outcome.problem = f"{hint}\n{outcome.problem}"

    outcome.seconds = time.perf_counter() - started
    return outcome
