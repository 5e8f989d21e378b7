"""The parameter-table vocabulary (``Interval``, ``StrOptions``), from scikit-learn's private
``sklearn.utils._param_validation``, imported in this one place.

scikit-learn's developer guide has estimators declare ``_parameter_constraints`` with these
classes and check them with ``BaseEstimator._validate_params``, but keeps the module private.
Should a release move it, importing toolkit fails here with what to do, not deep inside an
estimator (tests/test_packaging.py checks both pieces against the installed scikit-learn).
"""

try:
    from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
except ImportError as error:  # pragma: no cover - only with a scikit-learn that moved the module
    import sklearn

    raise ImportError(
        f"toolkit's parameter tables use Interval and StrOptions from sklearn.utils._param_validation, "
        f"which scikit-learn {sklearn.__version__} does not provide ({error}); install a scikit-learn "
        "that does (toolkit was written against 1.6 to 1.9) or report it to toolkit"
    ) from error

__all__ = ["Interval", "InvalidParameterError", "StrOptions"]
