"""Input checks shared by all estimators, built on ``sklearn.utils.validation``."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array, validate_data


def reject_non_numeric_columns(X, what: str = "X") -> None:
    """Raise a TypeError naming the DataFrame columns that are not numeric or boolean."""
    if not isinstance(X, pd.DataFrame):
        return
    is_numeric = {dtype: pd.api.types.is_numeric_dtype(dtype) for dtype in pd.unique(X.dtypes.to_numpy())}
    if all(is_numeric.values()):
        return
    bad = {str(c): str(dtype) for c, dtype in X.dtypes.items() if not is_numeric[dtype]}
    raise TypeError(
        f"{what} has non-numeric column(s) {list(bad)} (dtypes {list(bad.values())}); "
        "convert or encode them first (e.g. sklearn.preprocessing.OneHotEncoder for categories)"
    )


def check_features(estimator, X, *, reset: bool, dtype=np.float32) -> np.ndarray:
    """Validate X as a finite numeric array of ``dtype`` with at least two dimensions.

    2-D inputs (arrays, DataFrames) go through scikit-learn's ``validate_data``, which sets or
    checks ``n_features_in_`` and ``feature_names_in_`` (a DataFrame whose columns differ in
    name or order from fit is refused). Inputs with more dimensions (images, sequences) are
    checked with ``check_array(allow_nd=True)``; their per-sample shape is the caller's to
    check. With ``reset`` the estimator's ``n_features_in_`` becomes the number of scalars
    per sample.
    """
    reject_non_numeric_columns(X)
    ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim
    if ndim > 2:
        X = check_array(X, allow_nd=True, dtype=dtype, ensure_min_samples=1, input_name="X")
        if reset:
            estimator.n_features_in_ = int(np.prod(X.shape[1:]))
            if hasattr(estimator, "feature_names_in_"):
                del estimator.feature_names_in_
        return X
    return validate_data(estimator, X, reset=reset, dtype=dtype)


def check_samples(X, sample_shape: tuple[int, ...], name: str, space: str) -> np.ndarray:
    """X as a contiguous float32 array of shape (n, *sample_shape), all finite; ValueError
    naming ``name``, the expected shape and ``space`` (what the values are) otherwise."""
    X = np.asarray(X, dtype=np.float32)
    if X.shape[1:] != sample_shape:
        raise ValueError(f"{name} must have shape (n, {', '.join(map(str, sample_shape))}) ({space}), got {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return np.ascontiguousarray(X)


def check_positive_ints(values, name: str, *, allow_empty: bool = False) -> tuple[int, ...]:
    """``values`` as a tuple of positive ints (empty only with ``allow_empty``), or a ValueError naming ``name``."""
    values = (values,) if isinstance(values, Integral) else tuple(values)
    if (not values and not allow_empty) or any(not isinstance(v, Integral) or v < 1 for v in values):
        kind = "a sequence" if allow_empty else "a non-empty sequence"
        raise ValueError(f"{name} must be {kind} of positive ints, got {values!r}")
    return values


def image_net_shape(sample_shape: tuple[int, ...], image_shape) -> tuple[int, int, int]:
    """(C, H, W) of the images in inputs whose samples have ``sample_shape``.

    Samples may be (C, H, W), (H, W) (one channel), or flat rows of ``prod(image_shape)``
    values read in C-order. Flat rows without ``image_shape`` are one-row, one-channel
    images (1, 1, n_features).
    """
    if image_shape is not None:
        image_shape = tuple(int(d) for d in image_shape)
        image_shape = (1, *image_shape) if len(image_shape) == 2 else image_shape
    if len(sample_shape) == 3:
        shape = sample_shape
    elif len(sample_shape) == 2:
        shape = (1, *sample_shape)
    elif len(sample_shape) == 1:
        if image_shape is None:
            return (1, 1, sample_shape[0])
        if int(np.prod(image_shape)) != sample_shape[0]:
            raise ValueError(
                f"image_shape={image_shape} holds {int(np.prod(image_shape))} values per image, "
                f"but X has {sample_shape[0]} features per row"
            )
        return image_shape
    else:
        raise ValueError(
            "X must hold images as (N, C, H, W), (N, H, W) or flat rows (N, C*H*W); got samples of shape "
            f"{sample_shape}"
        )
    if image_shape is not None and image_shape != shape:
        raise ValueError(f"X holds images of shape {shape}, but image_shape={image_shape}")
    return shape
