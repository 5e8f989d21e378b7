"""Warnings the tests provoke on purpose, silenced where they are raised (real ones stay visible)."""

import pytest

# A net trained for a few epochs (or steps) on purpose warns that it reached its budget before
# its loss stopped improving; only that message is silenced, not every ConvergenceWarning.
SHORT_TRAINING = pytest.mark.filterwarnings(
    r"ignore:.*reached max_(epochs|steps)=:sklearn.exceptions.ConvergenceWarning"
)
