"""Numerical gradients by central differences, and CS231n's relative error."""

from __future__ import annotations

import numpy as np


def numerical_gradient(f, x: np.ndarray, dout: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """d sum(f(x) * dout) / dx by the five-point central difference
    (-f(x + 2h) + 8 f(x + h) - 8 f(x - h) + f(x - 2h)) / 12h, one entry of x at a time (x is
    restored). Its O(h^4) error lets h be large enough that rounding stays near 1e-11, which
    CS231n's two-point difference does not (its 1e-6-level noise on small entries would mask
    a 1e-6 check). The differences of the outputs are taken before the sum with dout, so
    unchanged outputs cancel exactly."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        values = []
        for step in (2 * h, h, -h, -2 * h):
            x[index] = saved + step
            values.append(np.array(f(x), dtype=np.float64))
        x[index] = saved
        difference = (8 * (values[1] - values[2]) - (values[0] - values[3])) / (12 * h)
        grad[index] = (difference * dout).sum()
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(1e-8, |a| + |b|), elementwise: CS231n's gradient-check measure."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
