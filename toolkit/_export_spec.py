"""The export protocol: what an estimator hands to :func:`toolkit.onnx.export`.

An estimator is exportable when it defines ``__onnx_spec__(**options)`` (as scikit-learn's
protocols are dunders: ``__sklearn_tags__``, ``__sklearn_is_fitted__``). It returns one
:class:`InferenceSpec`, or a list of them for an export of several graphs: the inference
computation as a torch module (or a function that builds the graph), its inputs, and for
each output the callable whose result the output must equal. ``export`` writes the graphs and
``model.json``; ``validate`` calls the spec's callables on held-out rows and compares; the
server reads only the files. Every toolkit estimator implements it, and so can a user's own
class: see ``tests/test_export_protocol.py`` for one defined outside the package.

The specs carry callables, never method names, so that a rename is an error at the
definition (or a linter's warning), not a failure at export time. ``model.json`` records each
callable's ``__name__`` for readers (``OnnxModel.predict`` finds its output by it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from torch import nn

# The ONNX opset every graph is built at (torch's exporter, the graphs toolkit writes itself); an
# export at another opset converts the finished graph (toolkit.onnx's ``target_opset``).
OPSET = 20
# The lowest opset a graph of torch's exporter alone may be converted to, unless its spec says lower:
# torch's exporter builds at opset 18 and converts from there.
TORCH_EXPORTER_OPSET = 18
# The lowest opset onnx's version converter takes toolkit's torch-exported graphs to (linear layers,
# convolutions, activations, softmax, reductions): it has no adapters below 14 (Relu-14, Shape-15 ...),
# tested for every family that states it.
CONVERTED_MIN_OPSET = 14


@dataclass(frozen=True)
class OutputSpec:
    """One output of an exported graph.

    Parameters
    ----------
    name : str
        Graph output name, in skl2onnx's convention (``label``, ``probabilities``, ``variable``).
    method : callable or None
        What this output equals: called as ``method(*graph_inputs, **kwargs)`` by validation,
        usually a bound method of the estimator (``self.predict_proba``). None for the outputs
        of a part graph that is only joined into another (never compared on its own).
    ndim : int
        Dimensions of ``method``'s result (a single-output regressor's ``predict`` is 1-D
        while the graph gives (batch, 1)).
    exact : bool, default=False
        Compared for equality (labels) rather than within a tolerance.
    kwargs : dict, optional
        Keyword arguments of ``method`` besides the inputs (e.g. a forecast horizon).
    tolerance : dict, optional
        {"atol", "rtol"} that validation uses by default for this output.
    item : int, optional
        When ``method`` returns a tuple, the element this output equals.
    """

    name: str
    method: Callable | None
    ndim: int
    exact: bool = False
    kwargs: dict = field(default_factory=dict)
    tolerance: dict | None = None
    item: int | None = None

    @property
    def method_name(self) -> str | None:
        """The callable's name, as ``model.json`` records it (``"predict_proba"``)."""
        return None if self.method is None else getattr(self.method, "__name__", type(self.method).__name__)


@dataclass(frozen=True)
class InputSpec:
    """A further input of a graph: its name, per-sample shape (None: a free axis), an
    example batch and the dtype of that example."""

    name: str
    sample_shape: tuple[int | None, ...]
    example: np.ndarray


@dataclass
class InferenceSpec:
    """An estimator's inference computation as a torch module, with its interface.

    ``module`` maps one input (``dtype``, float32 unless stated) named ``input_name`` of shape
    ``(batch, *sample_shape)`` (``None`` marks a free axis, e.g. the time axis of a sequence), and
    any ``extra_inputs`` after it, to the outputs in order. When ``classes`` is set the
    module's first output is a class index, which the exporter maps to the labels in
    ``classes`` inside the graph.

    An estimator may export several graphs into one folder (a list of specs, each with its
    own ``graph`` name, written to ``{graph}.onnx``). A graph whose input is not the
    estimator's X gives ``input_method``: a callable of X (and ``input_kwargs``) that returns
    the graph's inputs (an array, or a tuple of them in input order), e.g. a decoder's
    ``self.transform``; validation calls it, then compares each output's ``method`` called on
    those inputs. Instead of a module, a spec may give ``build``: a function of the already
    exported graphs ({name: onnx.ModelProto}) that returns its graph; ``parts`` are specs
    exported only to be handed to ``build`` beside those (by their ``graph`` names), never
    written as files of their own (a captioner's encoder and one decoding step, which its
    build joins into one graph with a Loop). ``allow_nan``: the estimator's X may hold missing
    values (NaN), which the graph handles; the loader and the server then accept them.
    ``min_opset``: the lowest ONNX opset this graph may be exported at (the graphs of an export at a
    lower ``target_opset`` are refused before any is made); a family that tested its graphs lower
    says so here. ``full_precision``: why this graph's arithmetic must stay in its dtype; an int8
    or float16 export is then refused with this reason.
    """

    module: nn.Module | None
    sample_shape: tuple[int | None, ...]
    outputs: list[OutputSpec]
    example: np.ndarray
    input_name: str = "X"
    classes: np.ndarray | None = None
    feature_names: list[str] | None = None
    dtype: str = "float32"
    metadata: dict = field(default_factory=dict)
    graph: str = "model"
    input_method: Callable | None = None
    input_kwargs: dict = field(default_factory=dict)
    extra_inputs: tuple[InputSpec, ...] = ()
    build: Callable[[dict], object] | None = None
    parts: tuple[InferenceSpec, ...] = ()
    allow_nan: bool = False
    min_opset: int = TORCH_EXPORTER_OPSET
    full_precision: str | None = None

    @property
    def inputs(self) -> list[dict]:
        """name, dtype, shape (None: free) and whether missing values (NaN) are accepted, of
        every input, as model.json records them."""
        first = {"name": self.input_name, "dtype": self.dtype, "shape": [None, *self.sample_shape]}
        extra = [
            {"name": i.name, "dtype": str(i.example.dtype), "shape": [None, *i.sample_shape], "allow_nan": False}
            for i in self.extra_inputs
        ]
        return [first | {"allow_nan": self.allow_nan}] + extra

    def graph_inputs(self, X) -> tuple:
        """The graph's inputs for the estimator's X: X itself, or what ``input_method`` makes of it."""
        if self.input_method is None:
            return (X,)
        inputs = self.input_method(X, **self.input_kwargs)
        return inputs if isinstance(inputs, tuple) else (inputs,)


@runtime_checkable
class SupportsOnnxExport(Protocol):
    """What :func:`toolkit.onnx.export` needs of an estimator: ``__onnx_spec__``.

    ``__onnx_spec__(**options)`` is called on a fitted estimator with the export's keyword
    options (e.g. ``horizon`` for a forecaster; none for most) and returns an
    :class:`InferenceSpec` or a sequence of them, one per graph. It must not change the
    estimator: validation calls it again with the options recorded in ``model.json``.
    """

    def __onnx_spec__(self, **options) -> InferenceSpec | Sequence[InferenceSpec]: ...


def inference_specs(estimator, options: dict) -> list[InferenceSpec]:
    """The estimator's inference specs (one per graph), or a TypeError naming a class that has none."""
    if not isinstance(estimator, SupportsOnnxExport):
        raise TypeError(
            f"{type(estimator).__name__} does not implement the export protocol (__onnx_spec__) and cannot be "
            "exported on its own; export a Pipeline whose last step does, or see toolkit.onnx.SupportsOnnxExport"
        )
    specs = estimator.__onnx_spec__(**options)
    return list(specs) if isinstance(specs, (list, tuple)) else [specs]
