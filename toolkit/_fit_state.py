"""A fit's scope, shared by every family: a fit that fails leaves no half-fitted estimator
behind, and torch works within the CPU budget (no torch import here)."""

from __future__ import annotations

import copy
from contextlib import contextmanager

from toolkit._cpu_budget import torch_threads_within_budget


@contextmanager
def restored_on_failure(estimator):
    """Inside the block, a failure (any exception, Ctrl-C included) puts the estimator back
    exactly as it was: an earlier fit's state stays bit for bit, and a first fit leaves none.

    The fitted state is copied deeply before the block, because training changes it in place
    (a net's weights and optimizer state under ``warm_start`` or ``partial_fit``, its
    ``history_`` list); the hyper-parameters are kept as the objects the user gave (a
    ``random_state`` generator, a callback, a statsmodels process). On success the copy is
    dropped.
    """
    params = set(estimator.get_params(deep=False))
    memo: dict = {}  # one memo: attributes that share objects (a net and its optimizer) still share them
    saved = {key: value if key in params else copy.deepcopy(value, memo) for key, value in estimator.__dict__.items()}
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


@contextmanager
def fitting(estimator):
    """The block of a fit: :func:`restored_on_failure` for ``estimator``, and torch's threads
    within the CPU budget (:func:`toolkit._cpu_budget.torch_threads_within_budget`)."""
    with torch_threads_within_budget(), restored_on_failure(estimator):
        yield
