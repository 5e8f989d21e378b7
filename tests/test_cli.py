"""The ``toolkit`` command: ``toolkit run`` streams its table and keeps results.json; listing,
help and version are instant; ``toolkit serve`` says what it needs."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests._warnings import SHORT_TRAINING
from toolkit.cli import build_parser, main

pytestmark = SHORT_TRAINING

JOB_HEADER = """
import numpy as np
from toolkit.jobs import Baseline, Job
from toolkit.neural_network import MLPClassifier

def fitted(epochs=1):
    X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    y = np.arange(40) % 2
    return MLPClassifier((4,), max_epochs=epochs, random_state=0).fit(X, y), X, y
"""


COIN_JOB = """
def run(full=False):
    model, X, y = fitted()
    return Job(model, X, "accuracy", model.score(X, y), Baseline("coin", 0.5))
"""


def write_jobs(folder: Path, jobs: dict[str, str]) -> Path:
    folder.mkdir()
    for name, body in jobs.items():
        (folder / f"{name}.py").write_text(JOB_HEADER + textwrap.dedent(body))
    return folder


def test_run_one_pipeline_exports_and_validates(tmp_path, capsys):
    assert main(["run", "breast_cancer_mlp", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "[1/1] breast_cancer_mlp: StandardScaler + MLPClassifier" in err  # the start line, beside the bars
    row = next(line for line in out.splitlines() if line.startswith("breast_cancer_mlp"))
    assert " ok " in row and "StandardScaler > MLPClassifier" in row and "logistic regression" in row
    metadata = json.loads((tmp_path / "breast_cancer_mlp" / "model.json").read_text())
    assert metadata["validation"]["passed"] is True
    assert metadata["graphs"]["model"]["feature_names"][0] == "mean radius"
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["finished"] is True and results["setting"] == "quick"
    [saved] = results["rows"]
    assert (
        saved["name"] == "breast_cancer_mlp" and saved["status"] == "ok" and saved["baseline"] == "logistic regression"
    )


def test_unknown_pipeline_is_a_usage_error(tmp_path, capsys):
    assert main(["run", "no_such_job", "--out", str(tmp_path)]) == 2
    assert "unknown pipeline(s) ['no_such_job']" in capsys.readouterr().err


def test_rows_stream_and_a_loss_or_a_failure_is_said(tmp_path, capsys):
    jobs = write_jobs(
        tmp_path / "jobs",
        {
            "a_loses": """
                def run(full=False):
                    model, X, y = fitted()
                    return Job(model, X, "accuracy", model.score(X, y), Baseline("a perfect oracle", 1.0))
            """,
            "b_below_floor": """
                def run(full=False):
                    model, X, y = fitted()
                    return Job(model, X, "error", 0.5, Baseline("guessing", 0.5), greater_is_better=False, floor=0.1)
            """,
            "c_broken": "def run(full=False):\n    raise RuntimeError('data missing')\n",
        },
    )
    assert main(["run", "--pipelines", str(jobs), "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line
        for line in out.splitlines()
        if line.split() and line.split()[0] in ("a_loses", "b_below_floor", "c_broken")
    }
    assert " ok " in rows["a_loses"] and "a perfect oracle 1 (LOSES)" in rows["a_loses"]
    assert " FAIL " in rows["b_below_floor"] and "guessing 0.5 (ties)" in rows["b_below_floor"]
    assert "error 0.5 is worse than the floor 0.1" in out
    assert " FAIL " in rows["c_broken"] and "RuntimeError: data missing" in out
    assert "3 pipelines in" in out and "1 ok, 2 failed (b_below_floor, c_broken)" in out and "loses 1 (a_loses)" in out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["name"], r["status"], r["verdict"]) for r in results["rows"]] == [
        ("a_loses", "ok", "loses"),
        ("b_below_floor", "FAIL", "ties"),
        ("c_broken", "FAIL", ""),
    ]


SLEEPY_JOB = """
import time
from pathlib import Path

