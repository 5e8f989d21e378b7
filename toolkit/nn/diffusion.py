"""Denoisers eps(x_t, t) for diffusion models (an MLP for rows, a small U-Net for images) and the
training objective that draws (t, eps) around one."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    """t -> [sin(t w_0) .. sin(t w_(h-1)), cos(t w_0) .. cos(t w_(h-1))], w_i = 10000^(-i / (h - 1)), h = dim / 2.

    The transformer's position encoding, as the DDPM paper embeds its time step.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"time embedding dimension must be an even int >= 2, got {dim}")
        half = dim // 2
        self.register_buffer("frequencies", torch.exp(-math.log(10000.0) * torch.arange(half) / max(half - 1, 1)))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, dim)
        angles = t.to(self.frequencies.dtype)[:, None] * self.frequencies
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class TimeMLP(nn.Module):
    """Sinusoidal embedding -> Linear -> SiLU -> Linear: the step as a learned vector."""

    def __init__(self, embedding_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            SinusoidalEmbedding(embedding_dim),
            nn.Linear(embedding_dim, out_dim),
            nn.SiLU(),
            nn.Linear(out_dim, out_dim),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.layers(t)


class MLPDenoiser(nn.Module):
    """eps(x_t, t) for rows (B, D): residual blocks h + Linear(SiLU(LayerNorm(h) + time(t))).

    Parameters
    ----------
    n_features : int
    hidden : int
        Width of every block.
    n_blocks : int
    time_embedding_dim : int
    """

    def __init__(self, n_features: int, hidden: int = 256, n_blocks: int = 3, time_embedding_dim: int = 64) -> None:
        super().__init__()
        self.time = TimeMLP(time_embedding_dim, hidden)
        self.inp = nn.Linear(n_features, hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(n_blocks))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(n_blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, n_features))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # (B, D), (B,) -> (B, D)
        h, time = self.inp(x), self.time(t)
        for norm, block in zip(self.norms, self.blocks):
            h = h + block(norm(h) + time)
        return self.out(h)


class ResidualBlock(nn.Module):
    """GroupNorm -> SiLU -> 3x3 conv, plus the time vector per channel, GroupNorm -> SiLU -> 3x3 conv, plus a skip."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(math.gcd(groups, c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(math.gcd(groups, c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x))) + self.time(time)[:, :, None, None]
        return self.skip(x) + self.conv2(self.act(self.norm2(h)))


class UNet(nn.Module):
    """eps(x_t, t) for images (B, C, H, W): a small U-Net.

    Down path: a residual block per level, then a stride-2 3x3 convolution; a middle block;
    up path: a 2x2 stride-2 transposed convolution back to the skip's size (cropped when
    the size was odd), the skip concatenated, a residual block. The step enters every
    residual block as a per-channel shift.

    Parameters
    ----------
    image_shape : (C, H, W)
    channels : sequence of int
        Channels per level; len(channels) - 1 down-samplings.
    groups : int
        GroupNorm groups (the gcd with each width).
    time_embedding_dim : int
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        channels: Sequence[int] = (32, 64),
        groups: int = 8,
        time_embedding_dim: int = 64,
    ) -> None:
        super().__init__()
        c, self.height, self.width = image_shape
        channels = list(channels)
        time_dim = 4 * channels[0]
        self.time = TimeMLP(time_embedding_dim, time_dim)
        self.inp = nn.Conv2d(c, channels[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(ResidualBlock(a, a, time_dim, groups) for a in channels)
        self.downsample = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(channels, channels[1:]))
        self.middle = ResidualBlock(channels[-1], channels[-1], time_dim, groups)
        self.upsample = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(channels, channels[1:]))
        self.up_blocks = nn.ModuleList(ResidualBlock(2 * a, a, time_dim, groups) for a in channels)
        self.out = nn.Sequential(
            nn.GroupNorm(math.gcd(groups, channels[0]), channels[0]), nn.SiLU(), nn.Conv2d(channels[0], c, 3, padding=1)
        )
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # (B, C, H, W), (B,) -> (B, C, H, W)
        time = self.time(t)
        h = self.inp(x)
        skips = []
        for level, block in enumerate(self.down_blocks):
            h = block(h, time)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.middle(h, time)
        for level in reversed(range(len(self.up_blocks))):
            skip = skips[level]
            if level < len(self.upsample):
                h = self.upsample[level](h)[:, :, : skip.shape[2], : skip.shape[3]]
            h = self.up_blocks[level](torch.cat([h, skip], dim=1), time)
        return self.out(h)


class DiffusionObjective(nn.Module):
    """The training step's draw: x_0 -> (eps_theta(x_t, t), eps) with t ~ U{0..T-1}, eps ~ N(0, I)
    and x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, the closed form of q(x_t | x_0)."""

    def __init__(self, denoiser: nn.Module, alpha_bar: np.ndarray) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.register_buffer("alpha_bar", torch.as_tensor(alpha_bar, dtype=torch.float32))

    def noisy(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (x0.dim() - 1)
        alpha_bar = self.alpha_bar[t].reshape(shape)
        return torch.sqrt(alpha_bar) * x0 + torch.sqrt(1 - alpha_bar) * eps

    def forward(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.randint(0, len(self.alpha_bar), (x0.shape[0],), device=x0.device)
        eps = torch.randn_like(x0)
        return self.denoiser(self.noisy(x0, t, eps), t), eps
