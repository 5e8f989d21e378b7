"""The DDPM noise schedule and its closed forms (Ho et al. 2020; cosine: Nichol & Dhariwal 2021)."""

from __future__ import annotations

import math

import numpy as np

SCHEDULES = ("linear", "cosine")


class NoiseSchedule:
    """Variances beta_1..beta_T of the forward process q(x_t | x_(t-1)) = N(sqrt(1 - beta_t) x_(t-1), beta_t I).

    Index t runs over 0..T-1 here (step t + 1 of the paper). All arrays are float64.

    Parameters
    ----------
    kind : {"linear", "cosine"}
        "linear": beta_t evenly spaced from ``beta_start`` to ``beta_end`` (the paper's
        1e-4 to 0.02 for T = 1000). "cosine": alpha_bar_t = f(t) / f(0) with
        f(t) = cos(((t / T + s) / (1 + s)) * pi / 2)^2, s = 0.008, and
        beta_t = 1 - alpha_bar_t / alpha_bar_(t-1) clipped to ``max_beta``.
    n_steps : int, default=1000
    beta_start, beta_end : float
        Of the linear schedule, for T = 1000; scaled by 1000 / T for other T so that the
        total noise stays comparable.
    max_beta : float, default=0.999

    Attributes
    ----------
    betas : ndarray (T,)
    alphas : ndarray (T,)
        1 - beta_t.
    alpha_bar : ndarray (T,)
        prod_(s <= t) alpha_s: q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I).
    alpha_bar_prev : ndarray (T,)
        alpha_bar_(t-1), with 1 at t = 0.
    posterior_variance : ndarray (T,)
        beta~_t = beta_t (1 - alpha_bar_(t-1)) / (1 - alpha_bar_t), the variance of
        q(x_(t-1) | x_t, x_0).
    posterior_mean_coef_x0, posterior_mean_coef_xt : ndarray (T,)
        The mean of q(x_(t-1) | x_t, x_0) is coef_x0 * x_0 + coef_xt * x_t, with
        coef_x0 = beta_t sqrt(alpha_bar_(t-1)) / (1 - alpha_bar_t) and
        coef_xt = sqrt(alpha_t) (1 - alpha_bar_(t-1)) / (1 - alpha_bar_t).
    """

    def __init__(
        self,
        kind: str = "linear",
        n_steps: int = 1000,
        *,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        max_beta: float = 0.999,
    ) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        if int(n_steps) != n_steps or n_steps < 1:
            raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
        self.kind, self.n_steps = kind, int(n_steps)
        if kind == "linear":
            scale = 1000 / self.n_steps
            self.betas = np.linspace(beta_start * scale, min(beta_end * scale, max_beta), self.n_steps)
        else:
            s = 0.008
            f = np.cos((np.arange(self.n_steps + 1) / self.n_steps + s) / (1 + s) * math.pi / 2) ** 2
            self.betas = np.minimum(1 - f[1:] / f[:-1], max_beta)
        self.alphas = 1.0 - self.betas
        self.alpha_bar = np.cumprod(self.alphas)
        self.alpha_bar_prev = np.concatenate([[1.0], self.alpha_bar[:-1]])
        self.posterior_variance = self.betas * (1 - self.alpha_bar_prev) / (1 - self.alpha_bar)
        self.posterior_mean_coef_x0 = self.betas * np.sqrt(self.alpha_bar_prev) / (1 - self.alpha_bar)
        self.posterior_mean_coef_xt = np.sqrt(self.alphas) * (1 - self.alpha_bar_prev) / (1 - self.alpha_bar)

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.kind!r}, n_steps={self.n_steps})"

    def check_steps(self, t, n: int) -> np.ndarray:
        """Steps t as (n,) int64, broadcast from a scalar; a ValueError unless integers in [0, T-1]."""
        t = np.broadcast_to(np.asarray(t), (n,))
        if t.dtype.kind not in "iu" or t.min(initial=0) < 0 or t.max(initial=0) >= self.n_steps:
            raise ValueError(f"t must hold integer steps in [0, {self.n_steps - 1}]")
        return np.array(t, dtype=np.int64)

    def diffuse(self, x0: np.ndarray, t: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, a draw of q(x_t | x_0) (eq. 4),
        at each row's step t."""
        alpha_bar = self.alpha_bar[t].reshape((-1,) + (1,) * (x0.ndim - 1))
        return np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * eps

    def timesteps(self, n_sampling_steps: int | None) -> np.ndarray:
        """The decreasing steps a sampler visits: all T, or ``n_sampling_steps`` evenly spaced
        ones ending at 0 (the "respacing" of DDIM and improved DDPM)."""
        if n_sampling_steps is None or n_sampling_steps == self.n_steps:
            return np.arange(self.n_steps)[::-1].copy()
        if int(n_sampling_steps) != n_sampling_steps or not 1 <= n_sampling_steps <= self.n_steps:
            raise ValueError(f"n_sampling_steps must be an int in [1, {self.n_steps}], got {n_sampling_steps!r}")
        return np.unique(np.round(np.linspace(0, self.n_steps - 1, int(n_sampling_steps))).astype(np.int64))[
            ::-1
        ].copy()

    def update_coefficients(self, timesteps: np.ndarray, sampler: str, eta: float = 0.0) -> np.ndarray:
        """(S, 3) coefficients (a, b, c) of each reverse step x_prev = a x_t + b eps(x_t, t) + c z.

        ``timesteps`` is the decreasing sequence t_S > ... > t_1 visited; the step from t_i
        goes to t_(i-1) (to x_0 from t_1), with alpha_bar_prev = alpha_bar at t_(i-1) (1 past
        the end). Writing beta'_i = 1 - alpha_bar_t / alpha_bar_prev (beta_t itself when no
        step is skipped):

        - "ddpm", ancestral sampling (the paper's Algorithm 2):
          x_prev = (x_t - beta'_i / sqrt(1 - alpha_bar_t) eps) / sqrt(1 - beta'_i) + sigma z,
          sigma^2 = beta'_i (1 - alpha_bar_prev) / (1 - alpha_bar_t), the posterior variance.
        - "ddim" (Song et al. 2021, eq. 12): x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t),
          x_prev = sqrt(alpha_bar_prev) x_0 + sqrt(1 - alpha_bar_prev - sigma^2) eps + sigma z,
          sigma = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta'_i); eta = 0 is deterministic.
        """
        alpha_bar = self.alpha_bar[timesteps]
        alpha_bar_prev = np.concatenate([self.alpha_bar[timesteps[1:]], [1.0]])
        beta = 1 - alpha_bar / alpha_bar_prev
        variance = beta * (1 - alpha_bar_prev) / (1 - alpha_bar)
        if sampler == "ddpm":
            a = 1 / np.sqrt(1 - beta)
            b = -a * beta / np.sqrt(1 - alpha_bar)
            c = np.sqrt(variance)
        elif sampler == "ddim":
            c = eta * np.sqrt(variance)
            a = np.sqrt(alpha_bar_prev / alpha_bar)
            b = np.sqrt(np.maximum(1 - alpha_bar_prev - c**2, 0.0)) - a * np.sqrt(1 - alpha_bar)
        else:
            raise ValueError(f"sampler must be 'ddpm' or 'ddim', got {sampler!r}")
        return np.stack([a, b, c], axis=1)

    def x0_coefficients(self, timesteps: np.ndarray, sampler: str, eta: float = 0.0) -> np.ndarray:
        """(S, 5) coefficients (r, s, A, B, c) of the same steps written through the predicted x_0:

        x_0 = (x_t - s eps(x_t, t)) / r with r = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t),
        then x_prev = A x_t + B x_0 + c z. Substituting eps = (x_t - r x_0) / s into
        ``update_coefficients``' a x_t + b eps gives A = a + b / s and B = -b r / s: for "ddpm"
        the posterior mean's coef_xt and coef_x0, for "ddim" Song et al.'s step with eps
        recomputed from x_0. Written so, x_0 can be clipped to the data's range before it is
        used (diffusers' ``clip_sample``); unclipped, the step is the same.
        """
        a, b, c = self.update_coefficients(timesteps, sampler, eta).T
        r, s = np.sqrt(self.alpha_bar[timesteps]), np.sqrt(1 - self.alpha_bar[timesteps])
        return np.stack([r, s, a + b / s, -b * r / s, c], axis=1)
