"""The reverse process of a DDPM as a small object with ``step``, as diffusers' schedulers are:
the denoising net stays outside it (``DDPM`` feeds it the net's predictions).

A :class:`DiffusionSampler` is made from the noise schedule and the sampler settings (ancestral
"ddpm" sampling, Ho et al. 2020, Algorithm 2; or "ddim", Song et al. 2021), visits
``timesteps`` t_S > ... > t_1 and holds each step's coefficients through the predicted x_0
(:meth:`NoiseSchedule.x0_coefficients`); the exported sampler graph is built from the same
two arrays, so the graph and :meth:`DDPM.sample` cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real

import torch

from toolkit.generative._schedule import NoiseSchedule

SAMPLERS = ("ddpm", "ddim")


class DiffusionSampler:
    """The steps x_T -> x_0 of one sampler setting.

    Parameters
    ----------
    schedule : NoiseSchedule
    sampler : {"ddpm", "ddim"}, default="ddpm"
    n_sampling_steps : int, optional
        Steps visited (evenly spaced, :meth:`NoiseSchedule.timesteps`); default all T.
    eta : float, default=0.0
        DDIM's noise scale (0: deterministic; 1: DDPM's variance).
    clip_range : (low, high) arrays or None
        Bounds the predicted x_0 is clipped to at each step (diffusers' ``clip_sample``), in
        the net's scale; None: no clipping.

    Attributes
    ----------
    timesteps : ndarray of int64, shape (S,)
        The steps visited, decreasing.
    coefficients : ndarray of shape (S, 5)
        (r, s, A, B, c) of each step.
    """

    def __init__(
        self,
        schedule: NoiseSchedule,
        sampler: str = "ddpm",
        n_sampling_steps: int | None = None,
        eta: float = 0.0,
        clip_range: tuple | None = None,
    ) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if not isinstance(eta, Real) or eta < 0:
            raise ValueError(f"eta must be a float >= 0, got {eta!r}")
        self.timesteps = schedule.timesteps(n_sampling_steps)
        self.coefficients = schedule.x0_coefficients(self.timesteps, sampler, eta)
        self.clip_range = clip_range

    def __len__(self) -> int:
        return len(self.timesteps)

    def step(self, eps: torch.Tensor, i: int, x: torch.Tensor, noise: Callable[[], torch.Tensor]) -> torch.Tensor:
        """x_prev from x = x_t at the i-th visited step, given the net's eps_theta(x_t, t):

        1. x_0 = (x_t - s eps) / r, r = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t) (Ho et al., eq. 15);
        2. x_0 clipped to ``clip_range`` when given;
        3. x_prev = A x_t + B x_0 + c z, z = ``noise()`` ~ N(0, I) drawn only when c > 0 (the
           posterior mean and variance for "ddpm", eq. 12 of Song et al. for "ddim").
        """
        r, s, a, b, c = self.coefficients[i]
        x0 = (x - s * eps) / r
        if self.clip_range is not None:
            low, high = (torch.as_tensor(bound, dtype=x.dtype, device=x.device) for bound in self.clip_range)
            x0 = torch.minimum(torch.maximum(x0, low), high)
        x = a * x + b * x0
        return x + c * noise() if c > 0 else x

    @torch.no_grad()
    def run(
        self,
        denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        step_noise: Callable[[int], torch.Tensor],
    ) -> torch.Tensor:
        """x_T -> x_0 with ``denoiser(x_t, t)``; ``step_noise(i)`` gives the i-th step's z."""
        t = torch.empty(len(x), dtype=torch.int64, device=x.device)
        for i, step in enumerate(self.timesteps):
            x = self.step(denoiser(x, t.fill_(int(step))), i, x, lambda i=i: step_noise(i))
        return x
