"""``OnnxModel``: an exported model under onnxruntime, with the estimator's methods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from toolkit.serving._format import MODEL_FILE, read_metadata

ORT_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "string": object}


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, then the CPU."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxModel:
    """An export folder loaded into an onnxruntime ``InferenceSession``.

    Parameters
    ----------
    folder : str or Path
        Folder holding ``model.onnx`` and ``model.json``.
    providers : list of str, optional
        onnxruntime execution providers; default CUDA (when available) then CPU.
    intra_op_num_threads, inter_op_num_threads : int, optional
        onnxruntime thread pool sizes (0 or None: onnxruntime's default).

    Attributes
    ----------
    metadata : dict
        The parsed ``model.json``.
    session : onnxruntime.InferenceSession
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        providers: list[str] | None = None,
        intra_op_num_threads: int | None = None,
        inter_op_num_threads: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.metadata = read_metadata(self.folder)
        options = ort.SessionOptions()
        if intra_op_num_threads:
            options.intra_op_num_threads = intra_op_num_threads
        if inter_op_num_threads:
            options.inter_op_num_threads = inter_op_num_threads
        self.session = ort.InferenceSession(
            str(self.folder / MODEL_FILE), sess_options=options, providers=providers or default_providers()
        )
        self.input = self.metadata["inputs"][0]
        self.outputs = {output["name"]: output for output in self.metadata["outputs"]}

    @property
    def provider(self) -> str:
        """The execution provider that runs the graph (the session's first)."""
        return self.session.get_providers()[0]

    def prepare(self, X) -> np.ndarray:
        """X as the graph's input array, after checking columns (DataFrame), dtype and shape.

        Public so that callers timing or batching ``session.run`` feed exactly what ``run`` does.
        """
        names = self.metadata.get("feature_names")
        if isinstance(X, pd.DataFrame):
            columns = [str(c) for c in X.columns]
            if names is not None and columns != names:
                missing = [c for c in names if c not in columns]
                extra = [c for c in columns if c not in names]
                problem = f"missing {missing}, unexpected {extra}" if missing or extra else "in another order"
                raise ValueError(f"X's columns do not match the model's: {problem}; expected {names}")
            non_numeric = [c for c, dtype in X.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
            if non_numeric:
                raise TypeError(f"X has non-numeric column(s) {[str(c) for c in non_numeric]}")
        try:
            array = np.asarray(X, dtype=ORT_DTYPES[self.input["dtype"]])
        except (TypeError, ValueError) as error:
            raise TypeError(f"X cannot be read as {self.input['dtype']}: {error}") from None
        expected = self.input["shape"]
        if array.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected, array.shape)):
            shown = ["batch" if e is None else e for e in expected]
            raise ValueError(f"X has shape {array.shape}; the model expects {tuple(shown)}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError("X contains NaN or infinity")
        return array

    def run(self, X, output_names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run the graph on X; return {output name: array shaped as the estimator's method's}.

        Parameters
        ----------
        X : array-like or DataFrame
        output_names : list of str, optional
            Outputs to compute (default: all).
        """
        names = output_names or list(self.outputs)
        results = self.session.run(names, {self.input["name"]: self.prepare(X)})
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
        columns = self.metadata.get("classes") if spec["name"] == "probabilities" else None
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

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.folder)!r}, estimator={self.metadata['estimator']['class']}, provider={self.provider})"
