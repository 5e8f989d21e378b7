"""The base of the generative nets (VAE, DDPM): unsupervised fit, rows or images, data scaling.

Fitting reuses :class:`~toolkit._net_estimator.BaseNeuralNet`'s training (the one
loop, early stopping, warm start, device, seeding); the "targets" are the scaled inputs
themselves, which the model's loss reads next to the net's outputs.
"""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from toolkit._fit_state import fitting
from toolkit._input_checks import image_net_shape
from toolkit._net_estimator import BaseNeuralNet, StepBudget
from toolkit._param_validation import Interval
from toolkit.nn.heads import AffineOutput, DataScaling


class BaseGenerativeNet(StepBudget, BaseNeuralNet):
    """Base class of the generative nets (not for direct use).

    Subclasses say which architectures read images (``_IMAGE_ARCHITECTURES``) and the range
    their net wants image data in (``_image_range``).
    """

    _parameter_constraints: dict = {
        **BaseNeuralNet._parameter_constraints,
        **StepBudget._budget_constraints,
        "image_shape": ["array-like", None],
        "ema_decay": [Interval(Real, 0, 1, closed="left")],
    }
    _IMAGE_ARCHITECTURES: tuple[str, ...] = ()
    _scores_training = False

    def _ema_decay(self) -> float:
        return self.ema_decay

    # ------------------------------------------------------------------ shapes
    def _architecture(self) -> str:
        return self.architecture

    def _reads_images(self) -> bool:
        return self._architecture() in self._IMAGE_ARCHITECTURES

    def _net_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C, H, W) for an image architecture; the flat row (D,) otherwise (images flattened)."""
        if self._reads_images():
            return image_net_shape(sample_shape, self.image_shape)
        if self.image_shape is not None and len(sample_shape) == 1:
            image_net_shape(sample_shape, self.image_shape)  # checks that the sizes agree
        return (int(np.prod(sample_shape)),)

    def _image_range(self) -> tuple[float, float]:
        return (0.0, 1.0)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Train on X (rows or images).

        Parameters
        ----------
        X : array-like or DataFrame
            Rows (N, D), or images (N, C, H, W), (N, H, W) or flat rows with ``image_shape``.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._check_parameters()
        with fitting(self):
            continuing = self.warm_start and hasattr(self, "module_")
            X = self._check_X(X, reset=not continuing)
            if len(X) < 2:
                raise ValueError(f"n_samples={len(X)}: training needs at least 2 samples")
            if not continuing:
                self._fit_scaling(X)
                self._initialize()
            scaled = self._scale(X)
            self._train(scaled, scaled, max_epochs=self.max_epochs, partial=False)
        return self

    def _n_outputs(self) -> int:
        return 0  # the nets are sized by the input shape alone

    def _fit_scaling(self, X: np.ndarray) -> None:
        """``data_offset_`` and ``data_scale_`` (broadcast over one sample of the net's shape).

        Images (pixels share one scale) go linearly from [min, max] of the training data to
        the range the net wants (``_image_range``); rows are standardised per feature
        (constant features keep scale 1).
        """
        if len(self.net_shape_) == 3 or self.image_shape is not None:
            low, high = self._image_range()
            x_min, x_max = float(X.min()), float(X.max())
            scale = (x_max - x_min) / (high - low) if x_max > x_min else 1.0
            offset, scale = np.float32(x_min - low * scale), np.float32(scale)
        else:
            offset, scale = X.mean(axis=0), X.std(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
        self.data_offset_ = np.asarray(offset, dtype=np.float32)
        self.data_scale_ = np.asarray(scale, dtype=np.float32)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.data_offset_) / self.data_scale_).astype(np.float32)

    def _scaling(self) -> DataScaling:
        return DataScaling(self.data_offset_, self.data_scale_)

    def _unscaling(self) -> AffineOutput:
        return AffineOutput(torch.as_tensor(self.data_scale_), torch.as_tensor(self.data_offset_))

    # ------------------------------------------------------------------ outputs
    def _to_input_form(self, scaled: torch.Tensor):
        """Net-space samples (n, *net_shape_) back in the input's units and form: a DataFrame
        with the input's columns when fitted on one, else an array of per-sample shape
        ``input_shape_``."""
        values = self._unscaling()(scaled.detach().cpu()).numpy()
        values = values.reshape((len(values), *self.input_shape_))
        if hasattr(self, "feature_names_in_"):
            return pd.DataFrame(values, columns=self.feature_names_in_)
        return values

    def _check_n_samples(self, n_samples) -> int:
        check_is_fitted(self, "module_")
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        return int(n_samples)

    def _generator(self, random_state) -> torch.Generator:
        """A CPU torch generator seeded from ``random_state`` (None: fresh entropy)."""
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        return torch.Generator().manual_seed(seed)

    def _randn(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Standard normal draws from the CPU generator (so CPU and CUDA runs draw the same), on the device."""
        return torch.randn(shape, generator=generator).to(self.device_)

    def _exportable_module(self) -> nn.Module:
        """A CPU copy of the fitted net in eval mode, for a graph."""
        return copy.deepcopy(self._inference_net()).cpu().eval()
