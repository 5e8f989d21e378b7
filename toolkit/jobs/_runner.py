"""``toolkit run``: run pipelines, export and validate their models, print a row as each finishes.

Each pipeline's ``run(full)`` fits its model and a baseline; :func:`~toolkit.jobs._outcome.run_job`
then exports the model, validates the export on the held-out rows and times onnxruntime at
batch 1. The runner starts the pipelines (:mod:`toolkit.jobs._workers`), prints each row to
``stream`` as it finishes (:mod:`toolkit.jobs._table`) and rewrites ``<out>/results.json`` with
every row finished so far. Progress (which pipeline starts, the estimators' tqdm bars) goes to
``progress`` (stderr), so that stdout holds the table alone. Ctrl-C stops the run cleanly: the
finished rows are printed once more as a table and stay in ``results.json``.
"""

from __future__ import annotations

import datetime
import sys
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from toolkit._version import __version__
from toolkit.jobs._catalog import describe, discover
from toolkit.jobs._outcome import Outcome, run_job
from toolkit.jobs._report import ReportError, build_report
from toolkit.jobs._table import format_table, header_lines, row_line, streaming_widths, summary_line
from toolkit.jobs._workers import PIPELINE_THREADS, default_jobs, job_executor, job_outcome
from toolkit.onnx._files import atomic_write_files, json_bytes

RESULTS_FILE = "results.json"


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


def run_all(
    names: list[str],
    directory: Path,
    out: Path,
    *,
    full: bool = False,
    jobs: int | None = None,
    threads: int | None = None,
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
        Pipelines run at a time, each in a worker process (default: :func:`default_jobs`, as many
        as the CPU budget holds at ``threads`` each; 1: one after the other in this process, with
        progress bars). Rows stream as pipelines finish; results.json and the closing table keep
        run order.
    threads : int, optional
        torch threads per pipeline (default: :data:`PIPELINE_THREADS`, one).
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
        When a name is not a pipeline in ``directory``, or ``jobs`` / ``threads`` is below 1.
    """
    for option, value in (("jobs", jobs), ("threads", threads)):
        if value is not None and value < 1:
            raise ValueError(f"--{option} must be at least 1, got {value}")
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
    threads = threads or PIPELINE_THREADS
    with job_executor(min(jobs or default_jobs(threads), len(selected)), threads) as (executor, slots):
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
            executor.stop()
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
