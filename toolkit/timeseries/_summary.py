"""The statsmodels-style summary of a fitted AR model: the fit statistics, the coefficient table
(coef, std err, z, P>|z|, interval) and the roots table, as DataFrames and as text."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm


def coefficient_table(params: pd.Series, bse: pd.Series, alpha: float) -> pd.DataFrame:
    """AutoReg's ``params``, ``bse``, ``tvalues`` (z), ``pvalues`` and ``conf_int(alpha)``."""
    z = params / bse
    critical = norm.ppf(1 - alpha / 2)
    return pd.DataFrame(
        {
            "coef": params,
            "std err": bse,
            "z": z,
            "P>|z|": 2 * norm.sf(np.abs(z)),
            f"[{alpha / 2:g}": params - critical * bse,
            f"{1 - alpha / 2:g}]": params + critical * bse,
        }
    )


def roots_table(roots: np.ndarray) -> pd.DataFrame:
    """AutoReg's roots table: real and imaginary parts, modulus, and ``arfreq`` (the angle / 2 pi)."""
    return pd.DataFrame(
        {
            "Real": roots.real,
            "Imaginary": roots.imag,
            "Modulus": np.abs(roots),
            "Frequency": np.arctan2(roots.imag, roots.real) / (2 * np.pi),
        },
        index=[f"AR.{i}" for i in range(1, len(roots) + 1)],
    )


@dataclass
class ARSummary:
    """What ``ARForecaster.summary()`` returns: ``info`` (model and fit statistics),
    ``coefficients`` and ``roots`` (DataFrames); ``str()`` lays them out as statsmodels does."""

    info: dict[str, str]
    coefficients: pd.DataFrame
    roots: pd.DataFrame

    def __str__(self) -> str:
        width = 85
        left = [(k, v) for k, v in self.info.items() if k in LEFT]
        right = [(k, v) for k, v in self.info.items() if k not in LEFT]
        lines = ["AutoReg Model Results".center(width), "=" * width]
        for i in range(max(len(left), len(right))):
            a = f"{left[i][0]:<19}{left[i][1]:>24}" if i < len(left) else " " * 43
            b = f"{right[i][0]:<22}{right[i][1]:>17}" if i < len(right) else ""
            lines.append(f"{a}   {b}".rstrip())
        lines.append("=" * width)
        coefficients = self.coefficients.map(lambda v: f"{v:.4f}" if abs(v) < 1e6 else f"{v:.3e}")
        lines += coefficients.to_string().splitlines()
        if len(self.roots):
            lines += ["", "Roots".center(width), "=" * width]
            lines += self.roots.map(lambda v: f"{v:.4f}").to_string().splitlines()
        lines.append("-" * width)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        info = pd.DataFrame(list(self.info.items()), columns=["", "value"]).to_html(index=False)
        return info + self.coefficients.to_html(float_format="%.4f") + self.roots.to_html(float_format="%.4f")


LEFT = ("Dep. Variable:", "Model:", "Method:", "Sample:")


def model_name(seasonal: bool, restricted: bool, exog: bool, order: int) -> str:
    """AutoReg's label: [Restr. ][Seas. ]AutoReg[-X](p)."""
    name = ("Seas. " if seasonal else "") + "AutoReg"
    name = ("Restr. " if restricted else "") + name
    return name + ("-X" if exog else "") + f"({order})"
