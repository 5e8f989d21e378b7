"""Every public estimator of toolkit, found by walking the families' ``__all__`` (as
scikit-learn's ``sklearn.utils.discovery.all_estimators``): the tests that must cover each
estimator take their list from here, so that a new one cannot be left out."""

from __future__ import annotations

import importlib

FAMILIES = ("timeseries", "mixture", "neural_network", "generative")
TYPES = ("classifier", "regressor", "transformer", "density")


def all_estimators(type_filter: str | None = None) -> list[tuple[str, type]]:
    """(name, class) of every public estimator, sorted by name.

    Parameters
    ----------
    type_filter : {"classifier", "regressor", "transformer", "density"}, optional
        Only the estimators of that kind (by scikit-learn's mixins, as its own ``all_estimators``).

    Returns
    -------
    list of (str, type)
    """
    from sklearn.base import BaseEstimator, ClassifierMixin, DensityMixin, RegressorMixin, TransformerMixin

    if type_filter is not None and type_filter not in TYPES:
        raise ValueError(f"type_filter must be one of {TYPES} or None, got {type_filter!r}")
    found = {}
    for family in FAMILIES:
        module = importlib.import_module(f"toolkit.{family}")
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseEstimator):
                found[name] = obj
    mixins = {
        "classifier": ClassifierMixin,
        "regressor": RegressorMixin,
        "transformer": TransformerMixin,
        "density": DensityMixin,
    }
    wanted = mixins[type_filter] if type_filter else BaseEstimator
    return sorted((name, cls) for name, cls in found.items() if issubclass(cls, wanted))
