"""Finding pipeline files and reading what they say about themselves.

A pipeline file in ``pipelines/`` has a module docstring whose first line says what it does,
a literal ``SECONDS = {"quick": ..., "full": ...}`` (its measured wall time on 2 cores), and
a function ``run(full: bool = False) -> Job``. Listing reads the docstring and ``SECONDS``
from the file's syntax tree without importing it, so ``toolkit run --list`` loads no torch.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class PipelineInfo:
    """What ``toolkit run --list`` shows of one pipeline file.

    Parameters
    ----------
    name : str
        The file's stem.
    path : Path
    summary : str
        The first line of the module docstring ("" without one).
    seconds : dict
        ``{"quick": float, "full": float}`` from the file's ``SECONDS`` literal ({} without one).
    """

    name: str
    path: Path
    summary: str = ""
    seconds: dict = field(default_factory=dict)


def discover(directory: Path) -> dict[str, Path]:
    """Pipeline files in ``directory`` (``*.py`` not starting with ``_``), by name."""
    return {path.stem: path for path in sorted(Path(directory).glob("*.py")) if not path.stem.startswith("_")}


def describe(path: Path) -> PipelineInfo:
    """The docstring's first line and the ``SECONDS`` literal of a pipeline file, unimported."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    docstring = ast.get_docstring(tree) or ""
    seconds = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SECONDS" for t in node.targets):
            seconds = ast.literal_eval(node.value)
    return PipelineInfo(Path(path).stem, Path(path), " ".join(docstring.split("\n\n")[0].split()), seconds)


def import_file(path: Path) -> ModuleType:
    """Import a Python file by path (pipelines and their helpers are not a package)."""
    spec = importlib.util.spec_from_file_location(f"toolkit_pipeline_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look a module up by its name
    spec.loader.exec_module(module)
    return module


def load_pipeline(path: Path) -> ModuleType:
    """Import a pipeline file by path (the package never imports ``pipelines/`` by name)."""
    module = import_file(path)
    if not callable(getattr(module, "run", None)):
        raise TypeError(f"{path} defines no run(full=False) function")
    return module
