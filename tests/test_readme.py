"""The README's commands, and the user guide's serving walk-through (``toolkit run``, ``toolkit
serve``, the curl calls) run as written on a free port. (The examples the README once held are
the documentation's gallery, which its build runs: tests/test_docs.py.)"""

import json
import re
import shlex
import subprocess
import time
from pathlib import Path

import httpx

from tests._server import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
SERVING = README.parent / "docs" / "user_guide" / "serving.md"


def blocks(language: str, page: Path = README) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), flags=re.S | re.M)


def test_the_readme_starts_with_its_two_commands_and_says_how_to_build_the_docs():
    first, docs = blocks("bash")
    assert first.splitlines()[0].startswith('pip install torch==2.13.0 -e ".[train,serve,pipelines]" && toolkit run')
    assert first.splitlines()[1] == (README.parent / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert "sphinx-build -W" in docs


def test_the_architecture_names_every_package_folder():
    """The README's Layout section points to ARCHITECTURE.md, whose layers name every subpackage."""
    layers = (README.parent / "ARCHITECTURE.md").read_text().split("## Layers", 1)[1].split("\n## ", 1)[0]
    package = README.parent / "toolkit"
    folders = sorted(p.parent.name for p in package.glob("*/__init__.py"))
    assert folders and all(re.search(rf"\b{folder}/", layers) for folder in folders), folders


def commands(block: str) -> list[str]:
    """The block's commands: comments dropped, continuation lines (indented) joined."""
    lines = []
    for line in block.splitlines():
        if line.startswith("  ") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return [re.sub(r"\s+#[^'\"]*$", "", line).strip() for line in lines if line.strip()]


def test_serving_walkthrough_runs_as_written(tmp_path):
    start, queries = (commands(b) for b in blocks("bash", SERVING)[:2])
    assert start[0] == "toolkit run breast_cancer_mlp wine_gmm" and start[1] == "toolkit serve exports/ --port 8000"
    subprocess.run(shlex.split(start[0]), cwd=tmp_path, check=True, capture_output=True, timeout=300)
    port = str(free_port())
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(
        shlex.split(start[1].replace("8000", port)), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.time() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        answers = [
            subprocess.run(["bash", "-c", q.replace("8000", port)], capture_output=True, text=True, check=True).stdout
            for q in queries
        ]
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    metadata, infer, predict, metrics = answers
    assert json.loads(metadata)["inputs"] == [{"name": "X", "datatype": "FP64", "shape": [-1, 13]}]
    label = next(o for o in json.loads(infer)["outputs"] if o["name"] == "label")
    assert label["shape"] == [1] and label["datatype"] == "INT64"
    assert json.loads(predict)["outputs"]["label"] == label["data"]  # the same row, by column name
    assert 'toolkit_requests_total{code="200",endpoint="predict",model="wine_gmm"} 1.0' in metrics
    served = (tmp_path / "serve.log").read_text()
    assert "wine_gmm: X FP64 [-1, 13] (13 named columns: /predict takes records) -> label INT64 [-1]" in served
