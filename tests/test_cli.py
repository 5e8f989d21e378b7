"""``toolkit run``: pipelines are run, exported, validated and reported as a table."""

import json
import textwrap

from toolkit.cli import main


def test_run_one_pipeline_exports_and_validates(tmp_path, capsys):
    assert main(["run", "breast_cancer_mlp", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "breast_cancer_mlp" in table and "StandardScaler > MLPClassifier" in table and " ok " in table
    metadata = json.loads((tmp_path / "breast_cancer_mlp" / "model.json").read_text())
    assert metadata["validation"]["passed"] is True
    assert metadata["graphs"]["model"]["feature_names"][0] == "mean radius"


def test_unknown_pipeline_is_a_usage_error(tmp_path, capsys):
    assert main(["run", "no_such_job", "--out", str(tmp_path)]) == 2
    assert "unknown pipeline(s) ['no_such_job']" in capsys.readouterr().err


def test_a_job_below_its_floor_or_raising_fails_the_run(tmp_path, capsys):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "weak.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from toolkit.jobs import Job
            from toolkit.neural_network import MLPClassifier

            def run(full=False):
                X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
                y = np.arange(40) % 2
                model = MLPClassifier((4,), max_epochs=1, random_state=0).fit(X, y)
                return Job(model, X, "accuracy", model.score(X, y), floor=1.01)
            """
        )
    )
    (jobs / "broken.py").write_text("def run(full=False):\n    raise RuntimeError('data missing')\n")
    assert main(["run", "--pipelines", str(jobs), "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "< floor 1.01" in out and "RuntimeError: data missing" in out
    assert out.count("FAIL") == 2
