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

import torch

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
