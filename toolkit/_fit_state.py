"""Fits that fail leave no half-fitted estimator behind (shared by every family; no torch here)."""

from __future__ import annotations

import copy
from contextlib import contextmanager


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
