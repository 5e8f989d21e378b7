"""What an estimator hands to the exporter: its inference module and how to check it."""

from __future__ import annotations

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
    """

    name: str
    method: str
    ndim: int
    exact: bool = False
    kwargs: dict = field(default_factory=dict)
    tolerance: dict | None = None


@dataclass
class InferenceSpec:
    """An estimator's inference computation as a torch module, with its interface.

    ``module`` maps one input (``dtype``, float32 unless stated) named ``input_name`` of shape (batch, *sample_shape)
    (``None`` marks a free axis, e.g. the time axis of a sequence) to the outputs in order.
    When ``classes`` is set the module's first output is a class index, which the exporter
    maps to the labels in ``classes`` inside the graph.
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
