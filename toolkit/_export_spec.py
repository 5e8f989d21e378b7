"""What an estimator hands to the exporter: its inference module and how to check it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch import nn


@dataclass(frozen=True)
class OutputSpec:
    """One output of an exported graph.

    Parameters
    ----------
    name : str
        Graph output name, in skl2onnx's convention (``label``, ``probabilities``, ``variable``).
    method : str
        The estimator method whose result this output equals, e.g. ``"predict_proba"``.
    ndim : int
        Dimensions of that method's result (a single-output regressor's ``predict`` is 1-D
        while the graph gives (batch, 1)).
    exact : bool
        Compared for equality (labels) rather than within a tolerance.
    kwargs : dict
        Keyword arguments of ``method`` besides X (e.g. a forecast horizon).
    tolerance : dict, optional
        {"atol", "rtol"} that validation uses by default for this output.
    item : int, optional
        When ``method`` returns a tuple, the element this output equals.
    """

    name: str
    method: str
    ndim: int
    exact: bool = False
    kwargs: dict = field(default_factory=dict)
    tolerance: dict | None = None
    item: int | None = None


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

    ``module`` maps one input (``dtype``, float32 unless stated) named ``input_name`` of shape (batch, *sample_shape)
    (``None`` marks a free axis, e.g. the time axis of a sequence), and any ``extra_inputs``
    after it, to the outputs in order. When ``classes`` is set the module's first output is
    a class index, which the exporter maps to the labels in ``classes`` inside the graph.

    An estimator may export several graphs into one folder (a list of specs, each with its
    own ``graph`` name, written to ``{graph}.onnx``). A graph whose input is not the
    estimator's X names the method that maps X to its inputs (``input_method``, e.g. a
    decoder's "transform"); validation calls it, then compares each output's method called
    on those inputs. Instead of a module, a spec may give ``build``: a function of the
    already exported graphs ({name: onnx.ModelProto}) that returns its graph; ``parts`` are
    specs exported only to be handed to ``build`` beside those (by their ``graph`` names),
    never written as files of their own (a captioner's encoder and one decoding step, which
    its build joins into one graph with a Loop).
    """

    module: nn.Module
    sample_shape: tuple[int | None, ...]
    outputs: list[OutputSpec]
    example: np.ndarray
    input_name: str = "X"
    classes: np.ndarray | None = None
    feature_names: list[str] | None = None
    dtype: str = "float32"
    metadata: dict = field(default_factory=dict)
    graph: str = "model"
    input_method: str | None = None
    input_kwargs: dict = field(default_factory=dict)
    extra_inputs: tuple[InputSpec, ...] = ()
    build: Callable[[dict], object] | None = None
    parts: tuple[InferenceSpec, ...] = ()

    @property
    def inputs(self) -> list[dict]:
        """name, dtype and shape (None: free) of every input, as model.json records them."""
        first = {"name": self.input_name, "dtype": self.dtype, "shape": [None, *self.sample_shape]}
        return [first] + [
            {"name": i.name, "dtype": str(i.example.dtype), "shape": [None, *i.sample_shape]} for i in self.extra_inputs
        ]