def run(full=False):
    started = time.time()
    time.sleep({seconds})
    Path({marks!r}).joinpath(Path(__file__).stem).write_text(f"{{started}} {{time.time()}}")
    model, X, y = fitted()
    return Job(model, X, "accuracy", model.score(X, y), Baseline("coin", 0.5))
"""


def test_worker_processes_show_no_progress_bars_and_one_pipeline_at_a_time_does(tmp_path, capfd):
    """Two workers' bars would garble each other on the terminal, so toolkit run's workers hide
    them (tqdm, imported in a worker before it turns bars off, does not read TQDM_DISABLE again:
    the bars showed); run one at a time in this process, the pipelines show theirs."""
    refit = "model, X, y = fitted()\n    model.set_params(verbose=True).fit(X, y)"
    verbose = COIN_JOB.replace("model, X, y = fitted()", refit)
    jobs = write_jobs(tmp_path / "jobs", {"a": verbose, "b": verbose})
    assert main(["run", "--pipelines", str(jobs), "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    assert "epoch" not in capfd.readouterr().err
    assert main(["run", "--pipelines", str(jobs), "--out", str(tmp_path / "one"), "--jobs", "1"]) == 0
    assert "epoch/s" in capfd.readouterr().err


def test_pipelines_run_two_at_a_time_and_a_worker_that_dies_is_a_failed_row(tmp_path, capsys):
    """Two workers: the two pipelines' sleeps overlap in time, and a pipeline whose process is
    killed gets a FAIL row that says so instead of taking the run down."""
    marks = tmp_path / "marks"
    marks.mkdir()
    sleepy = SLEEPY_JOB.format(seconds=3, marks=str(marks))
    jobs = write_jobs(tmp_path / "jobs", {"a": sleepy, "b": sleepy})
    assert main(["run", "--pipelines", str(jobs), "--out", str(tmp_path / "out"), "--jobs", "2"]) == 0
    (a_start, a_end), (b_start, b_end) = (map(float, (marks / n).read_text().split()) for n in "ab")
    assert a_start < b_end and b_start < a_end  # they ran at the same time

    killed = "import os, signal\n\ndef run(full=False):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    dying = write_jobs(tmp_path / "dying", {"fine": SLEEPY_JOB.format(seconds=0, marks=str(marks)), "killed": killed})
    assert main(["run", "--pipelines", str(dying), "--out", str(tmp_path / "out2"), "--jobs", "2"]) == 1
    assert "the worker process running killed died" in capsys.readouterr().out
    results = json.loads((tmp_path / "out2" / "results.json").read_text())
    assert [r["name"] for r in results["rows"]] == ["fine", "killed"] and results["finished"] is True


def test_ctrl_c_keeps_the_finished_rows(tmp_path):
    """SIGINT during the third pipeline: exit 130, the two finished rows printed and in results.json."""
    jobs = write_jobs(
        tmp_path / "jobs",
        {
            "first": COIN_JOB,
            "second": COIN_JOB,
            "third": "import time\n\ndef run(full=False):\n    time.sleep(120)\n",
        },
    )
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli", "run", "--pipelines", str(jobs), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a test run started as a shell's background job inherits SIGINT ignored, and so would
        # the child (Python then installs no KeyboardInterrupt handler): give it the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {"rows": []}
        if len(results["rows"]) == 2:
            break
        time.sleep(0.2)
    time.sleep(0.5)  # into the third pipeline's sleep
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted during third: 2 of 3 pipelines finished" in stdout
    assert stdout.count("\nfirst ") == 2 and stdout.count("\nsecond ") == 2  # streamed, then in the closing table
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results["rows"]] == ["first", "second"]
    assert results["interrupted_during"] == "third" and results["finished"] is False


def test_list_reads_the_catalogue_without_importing_torch_or_onnx(tmp_path):
    """Listing stays instant because it imports no training library (its time is not asserted:
    wall clocks belong to benchmarks)."""
    code = (
        "import sys; from toolkit.cli import main; main(['run', '--list']); "
        "assert not {'torch', 'onnx', 'sklearn'} & set(sys.modules), sorted(sys.modules)"
    )
    listing = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    lines = listing.stdout.splitlines()
    assert len(lines) == len(list((Path(__file__).parents[1] / "pipelines").glob("[!_]*.py")))
    ddpm = next(line for line in lines if line.startswith("digits_ddpm"))
    assert "quick" in ddpm and "full" in ddpm and "U-Net DDPM on the 8x8 digits" in ddpm


def test_version_and_plain_help(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == "toolkit 0.1.0"
    for argv in (["--help"], ["run", "--help"], ["serve", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "``" not in text and ":func:" not in text, text


def test_every_option_has_a_help_line():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict)).choices
    for command in [parser, *subparsers.values()]:
        for action in command._actions:
            assert action.help, f"{command.prog} {action.option_strings or action.dest} has no help"


def test_serve_without_its_extras_says_what_to_install(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "prometheus_client" else real(name, *a)
    )
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == 'toolkit serve needs the [serve] extras (prometheus_client missing): pip install "toolkit[serve]"\n'


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_results_file_has_the_umask_mode(tmp_path):
    jobs = write_jobs(
        tmp_path / "jobs",
        {
            "one": COIN_JOB,
        },
    )
    previous = os.umask(0o022)
    try:
        assert main(["run", "--pipelines", str(jobs), "--out", str(tmp_path / "out")]) == 0
    finally:
        os.umask(previous)
    for path in [
        tmp_path / "out" / "results.json",
        tmp_path / "out" / "one" / "model.onnx",
        tmp_path / "out" / "one" / "model.json",
    ]:
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_a_pipeline_missing_a_package_says_which_extra_to_install(tmp_path, capsys):
    jobs = write_jobs(
        tmp_path / "jobs", {"needs_more": "import no_such_package_here\n\ndef run(full=False):\n    pass\n"}
    )
    assert main(["run", "--pipelines", str(jobs), "--out", str(tmp_path / "out")]) == 1
    assert (
        'no_such_package_here is not installed; the pipelines need: pip install "toolkit[pipelines]"'
        in capsys.readouterr().out
    )


def test_serve_options_default_to_the_server_settings():
    import dataclasses

    from toolkit.cli import build_parser
    from toolkit.serving import ServerSettings

    args = build_parser().parse_args(["serve"])
    defaults = {field.name: getattr(args, field.name) for field in dataclasses.fields(ServerSettings)}
    assert ServerSettings(**defaults) == ServerSettings()


def test_stopping_the_worker_pool_ends_its_workers_and_no_other_child(tmp_path):
    """What Ctrl-C does to a two-worker run: the pool's processes end; a process the same
    parent started for something else (a Dask cluster's, say) keeps running."""
    import multiprocessing
    from concurrent.futures import wait

    from toolkit.jobs._workers import WorkerPool

    other = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,))
    other.start()
    pool = WorkerPool(2, threads=1)
    try:
        running = [pool.submit(time.sleep, 60) for _ in range(2)]
        queued = pool.submit(os.getpid)  # behind the sleeps: cancelled, or failed with the pool
        deadline = time.time() + 60
        while time.time() < deadline and len(pool.worker_pids()) < 2:
            time.sleep(0.05)
        workers = pool.worker_pids()
        assert len(workers) == 2 and other.pid not in workers
        pool.stop()
        wait([*running, queued], timeout=30)
        assert all(f.done() for f in [*running, queued]) and not any(f.cancelled() for f in running)
        assert other.is_alive()
    finally:
        pool.close()
        other.terminate()
        other.join()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_pipelines_convergence_warning_stays_out_of_the_run(tmp_path, jobs):
    """A pipeline's net stops at its budget on purpose (one epoch here, which warns in a plain
    fit): the run's terminal output holds its rows, not that warning, in this process or in workers."""
    folder = write_jobs(tmp_path / "jobs", {"brief": COIN_JOB})
    run = subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "run", "--pipelines", str(folder), "--out", str(tmp_path / "out")]
        + ["--jobs", jobs],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "default"},
    )
    assert run.returncode == 0, run.stderr
    assert "brief" in run.stdout
    assert "Warning" not in run.stdout + run.stderr, run.stderr
