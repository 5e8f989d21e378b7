"""What the package imports is what pyproject.toml declares, and the private scikit-learn API
toolkit relies on is where toolkit expects it."""

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

import toolkit

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "prometheus_client": "prometheus-client",
    "grpc": "grpcio",
    "grpc_tools": "grpcio-tools",
    "google": "protobuf",
}
# Declared and never imported by name: torch.onnx's exporter imports onnxscript itself.
IMPORTED_BY_A_DEPENDENCY = {"onnxscript"}


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements if not r.startswith("toolkit[")}


def package_imports() -> set[str]:
    roots = set()
    for path in Path(toolkit.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots.add(node.module.split(".")[0])
    return {DISTRIBUTIONS.get(r, r) for r in roots - set(sys.stdlib_module_names) - {"toolkit", "__future__"}}


def test_every_import_of_the_package_is_declared_and_every_package_dependency_imported():
    extras = PYPROJECT["project"]["optional-dependencies"]
    declared = requirement_names(
        PYPROJECT["project"]["dependencies"] + extras["train"] + extras["serve"] + extras["dask"]
    )
    imported = package_imports()
    assert imported - declared == set(), "imported by toolkit/ but not declared in the base, [train], [serve] or [dask]"
    assert declared - imported - IMPORTED_BY_A_DEPENDENCY == set(), "declared for the package but never imported by it"


def test_what_only_pipelines_tests_docs_and_benchmarks_use_is_an_extra_of_its_own():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert requirement_names(extras["pipelines"]) == {"statsmodels"}
    assert "statsmodels" not in package_imports()
    assert "matplotlib" in requirement_names(extras["train"])  # toolkit run's report draws with it
    assert extras["dev"][0] == "toolkit[train,serve,pipelines,dask,docs]"
    assert "sphinx" in requirement_names(extras["docs"])  # the tests build the documentation


def test_scikit_learns_private_parameter_validation_is_where_toolkit_expects_it():
    """toolkit/_param_validation.py imports Interval and StrOptions from a private module, and the
    estimators call BaseEstimator._validate_params: a scikit-learn that moves either fails here."""
    from toolkit._param_validation import Interval, InvalidParameterError, StrOptions
    from toolkit.timeseries import ARForecaster

    assert Interval and StrOptions
    with pytest.raises(InvalidParameterError, match="'trend' parameter of ARForecaster must be a str among"):
        ARForecaster(trend="quadratic").fit([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


def test_license_and_changelog_ship_with_the_source():
    assert "BSD 3-Clause License" in (ROOT / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == "BSD-3-Clause"
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
