"""Mixture models with scikit-learn's interface, fitted in torch."""

from toolkit.mixture._gaussian_mixture import GaussianMixture

__all__ = ["GaussianMixture"]
