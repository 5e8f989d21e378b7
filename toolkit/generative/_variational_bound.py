"""The DDPM's variational bound on log p(x_0) (Ho et al. 2020, eq. 5), term by term.

    -log p(x_0) <= L = L_T + sum_(t=2..T) L_(t-1) + L_0, with
    L_T     = KL(q(x_T | x_0) || N(0, I)),
    L_(t-1) = KL(q(x_(t-1) | x_t, x_0) || p(x_(t-1) | x_t)),  x_t ~ q(x_t | x_0),
    L_0     = -log p(x_0 | x_1).

q(x_(t-1) | x_t, x_0) = N(coef_x0 x_0 + coef_xt x_t, beta~_t I) and the model's reverse step
p(x_(t-1) | x_t) = N(coef_x0 x_0_hat + coef_xt x_t, beta~_t I) share their variance (the
"ddpm" sampler's), so L_(t-1) = coef_x0^2 |x_0 - x_0_hat|^2 / (2 beta~_t), with x_0_hat the
net's prediction (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t). The decoder
p(x_0 | x_1) is N(x_0_hat, beta_1 I) for continuous data, and for images of integer levels
the paper's discretised Gaussian: the probability of the bin of width 2 / (K - 1) around each
value (the outermost bins reaching to infinity). Index t runs over 0..T-1 here (step t + 1
of the paper).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from toolkit.generative._schedule import NoiseSchedule

LOG_2PI = math.log(2 * math.pi)


def prior_term(x0: torch.Tensor, alpha_bar_last: float) -> torch.Tensor:
    """L_T per row: KL(N(sqrt(ab_T) x_0, (1 - ab_T) I) || N(0, I)), summed over the values."""
    variance = 1 - alpha_bar_last
    terms = 0.5 * (alpha_bar_last * x0**2 + variance - 1 - math.log(variance))
    return terms.flatten(1).sum(dim=1)


def step_term(x0: torch.Tensor, x0_hat: torch.Tensor, coef_x0, posterior_variance) -> torch.Tensor:
    """L_(t-1) per row for t >= 1: coef_x0^2 |x_0 - x_0_hat|^2 / (2 beta~_t), with the
    coefficients one per row (arrays of shape (n,))."""
    per_row = torch.as_tensor(coef_x0**2 / (2 * posterior_variance), dtype=x0.dtype, device=x0.device)
    return per_row * ((x0 - x0_hat) ** 2).flatten(1).sum(dim=1)


def gaussian_decoder_term(x0: torch.Tensor, x0_hat: torch.Tensor, variance: float) -> torch.Tensor:
    """L_0 per row for continuous data: -log N(x_0; x_0_hat, variance I)."""
    return (0.5 * ((x0 - x0_hat) ** 2 / variance + LOG_2PI + math.log(variance))).flatten(1).sum(dim=1)


def log_normal_mass(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for a < b, accurate in both tails: from the side of zero where
    the interval's middle lies, log Phi(b) + log(1 - Phi(a) / Phi(b)) or its mirror image."""
    log_ndtr = torch.special.log_ndtr
    left = log_ndtr(b) + torch.log1p(-torch.exp(log_ndtr(a) - log_ndtr(b)).clamp(max=1 - 1e-12))
    right = log_ndtr(-a) + torch.log1p(-torch.exp(log_ndtr(-b) - log_ndtr(-a)).clamp(max=1 - 1e-12))
    return torch.where(a + b > 0, right, left)


def discretised_decoder_term(x0: torch.Tensor, x0_hat: torch.Tensor, variance: float, n_levels: int) -> torch.Tensor:
    """L_0 per row for values on ``n_levels`` evenly spaced levels of [-1, 1]: minus the log of
    the probability N(x_0_hat, variance) gives each value's bin (x - h, x + h), h = 1 / (n_levels
    - 1), with the lowest bin reaching down to -inf and the highest up to +inf."""
    half, std = 1.0 / (n_levels - 1), math.sqrt(variance)
    upper = (x0 + half - x0_hat) / std
    lower = (x0 - half - x0_hat) / std
    at_bottom, at_top = x0 <= -1 + 1e-6, x0 >= 1 - 1e-6
    log_p = torch.where(
        at_bottom,
        torch.special.log_ndtr(upper),  # the lowest bin: P(X < x + h)
        torch.where(at_top, torch.special.log_ndtr(-lower), log_normal_mass(lower, upper)),  # the highest: P(X > x - h)
    )
    return -log_p.flatten(1).sum(dim=1)


