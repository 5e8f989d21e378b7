"""scikit-learn's common estimator checks over every public estimator they apply to (the
registry's, at the sizes of tests/_estimators.py; exceptions and reasons in
toolkit/_estimator_checks.py)."""

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from tests._estimators import SMALL
from tests._warnings import SHORT_TRAINING
from toolkit._estimator_checks import expected_failed_checks

pytestmark = SHORT_TRAINING

ESTIMATORS = [small.make() for small in SMALL.values() if small.common_checks]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        if check.func.__name__ == "check_supervised_y_no_nan":  # the check casts its infinite y itself
            warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
        check(estimator)
