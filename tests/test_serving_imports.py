"""``toolkit.serving`` must work without torch (a serving install has none)."""

import subprocess
import sys


def test_serving_does_not_import_torch_or_sklearn():
    code = (
        "import sys, toolkit.serving, toolkit.serving._server, toolkit.cli; "
        "bad = [m for m in ('torch', 'sklearn', 'toolkit.onnx', 'toolkit.neural_network') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_serving_install_does_not_pull_torch():
    """The base dependencies and the "serve" extra hold no training library."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    serving = [*project["dependencies"], *project["optional-dependencies"]["serve"]]
    heavy = ("torch", "scikit-learn", "skl2onnx", "statsmodels", "onnxscript")
    assert not [r for r in serving if r.split(">")[0].split("=")[0].strip() in heavy]
    assert any(r.startswith("torch") for r in project["optional-dependencies"]["train"])