def timestep_passes(n_steps: int, n_rows: int, n_timesteps: int | None, generator) -> tuple[list[np.ndarray], float]:
    """(the t of each pass, one per row; the weight of the step terms): 0 (the decoder) first,
    then every t of 1..T-1, or ``n_timesteps`` draws per row, each row its own, the sum over t
    estimated as (T - 1) times their mean."""
    if n_timesteps is None:
        return [np.full(n_rows, t) for t in range(n_steps)], 1.0
    draws = torch.randint(1, n_steps, (int(n_timesteps), n_rows), generator=generator).numpy()
    return [np.zeros(n_rows, dtype=np.int64), *draws], (n_steps - 1) / n_timesteps


def negative_bound(
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    predict_x0: Callable[[np.ndarray], torch.Tensor],
    passes: list[np.ndarray],
    weight: float,
    n_levels: int | None,
) -> torch.Tensor:
    """L per row, in nats: L_T, the weighted step terms of the passes' t >= 1, and L_0 (the
    discretised decoder for ``n_levels`` integer levels, else the Gaussian one).

    ``x0`` is in the net's scale (float64); ``predict_x0(t)`` gives the net's x_0_hat for one
    draw x_t ~ q(x_t | x_0) at each row's step t."""
    total = prior_term(x0, float(schedule.alpha_bar[-1]))
    for k, t in enumerate(passes):
        x0_hat = predict_x0(t)
        if k > 0:
            total += weight * step_term(x0, x0_hat, schedule.posterior_mean_coef_x0[t], schedule.posterior_variance[t])
        elif n_levels is not None:
            total += discretised_decoder_term(x0, x0_hat, schedule.betas[0], n_levels)
        else:
            total += gaussian_decoder_term(x0, x0_hat, schedule.betas[0])
    return total


def check_levels(X: np.ndarray, n_levels: int, low: np.ndarray, high: np.ndarray) -> None:
    """ValueError unless X holds integer levels within [low, high]: what the discretised decoder scores."""
    integral = np.array_equal(X, np.round(X))
    if not integral or X.min() < np.min(low) - 1e-4 or X.max() > np.max(high) + 1e-4:
        raise ValueError(
            f"the model was fitted on images of {n_levels} integer levels in [{np.min(low):.0f}, {np.max(high):.0f}] "
            f"and scores them with a discretised decoder; X holds values in [{X.min():g}, {X.max():g}]"
            + ("" if integral else ", not all integers")
        )


@torch.no_grad()
def predicted_x0(
    x0: torch.Tensor, t: np.ndarray, alpha_bar: np.ndarray, noise: torch.Tensor, denoiser, batches
) -> torch.Tensor:
    """x_0_hat = (x_t - sqrt(1 - ab_t) eps_theta(x_t, t)) / sqrt(ab_t) for the draw
    x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) ``noise`` ~ q(x_t | x_0), at each row's own step t
    (float64; the net reads float32, in the row ranges ``batches(n)`` gives)."""
    shape = (-1,) + (1,) * (x0.dim() - 1)
    r = torch.as_tensor(np.sqrt(alpha_bar[t]), device=x0.device).reshape(shape)
    s = torch.as_tensor(np.sqrt(1 - alpha_bar[t]), device=x0.device).reshape(shape)
    x_t = (r * x0 + s * noise.double()).float()
    steps = torch.as_tensor(t, device=x0.device)
    eps = torch.cat([denoiser(x_t[a:b], steps[a:b]) for a, b in batches(len(x_t))]).double()
    return (x_t.double() - s * eps) / r
