"""End-to-end jobs: what a pipeline in ``pipelines/`` returns, and how ``toolkit run`` finds them.

Importing this package is cheap (no torch, no onnx, no matplotlib until a figure is drawn), so
that listing pipelines is instant;
running them lives in :mod:`toolkit.jobs._runner`, which the ``toolkit run`` command loads.
"""

from toolkit.jobs._catalog import PipelineInfo, describe, discover, import_file, load_pipeline
from toolkit.jobs._figures import (
    confusion_matrix_figure,
    full_covariances,
    latent_figure,
    mixture_figure,
    reconstruction_figure,
    training_curves,
)
from toolkit.jobs._job import Baseline, Job

__all__ = [
    "Baseline",
    "Job",
    "PipelineInfo",
    "confusion_matrix_figure",
    "describe",
    "discover",
    "full_covariances",
    "import_file",
    "latent_figure",
    "load_pipeline",
    "mixture_figure",
    "reconstruction_figure",
    "training_curves",
]
