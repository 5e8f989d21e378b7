"""End-to-end jobs: what a pipeline in ``pipelines/`` returns, and how ``toolkit run`` finds them.

Importing this package is cheap (no torch, no onnx), so that listing pipelines is instant;
running them lives in :mod:`toolkit.jobs._runner`, which the ``toolkit run`` command loads.
"""

from toolkit.jobs._catalog import PipelineInfo, describe, discover, import_file, load_pipeline
from toolkit.jobs._job import Baseline, Job

__all__ = ["Baseline", "Job", "PipelineInfo", "describe", "discover", "import_file", "load_pipeline"]
