"""The DDPM's likelihood: the variational bound of :mod:`toolkit.generative._variational_bound`
on the samples of X, per sample (``log_likelihood``) and in bits per value (``bits_per_dim``)."""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from toolkit._training import inference_batches
from toolkit.generative import _variational_bound as vb


class DDPMLikelihood:
    """Mixin of :class:`~toolkit.generative.DDPM`: its likelihood methods, read from the fitted
    schedule, scaling, levels and net."""

    @torch.no_grad()
    def log_likelihood(self, X, n_timesteps: int | None = None, random_state=None) -> np.ndarray:
        """The variational lower bound on log p(x) of each sample (Ho et al. 2020, eq. 5), in nats.

        -log p(x_0) <= L_T + sum_(t=2..T) KL(q(x_(t-1) | x_t, x_0) || p(x_(t-1) | x_t)) -
        log p(x_0 | x_1), each KL between Gaussians of the same variance (see
        :mod:`toolkit.generative._variational_bound`); this returns -L. The decoder p(x_0 | x_1)
        is Gaussian with variance beta_1 for continuous data, where the figure is a log-density
        in the input's units (the scaling's Jacobian included), and for images of integer
        values (pixels) the paper's discretised Gaussian over those levels, where it is the
        log-probability of the exact image.

        Parameters
        ----------
        X : array-like or DataFrame
            Samples in the input's units and form (integer levels within the training range
            for a model fitted on integer images).
        n_timesteps : int, optional
            How many t of 2..T to draw (uniformly, the sum estimated as (T - 1) times their
            mean); None sums over every t. One x_t ~ q(x_t | x_0) per sample and t either way.
        random_state : int, RandomState instance or None
            Seeds the draws (None: the estimator's ``random_state``).

        Returns
        -------
        log_p : ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "module_")
        X = self._check_X(X, reset=False)
        if self.n_levels_ is not None:  # the [-1, 1] range in the input's units
            vb.check_levels(
                X, self.n_levels_, self.data_offset_ - self.data_scale_, self.data_offset_ + self.data_scale_
            )
        if n_timesteps is not None and (
            not isinstance(n_timesteps, Integral) or isinstance(n_timesteps, bool) or n_timesteps < 1
        ):
            raise ValueError(f"n_timesteps must be an int >= 1 or None, got {n_timesteps!r}")
        generator = self._generator(self.random_state if random_state is None else random_state)
        passes, weight = vb.timestep_passes(self.n_steps, len(X), n_timesteps, generator)
        x0 = torch.from_numpy(self._scale(X)).to(self.device_).double()
        denoiser = self._inference_net().denoiser

        def predict_x0(t: np.ndarray) -> torch.Tensor:
            draw = self._randn(tuple(x0.shape), generator)
            return vb.predicted_x0(x0, t, self.schedule_.alpha_bar, draw, denoiser, inference_batches)

        total = vb.negative_bound(x0, self.schedule_, predict_x0, passes, weight, self.n_levels_)
        if self.n_levels_ is not None:
            return -total.cpu().numpy()
        return -total.cpu().numpy() - float(np.sum(np.broadcast_to(np.log(self.data_scale_), self.net_shape_)))

    def bits_per_dim(self, X, n_timesteps: int | None = None, random_state=None) -> float:
        """The variational bound in bits per value: -mean(log_likelihood(X)) / (values per sample x ln 2).

        For integer images (the discretised decoder) this is the figure diffusion papers
        report; for continuous data it is a differential entropy and can be negative.
        """
        log_p = self.log_likelihood(X, n_timesteps=n_timesteps, random_state=random_state)
        return float(-log_p.mean() / (np.prod(self.net_shape_) * math.log(2)))
