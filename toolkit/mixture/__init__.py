"""Mixture models with scikit-learn's interface, fitted in torch.

The estimator is imported on first use (PEP 562), so that a Dask worker can load the
numpy-only kernel pass (``toolkit.mixture._kernel_pass``) without importing torch.
"""

__all__ = ["GaussianMixture"]


def __getattr__(name: str):
    if name == "GaussianMixture":
        from toolkit.mixture._gaussian_mixture import GaussianMixture

        return GaussianMixture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
