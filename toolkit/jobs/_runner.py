"""``toolkit run``: run pipelines, export and validate their models, print a row as each finishes.

Each pipeline's ``run(full)`` fits its model and a baseline. The runner then exports the
model, validates the export on the held-out rows, times onnxruntime at batch 1, prints the
pipeline's row to ``stream`` and rewrites ``<out>/results.json`` with every row finished so
far. Progress (which pipeline starts, the estimators' tqdm bars) goes to ``progress``
(stderr), so that stdout holds the table alone. Ctrl-C stops the run cleanly: the finished
rows are printed once more as a table and stay in ``results.json``.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import multiprocessing
import os
import signal
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from toolkit._timing import timed
from toolkit._version import __version__
from toolkit.jobs._catalog import describe, discover, load_pipeline
from toolkit.jobs._figures import training_curves
from toolkit.jobs._job import VERDICTS, Job
from toolkit.jobs._report import TRAINING_FIGURE, ReportError, build_report
from toolkit.onnx import export, load, validate
from toolkit.onnx._files import atomic_write_files, json_bytes
from toolkit.onnx._validate import graph_checks, graph_feed
from toolkit.serving import read_metadata

RESULTS_FILE = "results.json"


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


@dataclass
class Run:
    """The rows of one ``toolkit run``, and the pipeline Ctrl-C stopped (None when none did)."""

    outcomes: list[Outcome] = field(default_factory=list)
    interrupted_during: str | None = None

    @property
    def exit_code(self) -> int:
        """130 when interrupted (the shell's code for SIGINT), 1 when a row failed, else 0."""
        if self.interrupted_during is not None:
            return 130
        return 1 if any(o.status == "FAIL" for o in self.outcomes) else 0


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
        job = load_pipeline(path).run(full=full)
        outcome.record(job)
        folder = out / name
        export(job.model, folder, **job.export_options)
        if job.plot is not None:
            job.plot(folder)
        history = getattr(job.model[-1] if hasattr(job.model, "steps") else job.model, "history_", None)
        if isinstance(history, list) and history:  # a net's epochs (ARForecaster's history_ is its series)
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


# ------------------------------------------------------------------------------ the table
COLUMNS = (  # (header, width while streaming, cell)
    ("pipeline", 0, lambda o: o.name),
    ("status", 6, lambda o: o.status),
    ("score", 26, lambda o: f"{o.metric} {o.score:.5g}" if o.metric else ""),
    (
        "baseline",
        34,
        lambda o: (
            f"{o.baseline} {o.baseline_score:.5g} ({o.verdict.upper() if o.verdict == 'loses' else o.verdict})"
            if o.baseline
            else ""
        ),
    ),
    ("model", 32, lambda o: o.model),
    ("onnx err", 8, lambda o: f"{o.onnx_max_error:.1e}"),
    ("ort b=1 ms", 10, lambda o: f"{o.latency_ms:.3f}"),
    ("seconds", 7, lambda o: f"{o.seconds:.1f}"),
)


def format_line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()


def streaming_widths(names: list[str]) -> list[int]:
    """Column widths fixed before any row exists (a longer cell pushes the rest of its row)."""
    return [
        max(width, len(header), *(map(len, names) if header == "pipeline" else [0])) for header, width, _ in COLUMNS
    ]


def header_lines(widths: list[int]) -> list[str]:
    return [format_line([h for h, _, _ in COLUMNS], widths), "  ".join("-" * w for w in widths)]


def row_line(outcome: Outcome, widths: list[int]) -> str:
    return format_line([cell(outcome) for _, _, cell in COLUMNS], widths)


def format_table(outcomes: list[Outcome]) -> str:
    """The rows as an aligned table (widths fitted to the cells), header included."""
    cells = [[cell(o) for _, _, cell in COLUMNS] for o in outcomes]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, (h, _, _) in enumerate(COLUMNS)]
    return "\n".join([*header_lines(widths), *(format_line(row, widths) for row in cells)])


def summary_line(run: Run, total: int, seconds: float) -> str:
    failed = [o.name for o in run.outcomes if o.status == "FAIL"]
    verdicts = {v: [o.name for o in run.outcomes if o.verdict == v] for v in VERDICTS}
    text = f"{len(run.outcomes) - len(failed)} ok, {len(failed)} failed" + (f" ({', '.join(failed)})" if failed else "")
    text += "; against the baselines: " + ", ".join(f"{verdict} {len(names)}" for verdict, names in verdicts.items())
    text += f" ({', '.join(verdicts['loses'])})" if verdicts["loses"] else ""
    if run.interrupted_during is not None:
        finished = f"{len(run.outcomes)} of {total} pipelines finished in {seconds:.0f} s"
        return f"interrupted during {run.interrupted_during}: {finished}: {text}"
    return f"{total} pipelines in {seconds:.0f} s: {text}"


# ------------------------------------------------------------------------------ the run
@dataclass
class ResultsFile:
    """``<out>/results.json`` of one run: every finished row so far, rewritten atomically after
    each, so that a failure or Ctrl-C later in the run keeps it."""

    out: Path
    setting: str
    total: int
    started: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    )

    def save(self, run: Run, *, finished: bool) -> None:
        document = {
            "toolkit_version": __version__,
            "setting": self.setting,
            "started": self.started,
            "finished": finished,
            "interrupted_during": run.interrupted_during,
            "pipelines_requested": self.total,
            "rows": [o.to_json() for o in run.outcomes],
        }
        atomic_write_files(self.out, {RESULTS_FILE: json_bytes(document)})


