"""``toolkit.serving`` must work without torch (a serving install has none)."""

import subprocess
import sys


def test_serving_does_not_import_torch_or_sklearn():
    code = (
        "import sys, toolkit.serving; "
        "bad = [m for m in ('torch', 'sklearn', 'toolkit.onnx', 'toolkit.neural_network') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
