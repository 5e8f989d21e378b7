"""Warnings the tests provoke on purpose, silenced where they are raised (real ones stay visible)."""

import pytest

# A net trained for a few epochs on purpose warns that it reached max_epochs before its loss
# stopped improving; only that message is silenced, not every ConvergenceWarning.
SHORT_TRAINING = pytest.mark.filterwarnings("ignore:.*reached max_epochs=:sklearn.exceptions.ConvergenceWarning")
