"""``validate``: run an exported model under onnxruntime and compare it with its estimator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import Pipeline

from toolkit._export_spec import OutputSpec, inference_specs
from toolkit.onnx._files import atomic_write_files, json_bytes
from toolkit.onnx._precision import FLOAT16_TOLERANCE, accuracy_budget_of
from toolkit.serving import METADATA_FILE, OnnxModel, read_metadata

DEFAULT_TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
# GEMMs on the CUDA provider differ from torch's near the 4th decimal (microsoft/onnxruntime#21220).
PROVIDER_TOLERANCE = {"CUDAExecutionProvider": {"atol": 1e-3, "rtol": 1e-3}}
DEFAULT_BATCH_SIZES = (1, 7, 256)


class ValidationError(AssertionError):
    """An exported model disagrees with its estimator beyond the stated tolerance."""


@dataclass
class OutputCheck:
    """How one output of the graph compares with the estimator's method.

    Passed when every element satisfies |onnx - estimator| <= max(atol, rtol * |estimator|)
    (floats) or when all elements are equal (``exact`` outputs such as labels). For a
    reduced-precision export the accuracy budget decides instead: ``agreement`` (the share of
    equal labels) for exact outputs, ``relative_error`` (mean absolute difference over the
    estimator's mean absolute value) for the values of a graph without labels; the values beside
    labels (probabilities) are reported, the labels and the score decide. A float16 graph's values
    are held to the float16 tolerance ``model.json`` states (atol = rtol = 1e-2).
    """

    name: str
    method: str
    exact: bool
    atol: float
    rtol: float
    max_abs_error: float
    max_rel_error: float
    mismatches: int
    passed: bool
    mean_abs_error: float = 0.0
    agreement: float | None = None
    relative_error: float | None = None


@dataclass
class ValidationReport:
    """Outcome of :func:`validate`, stored under ``validation`` in ``model.json``."""

    provider: str
    batch_sizes: list[int]
    n_rows: int
    outputs: dict[str, OutputCheck] = field(default_factory=dict)
    missing_value_rows: int = 0
    precision: str = "float32"
    budget: dict | None = None
    score: dict | None = None

    @property
    def passed(self) -> bool:
        score_kept = self.score is None or self.score["drop"] <= self.budget["score_drop"]
        return score_kept and all(check.passed for check in self.outputs.values())

    @property
    def max_abs_error(self) -> float:
        """Largest absolute error over the non-exact outputs."""
        return max((c.max_abs_error for c in self.outputs.values() if not c.exact), default=0.0)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "provider": self.provider,
            "batch_sizes": self.batch_sizes,
            "n_rows": self.n_rows,
            "missing_value_rows": self.missing_value_rows,
            "outputs": {name: asdict(check) for name, check in self.outputs.items()},
            "precision": self.precision,
            "accuracy_budget": self.budget,
            "score": self.score,
        }

    def __str__(self) -> str:
        lines = [
            f"validation {'passed' if self.passed else 'FAILED'} on {self.provider}, batch sizes {self.batch_sizes}"
            + (f", {self.missing_value_rows} rows with missing values" if self.missing_value_rows else "")
            + (f", {self.precision} against the float32 estimator, budget {self.budget}" if self.budget else "")
        ]
        for c in self.outputs.values():
            if c.agreement is not None and self.budget:
                detail = f"{c.agreement:.2%} of labels agree ({c.mismatches} differ)"
            elif c.exact:
                detail = f"{c.mismatches} mismatches"
            elif self.budget and self.precision != "float16":
                detail = f"max abs {c.max_abs_error:.3g}, mean abs {c.mean_abs_error:.3g}" + (
                    f", relative {c.relative_error:.3g}" if c.relative_error is not None else ""
                )
            else:
                detail = (
                    f"max abs {c.max_abs_error:.3g} (atol {c.atol:g}), max rel {c.max_rel_error:.3g} (rtol {c.rtol:g})"
                )
            lines.append(f"  {c.name} vs {c.method}: {detail} -> {'ok' if c.passed else 'FAIL'}")
        if self.score:
            s = self.score
            kept = s["drop"] <= self.budget["score_drop"]
            lines.append(
                f"  {s['metric']}: estimator {s['estimator']:.4f}, graph {s['graph']:.4f} (drop {s['drop']:.4f}) "
                f"-> {'ok' if kept else 'FAIL'}"
            )
        return "\n".join(lines)


def compare(name: str, method: str, exact: bool, got: np.ndarray, want: np.ndarray, tolerance: dict) -> OutputCheck:
    """Compare one graph output with the estimator's result for the same rows."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise ValidationError(f"output {name!r} has shape {got.shape} but {method} gives {want.shape}")
    if exact:
        mismatches = (
            int((got.astype(str) != want.astype(str)).sum()) if want.dtype.kind in "OUS" else int((got != want).sum())
        )
        agreement = 1.0 - mismatches / max(want.size, 1)
        return OutputCheck(name, method, True, 0.0, 0.0, 0.0, 0.0, mismatches, mismatches == 0, agreement=agreement)
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    error = np.abs(got64 - want64)
    both_missing = np.isnan(got64) & np.isnan(want64)
    error[both_missing] = 0.0  # NaN where the estimator gives NaN agrees; NaN anywhere else fails
    scale = np.abs(want64)
    bound = np.maximum(tolerance["atol"], tolerance["rtol"] * scale)
    rel = np.where(both_missing, 0.0, error / np.maximum(scale, np.finfo(np.float64).tiny))
    failures = int((~(error <= bound)).sum())
    error, rel = (np.where(np.isnan(values), np.inf, values) for values in (error, rel))
    return OutputCheck(
        name,
        method,
        False,
        tolerance["atol"],
        tolerance["rtol"],
        float(error.max(initial=0.0)),
        float(rel.max(initial=0.0)),
        failures,
        failures == 0,
        mean_abs_error=float(error.mean()) if error.size else 0.0,
    )


def within_budget(
    check: OutputCheck, want: np.ndarray, budget: dict, graph_has_labels: bool, precision: str
) -> OutputCheck:
    """The check of a reduced-precision output judged by the accuracy budget (see OutputCheck);
    a float16 graph's values keep their check against the float16 tolerance."""
    if check.exact:
        return replace(check, passed=check.agreement >= budget["label_agreement"])
    if precision == "float16":
        return check
    if graph_has_labels:
        return replace(check, passed=True)
    scale = float(np.nanmean(np.abs(np.asarray(want, dtype=np.float64)))) if np.size(want) else 0.0
    relative = check.mean_abs_error / max(scale, np.finfo(np.float64).tiny)
    return replace(check, relative_error=relative, passed=relative <= budget["relative_error"])


def score_of(y, predictions: np.ndarray, exact: bool) -> float:
    """Accuracy of labels, R^2 of values, against y."""
    return float(accuracy_score(y, predictions) if exact else r2_score(y, predictions))


@dataclass
class GraphCheck:
    """What validation compares for one graph of an export: how X becomes the graph's inputs,
    and the callable each output must equal; ``reads_x``: the graph's inputs are X itself."""

    inputs: Callable[[object], tuple]
    outputs: dict[str, OutputSpec]
    reads_x: bool = True


MISSING_VALUE_ROWS = 16  # rows of X validation repeats with missing values, where inputs accept them


def with_missing_values(X, inputs: list[dict]) -> tuple[object, int]:
    """X followed by copies of its first rows with missing values (NaN) in the inputs that
    accept them (model.json's ``allow_nan``): one column per row in turn, every such column in
    the last; (X unchanged, 0) when none accepts them."""
    allowed = [spec["name"] for spec in inputs if spec.get("allow_nan")]
    if not allowed:
        return X, 0
    n = min(len(X), MISSING_VALUE_ROWS)
    if isinstance(X, pd.DataFrame):
        rows = X.iloc[:n].copy()
        columns = allowed if len(inputs) > 1 else list(rows.columns)  # one input: every column feeds it
        rows[columns] = rows[columns].astype(np.float64)
        positions = [rows.columns.get_loc(c) for c in columns]
        for i in range(n):
            rows.iloc[i, positions if i == n - 1 else [positions[i % len(positions)]]] = np.nan
        return pd.concat([X, rows], ignore_index=True), n
    array = np.asarray(X, dtype=np.float64)
    rows = array[:n].reshape(n, -1).copy()  # (n, values per row)
    for i in range(n):
        rows[i, slice(None) if i == n - 1 else i % rows.shape[1]] = np.nan
    return np.concatenate([array, rows.reshape((n, *array.shape[1:]))]), n


def graph_checks(estimator, metadata: dict) -> dict[str, GraphCheck]:
    """{graph: GraphCheck} for an export of ``estimator``: from its export protocol, called with
    the options ``model.json`` records; for a Pipeline, each output against the Pipeline's own
    method of the name ``model.json`` records (``predict``, ``predict_proba``, ...)."""
    if isinstance(estimator, Pipeline):
        return {
            graph: GraphCheck(
                lambda X: (X,),
                {
                    o["name"]: OutputSpec(
                        o["name"],
                        getattr(estimator, o["method"]),
                        o["ndim"],
                        exact=o["exact"],
                        kwargs=o.get("kwargs") or {},
                        tolerance=o.get("tolerance"),
                        item=o.get("item"),
                    )
                    for o in entry["outputs"]
                },
            )
            for graph, entry in metadata["graphs"].items()
        }
    specs = inference_specs(estimator, metadata.get("options") or {})
    return {
        spec.graph: GraphCheck(spec.graph_inputs, {o.name: o for o in spec.outputs}, spec.input_method is None)
        for spec in specs
    }


def graph_feed(model: OnnxModel, inputs: tuple):
    """What :meth:`OnnxModel.run` takes for a graph's inputs: the one array or DataFrame (a
    DataFrame also feeds a graph with an input per column), or a dict by input name."""
    return inputs[0] if len(inputs) == 1 else dict(zip([spec["name"] for spec in model.inputs], inputs))


def _rows(data, start: int, stop: int):
    """Rows [start, stop) of an array, a DataFrame, or each array of a tuple of inputs."""
    if isinstance(data, tuple):
        return tuple(_rows(part, start, stop) for part in data)
    return data.iloc[start:stop] if isinstance(data, pd.DataFrame) else data[start:stop]


def validate(
    estimator,
    folder: str | Path,
    X,
    y=None,
    *,
    tolerances: dict[str, dict] | None = None,
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES,
    providers: list[str] | None = None,
    raise_on_failure: bool = True,
    accuracy_budget: dict | None = None,
) -> ValidationReport:
    """Check that the ONNX graphs in ``folder`` agree with ``estimator`` on X.

    Each graph runs under onnxruntime (CUDA first when available, else CPU) over all of
    its inputs cut into batches of each size in ``batch_sizes`` (a size larger than the
    inputs becomes their length); every output is compared with the estimator's own
    callable its export spec names (``predict``, ``predict_proba``, ...) on the same rows. A
    graph that does not read X directly (a VAE's decoder, a diffusion sampler) gets its inputs
    from its spec's ``input_method``, called on X. Where a graph's inputs accept missing values
    (``allow_nan`` in ``model.json``: a Pipeline that imputes them), the first rows of X are
    repeated with NaN in those inputs and compared too. The report is written into
    ``model.json``.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        The object that was exported.
    folder : str or Path
        The export folder.
    X : array-like or DataFrame
        Inputs as the estimator takes them.
    y : array-like, optional
        Targets of X. For a reduced-precision export (int8, float16) the estimator's score
        (accuracy of its labels, R^2 of its values) is compared with the graph's, and the drop
        must stay within the budget's ``score_drop``.
    tolerances : dict, optional
        {output name: {"atol": float, "rtol": float}} ("graph.output" when the folder holds
        several graphs); default: the output's own tolerance in ``model.json`` when the
        exporter stated one, else atol = rtol = 1e-4 (float32) on the CPU provider and 1e-3
        on CUDA. Exact outputs (labels) must be identical.
    batch_sizes : tuple of int, default=(1, 7, 256)
    providers : list of str, optional
        onnxruntime providers (default CUDA when available, then CPU).
    raise_on_failure : bool, default=True
        Raise :class:`ValidationError` with the numbers when an output fails.
    accuracy_budget : dict, optional
        For a reduced-precision export: what it may cost (``label_agreement``, ``score_drop``,
        ``relative_error``; see :func:`toolkit.onnx.export`), over the budget ``model.json``
        records. The report gives, per output, the label agreement or the max and mean absolute
        differences, and the scores; it passes when every figure is within the budget. A float32
        export is held to the tolerances instead.

    Returns
    -------
    ValidationReport
        Outputs keyed by name, or by "graph.output" when the folder holds several graphs.
    """
    folder = Path(folder)
    metadata = read_metadata(folder)
    if len(X) == 0:
        raise ValueError("validate needs at least one row of X")
    several = len(metadata["graphs"]) > 1
    checks_by_graph = graph_checks(estimator, metadata)
    precision = metadata.get("precision", "float32")
    budget = None
    if precision != "float32":
        budget = accuracy_budget_of((metadata.get("accuracy_budget") or {}) | (accuracy_budget or {}))
    if y is not None and len(y) != len(X):
        raise ValueError(f"y has {len(y)} values for {len(X)} rows of X")
    report = None
    for graph in metadata["graphs"]:
        model = OnnxModel(folder, graph=graph, providers=providers)
        check = checks_by_graph[graph]
        rows, missing = with_missing_values(X, model.inputs) if check.reads_x else (X, 0)
        inputs = check.inputs(rows)
        n_rows = len(inputs[0])
        sizes = sorted({min(size, n_rows) for size in batch_sizes})
        if report is None:
            report = ValidationReport(model.provider, sizes, n_rows, precision=precision, budget=budget)
        report.missing_value_rows = max(report.missing_value_rows, missing)
        has_labels = any(check.outputs[name].exact for name in model.outputs)
        for name in model.outputs:
            output = check.outputs[name]
            want = output.method(*inputs, **output.kwargs)
            want = np.asarray(want if output.item is None else want[output.item])
            key = f"{graph}.{name}" if several else name
            tolerance = {
                **PROVIDER_TOLERANCE.get(model.provider, DEFAULT_TOLERANCE),
                **(output.tolerance or {}),
                **(FLOAT16_TOLERANCE if precision == "float16" else {}),
                **(tolerances or {}).get(key, {}),
            }
            checks, scores = [], []
            for size in sizes:
                got = np.concatenate(
                    [
                        model.run(graph_feed(model, _rows(inputs, a, a + size)), [name])[name]
                        for a in range(0, n_rows, size)
                    ]
                )
                result = compare(name, output.method_name, output.exact, got, want, tolerance)
                if budget is not None:
                    result = within_budget(result, want, budget, has_labels, precision)
                checks.append(result)
                if budget is not None and y is not None and check.reads_x and output.method_name == "predict":
                    scores.append(score_of(y, got[: len(y)], output.exact))
            report.outputs[key] = max(checks, key=lambda c: (not c.passed, c.mismatches, c.max_abs_error))
            if scores:
                estimator_score = score_of(y, want[: len(y)], output.exact)
                metric = "accuracy" if output.exact else "r2"
                drop = estimator_score - min(scores)
                report.score = {"metric": metric, "estimator": estimator_score, "graph": min(scores), "drop": drop}
    metadata["validation"] = report.to_dict()
    atomic_write_files(folder, {METADATA_FILE: json_bytes(metadata)})
    if raise_on_failure and not report.passed:
        raise ValidationError(f"{folder}: exported model disagrees with {type(estimator).__name__}\n{report}")
    return report