# ------------------------------------------------------------------------------ the workers
def default_jobs() -> int:
    """Pipelines run at a time: two where there are two cores or more. Their nets are small, and
    torch uses a second thread on one poorly: on 2 cores, two pipelines of one thread each
    finish sooner than one after the other with two threads each (shapes_captioning +
    digits_ddpm: 155 s of CPU with one thread, 221 s with two)."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


class InProcess:
    """The executor of a run of one job at a time: each job runs in this process, inside
    ``submit`` (as the run did before it had workers)."""

    def submit(self, function, *args, **kwargs) -> Future:
        future = Future()
        future.set_result(function(*args, **kwargs))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def job_outcome(name: str, future: Future) -> Outcome:
    """A finished job's row; a FAIL row naming the cause when its worker process died (killed
    for memory, a crash in native code), which takes the pool and the jobs after it down too."""
    try:
        return future.result()
    except BrokenProcessPool as error:
        return Outcome(name, problem=f"the worker process running {name} died ({error})")


def start_worker(threads: int) -> None:
    """A worker process's set-up: torch's threads, no progress bars (two workers' bars would
    garble each other; the start and result lines remain), and SIGINT left to the parent,
    which stops the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TQDM_DISABLE="1")
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)


@contextlib.contextmanager
def job_executor(jobs: int):
    """(executor, slots): in this process for one job at a time, else ``jobs`` worker
    processes (spawned: no fork of a process that may hold torch's threads), each with its
    share of the cores."""
    if jobs <= 1:
        yield InProcess(), 1
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(jobs, mp_context=context, initializer=start_worker, initargs=(threads,))
    try:
        yield executor, jobs
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def run_all(
    names: list[str],
    directory: Path,
    out: Path,
    *,
    full: bool = False,
    jobs: int | None = None,
    stream: TextIO | None = None,
    progress: TextIO | None = None,
) -> Run:
    """Run the named pipelines (all when ``names`` is empty), streaming the table.

    Parameters
    ----------
    names : list of str
        Pipeline names (file stems in ``directory``); empty means all of them.
    directory : Path
        The folder of pipeline files.
    out : Path
        The export root: one folder per pipeline, and ``results.json``.
    full : bool, default=False
        The pipelines' full-size settings instead of the quick ones.
    jobs : int, optional
        Pipelines run at a time, each in a worker process with its share of the cores (default:
        :func:`default_jobs`; 1: one after the other in this process, with progress bars).
        Rows stream as pipelines finish; results.json and the closing table keep run order.
    stream : text file, optional
        Where the table goes (default: the current ``sys.stdout``).
    progress : text file, optional
        Where start lines go (default: the current ``sys.stderr``, beside tqdm's bars).

    Returns
    -------
    Run
        The finished rows; ``interrupted_during`` names the pipelines Ctrl-C stopped.

    Raises
    ------
    ValueError
        When a name is not a pipeline in ``directory``.
    """
    stream, progress = stream or sys.stdout, progress or sys.stderr
    available = discover(directory)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown pipeline(s) {unknown}; available: {sorted(available)}")
    selected = names or list(available)
    out, setting = Path(out), "full" if full else "quick"
    started = time.perf_counter()
    run, results = Run(), ResultsFile(out, setting, len(selected))
    results.save(run, finished=False)
    print(
        f"toolkit run: {len(selected)} pipeline(s), {setting} setting, exports in {out}/ (rows also in "
        f"{out / RESULTS_FILE})",
        file=stream,
    )
    widths = streaming_widths(selected)
    print("\n".join(header_lines(widths)), file=stream, flush=True)
    order = {name: position for position, name in enumerate(selected)}
    infos = {name: describe(available[name]) for name in selected}
    # The longest first (their catalogued times), so that no long pipeline starts last while the
    # other worker idles: a run's length is then about its work over the workers.
    queue = sorted(enumerate(selected, 1), key=lambda item: -infos[item[1]].seconds.get(setting, 0.0))
    running = {}
    with job_executor(min(jobs or default_jobs(), len(selected))) as (executor, slots):
        try:
            while queue or running:
                while queue and len(running) < slots:
                    index, name = queue.pop(0)
                    info = infos[name]
                    expected = f", about {info.seconds[setting]:.0f} s on 2 cores" if setting in info.seconds else ""
                    print(
                        f"[{index}/{len(selected)}] {name}: {info.summary} ({setting}{expected})",
                        file=progress,
                        flush=True,
                    )
                    running[name] = None  # before submit: an in-process job runs inside it
                    running[name] = executor.submit(run_job, name, available[name], out, full=full)
                done = wait(list(running.values()), return_when=FIRST_COMPLETED).done
                for name in [n for n, future in running.items() if future in done]:
                    outcome = job_outcome(name, running.pop(name))
                    run.outcomes.append(outcome)
                    run.outcomes.sort(key=lambda o: order[o.name])  # results.json and the closing table in run order
                    print(row_line(outcome, widths), file=stream)
                    for text in filter(None, (outcome.details, outcome.problem)):
                        print("\n".join("    " + line for line in text.rstrip().splitlines()), file=stream)
                    stream.flush()
                    results.save(run, finished=False)
        except KeyboardInterrupt:
            run.interrupted_during = ", ".join(running) or "(between pipelines)"
            executor.shutdown(wait=False, cancel_futures=True)
            for child in multiprocessing.active_children():  # a job cut short: its exports are atomic
                child.terminate()
    results.save(run, finished=run.interrupted_during is None)
    try:
        report = f"; the report: {build_report(out)}"
    except ReportError as error:
        report = f"; no report: {error}"
    print(
        ("\n" if run.interrupted_during is None else "\n\n")
        + summary_line(run, len(selected), time.perf_counter() - started)
        + report,
        file=stream,
    )
    if run.outcomes:
        print(format_table(run.outcomes), file=stream, flush=True)
    return run
