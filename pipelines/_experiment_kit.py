"""What CS231n's experiments (pipelines/_experiments*.py) share: the outcome record with the
sentence it checks and its verdict, the digits split, fixed-budget fits and per-epoch curves.

Each experiment runs at a size: "ci" (the smallest budget whose verdicts tests/test_notes_verdicts.py
pins), "quick" (``toolkit run``) or "full" (``toolkit run --full``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

SIZES = ("ci", "quick", "full")
VERDICTS = ("agree", "disagree", "inconclusive")


@dataclass
class Experiment:
    """One experiment's outcome: ``claim`` (what the assignment says, in its words), the
    ``verdict`` of this run on it (agree / disagree / inconclusive), ``measured`` (the figures
    behind the verdict), ``table`` (tidy: one row per run or epoch) and ``draw(fig)``."""

    name: str
    title: str
    claim: str
    verdict: str
    measured: str
    table: pd.DataFrame
    draw: Callable

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def line(self) -> str:
        return f"{self.title}: {self.verdict.upper()}. Claim: {self.claim} Measured: {self.measured}"


def pick(size: str, ci, quick, full):
    """The value of a setting at ``size``."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return {"ci": ci, "quick": quick, "full": full}[size]


def digits_split(seed: int = 0):
    """Pixels scaled to [0, 1], 75 % / 25 % stratified."""
    digits = load_digits()
    return train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )


def fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fixed budgets, on purpose
        return model.fit(X, y)


def fixed_budget(epochs: int, seed: int = 0) -> dict:
    """Exactly ``epochs`` epochs (no stopping rule can end them sooner), seeded, on the CPU."""
    return {"max_epochs": epochs, "n_iter_no_change": epochs, "random_state": seed, "device": "cpu"}


def held_out_curves(fraction: float = 0.2) -> dict:
    """Options that hold out ``fraction`` of the training rows for a per-epoch validation curve
    (the last epoch's weights kept)."""
    return {"early_stopping": True, "validation_fraction": fraction, "restore_best_weights": False}


def final(model, X_val, y_val) -> dict:
    last = model.history_[-1]
    return {
        "train_accuracy": last["train_metric"],
        "val_accuracy": model.score(X_val, y_val),
        "loss": last["train_loss"],
    }


def curves(model, **labels) -> list[dict]:
    return [
        {
            **labels,
            "epoch": h["epoch"],
            "train_loss": h["train_loss"],
            "train_accuracy": h["train_metric"],
            "val_accuracy": h["valid_metric"],
        }
        for h in model.history_
    ]


def early_mean(values) -> float:
    """Mean over the first half of the epochs: high when a curve starts high and rises fast."""
    values = np.asarray(values, dtype=float)
    return float(values[: max(1, len(values) // 2)].mean())


def late_mean(values) -> float:
    """Mean over the last third of the epochs: where a noisy curve ends."""
    values = np.asarray(values, dtype=float)
    return float(values[-max(1, len(values) // 3) :].mean())
