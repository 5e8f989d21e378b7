"""Loading the optional compiled kernels (mixture/_em_kernel, timeseries/_ar_kernel).

An install without a C compiler builds no kernel, and the family quietly takes its torch or
numpy pass. A kernel that WAS built but does not import (a stale build for another Python, a
missing symbol) also falls back, but says so: a warning names the file and the error, so that
a slow fit is never a silent surprise.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import warnings
from pathlib import Path
from types import ModuleType


def load_kernel(module: str, fallback: str) -> ModuleType | None:
    """Import the compiled ``module`` (dotted name); None when it cannot be imported.

    Parameters
    ----------
    module : str
        E.g. "toolkit.mixture._em_kernel".
    fallback : str
        What runs without it, for the warning (e.g. "the torch pass").
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package, name = module.rsplit(".", 1)
        folder = Path(importlib.import_module(package).__file__).parent
        built = [
            folder / f"{name}{suffix}"
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
            if (folder / f"{name}{suffix}").exists()
        ]
        if built:
            warnings.warn(
                f"{built[0]} was built but does not import ({error}); {fallback} runs instead",
                RuntimeWarning,
                stacklevel=2,
            )
        return None
