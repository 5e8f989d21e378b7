"""Which inputs of an exported Pipeline accept missing values (NaN), recorded per input in
``model.json`` (``allow_nan``) so that the loader and the server accept them there and only there.

A value goes through the steps that read its column: a step that fills missing values (an
imputer, or a missing-value indicator, from ``sklearn.impute``) settles it; a step whose
scikit-learn tags refuse NaN (``input_tags.allow_nan`` False: the nets, most models) refuses
it; a step that accepts NaN and passes it on (a scaler) hands it to the next one, and a chain
that ends accepting them (a model that handles missing values itself) accepts them. A column
that a ColumnTransformer drops accepts anything. ``validate`` then checks the claim on rows with
missing values against the Pipeline itself.
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags


def fills_missing_values(step) -> bool:
    """Whether a step replaces missing values (an imputer, a missing-value indicator)."""
    return type(step).__module__.startswith("sklearn.impute")


def accepts_missing_values(chain: list) -> bool:
    """Whether a value with NaN, read by the steps of ``chain`` in order, reaches an imputer or a
    step that handles it before any step that refuses it."""
    for step in chain:
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        if isinstance(step, str) and step == "drop":
            return True
        if isinstance(step, Pipeline):
            return accepts_missing_values([inner for _, inner in step.steps] + chain[chain.index(step) + 1 :])
        if fills_missing_values(step):
            return True
        if not get_tags(step).input_tags.allow_nan:
            return False
    return True


def missing_value_inputs(pipeline: Pipeline) -> dict[str, bool] | bool:
    """For a Pipeline whose first step is a ColumnTransformer fitted on a DataFrame: {column:
    accepts missing values}; otherwise whether its one input X does."""
    steps = [step for _, step in pipeline.steps]
    first = steps[0]
    names = getattr(first, "feature_names_in_", None)
    if not isinstance(first, ColumnTransformer) or names is None:
        return accepts_missing_values(steps)
    accepted = {str(name): True for name in names}
    for _, transformer, columns in first.transformers_:
        selected = names[columns] if np.asarray(columns).dtype.kind in "ib" else np.asarray(columns, dtype=object)
        verdict = accepts_missing_values([transformer, *steps[1:]])
        for column in np.atleast_1d(selected):
            accepted[str(column)] = accepted[str(column)] and verdict
    return accepted
