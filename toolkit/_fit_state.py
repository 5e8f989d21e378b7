"""Fits that fail leave no half-fitted estimator behind (shared by every family; no torch here)."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def restored_on_failure(estimator):
    """Inside the block, a failure (any exception) puts the estimator's attributes back as
    they were: fitted attributes of an earlier fit stay, and a first fit leaves none."""
    state = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(state)
        raise
