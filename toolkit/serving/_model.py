"""``OnnxModel``: an exported model under onnxruntime, with the estimator's methods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from toolkit._cpu_budget import cpu_budget
from toolkit.serving._format import read_graph, shape_text
from toolkit.serving._tensor_types import BY_NAME, BY_ONNX


def column_mismatch(expected: list[str], columns: list[str]) -> str:
    """What one column list lacks and adds against another ("missing [..], unexpected [..]"); "" when the names
    agree."""
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    return f"missing {missing}, unexpected {extra}" if missing or extra else ""


def graph_signature(session: ort.InferenceSession) -> dict:
    """The ``inputs`` and ``outputs`` entries (as ``model.json`` writes them) of a graph made
    elsewhere, read from the loaded graph: names, element types, shapes (None on a free axis).

    Its inputs accept missing values (NaN): what they mean is the graph's to say. Outputs that are
    not tensors (skl2onnx's ZipMap of class probabilities: a sequence of maps) are left out, and
    listed under ``other_outputs``: the Open Inference Protocol carries tensors only.
    """
    inputs = []
    for arg in session.get_inputs():
        if arg.type not in BY_ONNX or arg.shape is None:
            raise ValueError(
                f"input {arg.name!r} is a {arg.type} of shape {arg.shape}; only tensors of known rank whose "
                f"element type is one of {sorted(BY_NAME)} can be fed"
            )
        shape = [d if isinstance(d, int) else None for d in arg.shape]
        inputs.append({"name": arg.name, "dtype": BY_ONNX[arg.type].name, "shape": shape, "allow_nan": True})
    outputs = [
        {"name": arg.name, "method": None, "ndim": len(arg.shape)}
        for arg in session.get_outputs()
        if arg.type in BY_ONNX and arg.shape is not None
    ]
    if not outputs:
        raise ValueError("the graph has no tensor output to serve")
    served = {output["name"] for output in outputs}
    other = {arg.name: arg.type for arg in session.get_outputs() if arg.name not in served}
    return {"inputs": inputs, "outputs": outputs, "other_outputs": other}


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, then the CPU."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxModel:
    """An export folder loaded into an onnxruntime ``InferenceSession``.

    Parameters
    ----------
    folder : str or Path
        An export folder (``model.json`` and its graphs), or a graph made elsewhere: a folder
        holding ``model.onnx`` alone (Triton's layout) or an ``.onnx`` file, whose inputs and
        outputs are read from the graph.
    graph : str, optional
        Which graph of the folder to load (e.g. "encoder" or "decoder" of a VAE); needed
        only when it holds several.
    providers : list of str, optional
        onnxruntime execution providers; default CUDA (when available) then CPU.
    intra_op_num_threads, inter_op_num_threads : int, optional
        onnxruntime thread pool sizes. None: the intra-op pool takes the CPU budget (the CPUs
        this process may use: its affinity and cgroup quota, or OMP_NUM_THREADS; see
        ``toolkit.show_config()``) when it is below the host's CPU count, where onnxruntime's
        default (one thread per physical core of the host) would oversubscribe it; the inter-op
        pool onnxruntime's default.

    Attributes
    ----------
    metadata : dict
        The parsed ``model.json`` (a graph made elsewhere: ``estimator`` None).
    graph : str
        The loaded graph's name; ``entry`` is its description in ``model.json``.
    session : onnxruntime.InferenceSession
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        graph: str | None = None,
        providers: list[str] | None = None,
        intra_op_num_threads: int | None = None,
        inter_op_num_threads: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.metadata, self.graph, self.entry, graph_bytes = read_graph(self.folder, graph)
        options = ort.SessionOptions()
        if not intra_op_num_threads:  # the budget, where onnxruntime's own default would oversubscribe it
            budget = cpu_budget()
            intra_op_num_threads = budget.threads if budget.below_host else None
        if intra_op_num_threads:
            options.intra_op_num_threads = intra_op_num_threads
        if inter_op_num_threads:
            options.inter_op_num_threads = inter_op_num_threads
        self.session = ort.InferenceSession(
            graph_bytes, sess_options=options, providers=providers or default_providers()
        )
        if self.entry["inputs"] is None:  # a graph made elsewhere
            self.entry = {**self.entry, **graph_signature(self.session)}
        self.inputs = self.entry["inputs"]
        self.outputs = {output["name"]: output for output in self.entry["outputs"]}

    @property
    def estimator_class(self) -> str | None:
        """The exported estimator's class ("toolkit.neural_network.MLPClassifier"); None for a
        graph made elsewhere."""
        estimator = self.metadata.get("estimator")
        return estimator["class"] if estimator else None

    @property
    def precision(self) -> str:
        """The graph's arithmetic as exported: "float32" (float64 for the statistical families' own
        dtype), "int8" or "float16"; "float32" for a graph made elsewhere."""
        return self.entry.get("precision") or self.metadata.get("precision") or "float32"

    @property
    def opset(self) -> int | None:
        """The graph's ai.onnx opset, as model.json records it (None for a graph made elsewhere)."""
        return (self.entry.get("opset") or {}).get("ai.onnx")

    @property
    def provider(self) -> str:
        """The execution provider that runs the graph (the session's first)."""
        return self.session.get_providers()[0]

    def prepare(self, X) -> dict[str, np.ndarray]:
        """The graph's input feed {name: array} from X, after checking columns (DataFrame),
        dtype and shape of each input.

        X is one array or DataFrame for a graph of one input, or a dict {input name: array}.
        Public so that callers timing or batching ``session.run`` feed exactly what ``run`` does.
        """
        if isinstance(X, pd.DataFrame) and len(self.inputs) > 1:
            self._check_columns(X)
            X = {spec["name"]: X[[spec["name"]]] for spec in self.inputs}  # one typed input per column
        if isinstance(X, dict):
            names = [spec["name"] for spec in self.inputs]
            if sorted(X) != sorted(names):
                raise ValueError(f"inputs {sorted(X)} given; the graph takes {names}")
            return {spec["name"]: self._prepare_input(X[spec["name"]], spec) for spec in self.inputs}
        if len(self.inputs) > 1:
            raise ValueError(
                f"this graph takes several inputs {[s['name'] for s in self.inputs]}; pass a dict of arrays"
            )
        return {self.inputs[0]["name"]: self._prepare_input(X, self.inputs[0])}

    def _check_columns(self, X: pd.DataFrame) -> None:
        names = self.entry.get("feature_names")
        columns = [str(c) for c in X.columns]
        if names is not None and columns != names:
            problem = column_mismatch(names, columns) or "in another order"
            raise ValueError(f"X's columns do not match the model's: {problem}; expected {names}")

    def _prepare_input(self, X, spec: dict) -> np.ndarray:
        if isinstance(X, pd.DataFrame) and len(self.inputs) == 1:
            self._check_columns(X)
        if isinstance(X, pd.DataFrame) and spec["dtype"] != "string":
            non_numeric = [c for c, dtype in X.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
            if non_numeric:
                raise TypeError(f"X has non-numeric column(s) {[str(c) for c in non_numeric]}")
        name = spec["name"]
        try:
            array = np.asarray(X, dtype=BY_NAME[spec["dtype"]].numpy)
        except (TypeError, ValueError) as error:
            raise TypeError(f"input {name!r} cannot be read as {spec['dtype']}: {error}") from None
        expected = spec["shape"]
        if array.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected, array.shape)):
            raise ValueError(
                f"input {name!r} has shape {shape_text(array.shape)}; the model expects {shape_text(expected)} "
                "(-1: any size)"
            )
        if array.dtype == object and pd.isna(array).any():
            raise ValueError(f"input {name!r} contains missing values (None or NaN); it takes strings")
        if array.dtype.kind == "f":
            if spec.get("allow_nan", False):  # missing values are the export's to fill; infinities never
                if np.isinf(array).any():
                    raise ValueError(f"input {name!r} contains infinity")
            elif not np.isfinite(array).all():
                raise ValueError(f"input {name!r} contains NaN or infinity")
        return array

    def run(self, X, output_names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run the graph on X; return {output name: array shaped as the estimator's method's}.

        Parameters
        ----------
        X : array-like, DataFrame, or dict {input name: array} for a graph of several inputs
        output_names : list of str, optional
            Outputs to compute (default: all).
        """
        names = output_names or list(self.outputs)
        results = self.session.run(names, self.prepare(X))
        return {name: self._shape_output(name, value) for name, value in zip(names, results)}

    def _shape_output(self, name: str, value: np.ndarray) -> np.ndarray:
        return value.reshape(len(value)) if self.outputs[name]["ndim"] == 1 else value

    def _method_output(self, method: str, X):
        spec = next((o for o in self.outputs.values() if o["method"] == method), None)
        if spec is None:
            raise AttributeError(f"this model has no {method} output (outputs: {list(self.outputs)})")
        value = self.run(X, [spec["name"]])[spec["name"]]
        if not isinstance(X, pd.DataFrame):
            return value
        if value.ndim == 1:
            return pd.Series(value, index=X.index, name=spec["name"])
        columns = self.entry.get("classes") if spec["name"] == "probabilities" else None
        return pd.DataFrame(value, index=X.index, columns=columns)

    def predict(self, X):
        """The estimator's ``predict``: a Series (DataFrame in) or an array (array in)."""
        return self._method_output("predict", X)

    def predict_proba(self, X):
        """The estimator's ``predict_proba``: class probabilities, columns in class order."""
        return self._method_output("predict_proba", X)

    def transform(self, X):
        """The estimator's ``transform``."""
        return self._method_output("transform", X)

    def inverse_transform(self, X):
        """The estimator's ``inverse_transform`` (an auto-encoder's decoder graph)."""
        return self._method_output("inverse_transform", X)

    def __repr__(self) -> str:
        estimator = self.estimator_class or "none (a graph made elsewhere)"
        return f"OnnxModel({str(self.folder)!r}, graph={self.graph!r}, estimator={estimator}, provider={self.provider})"
