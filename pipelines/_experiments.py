"""CS231n's normalisation and regularisation experiments (assignment 2) on the 8x8 digits, each
checking one of the assignment's claims in its own words (see _experiment_kit.py)."""

from __future__ import annotations

from pathlib import Path

from toolkit.jobs import import_file

_here = Path(__file__).parent
normalisation = import_file(_here / "_experiments_normalisation.py")
regularisation = import_file(_here / "_experiments_regularisation.py")

EXPERIMENTS = [
    normalisation.batch_norm_vs_init_scale,
    normalisation.normalisation_vs_batch_size,
    normalisation.layer_norm_vs_width,
    regularisation.dropout,
    regularisation.three_layer_convnet_overfits,
    regularisation.convnet_normalisations,
]


def run_all(size: str) -> list:
    """Every experiment's outcomes at ``size`` ("ci", "quick" or "full"), in order."""
    return [outcome for experiment in EXPERIMENTS for outcome in experiment(size)]
