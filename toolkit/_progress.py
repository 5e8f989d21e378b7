"""The progress bars of the training and EM loops (tqdm), and the one switch that hides them for
a whole process.

tqdm reads ``TQDM_DISABLE`` once, when it is imported, and only for arguments a bar is not
given; the loops pass ``disable`` themselves (from ``verbose``), and ``toolkit run``'s worker
processes import tqdm before they set the variable. So the variable is read here, at each bar.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def progress_bar(iterable, *, verbose: bool, **options) -> tqdm:
    """A tqdm bar over ``iterable``, shown when ``verbose`` and the process has not turned bars off
    (``TQDM_DISABLE`` set to 1 or true, as ``toolkit run``'s workers do).

    Parameters
    ----------
    iterable : iterable
        What the loop goes over.
    verbose : bool
        The estimator's wish to show the bar.
    **options
        tqdm's other arguments (unit, desc, leave, ...).

    Returns
    -------
    tqdm
    """
    hidden = os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true")
    return tqdm(iterable, disable=hidden or not verbose, **options)
