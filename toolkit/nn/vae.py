"""Encoders and decoders of auto-encoders, dense or convolutional: deterministic (x -> z, the plain
auto-encoder) or Gaussian q(z | x) (the VAE), and the VAE's observation model p(x | z)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from toolkit.nn.layers import init_weights
from toolkit.nn.mlp import DenseNet


class GaussianEncoder(nn.Module):
    """x -> (mean, log variance) of a diagonal Gaussian q(z | x), from one net with 2 * latent_dim outputs."""

    def __init__(self, body: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.body, self.latent_dim = body, latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.body(x)
        return out[:, : self.latent_dim], out[:, self.latent_dim :]


def dense_encoder(n_features: int, n_out: int, hidden: Sequence[int]) -> nn.Module:
    """x (flattened) -> (N, n_out) through dense layers of widths ``hidden``."""
    return nn.Sequential(nn.Flatten(), DenseNet(n_features, n_out, hidden))


def dense_decoder(latent_dim: int, output_shape: tuple[int, ...], hidden: Sequence[int]) -> nn.Module:
    n_out = int(torch.Size(output_shape).numel())
    return nn.Sequential(DenseNet(latent_dim, n_out, tuple(reversed(hidden))), nn.Unflatten(1, output_shape))


def _conv_block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.GroupNorm(1, c_out), nn.ReLU()]


def _spatial_sizes(height: int, width: int, n_levels: int) -> list[tuple[int, int]]:
    """(H, W) after each stride-2, padding-1, 3x3 convolution."""
    sizes = [(height, width)]
    for _ in range(n_levels):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def conv_encoder(image_shape: tuple[int, int, int], n_out: int, channels: Sequence[int]) -> nn.Module:
    """Stride-2 3x3 convolutions (GroupNorm, ReLU) over ``channels``, then a linear map to ``n_out``."""
    c, h, w = image_shape
    layers: list[nn.Module] = []
    for c_in, c_out in zip([c, *channels], channels):
        layers += _conv_block(c_in, c_out, stride=2)
    last_h, last_w = _spatial_sizes(h, w, len(channels))[-1]
    layers += [nn.Flatten(), nn.Linear(channels[-1] * last_h * last_w, n_out)]
    body = nn.Sequential(*layers)
    init_weights(body, "relu")
    return body


def conv_decoder(latent_dim: int, image_shape: tuple[int, int, int], channels: Sequence[int]) -> nn.Module:
    """The encoder mirrored: a linear map to the smallest feature map, then per level nearest
    upsampling to the encoder's size at that level and a 3x3 convolution; a last 3x3
    convolution to the image's channels (no activation: the likelihood applies its own)."""
    c, h, w = image_shape
    sizes = _spatial_sizes(h, w, len(channels))
    reversed_channels = list(reversed(channels))
    last_h, last_w = sizes[-1]
    layers: list[nn.Module] = [
        nn.Linear(latent_dim, reversed_channels[0] * last_h * last_w),
        nn.Unflatten(1, (reversed_channels[0], last_h, last_w)),
        nn.ReLU(),
    ]
    for level, (c_in, c_out) in enumerate(zip(reversed_channels, [*reversed_channels[1:], reversed_channels[-1]])):
        layers += [nn.Upsample(size=sizes[-2 - level], mode="nearest"), *_conv_block(c_in, c_out, stride=1)]
    layers.append(nn.Conv2d(reversed_channels[-1], c, 3, padding=1))
    decoder = nn.Sequential(*layers)
    init_weights(decoder, "relu")
    return decoder


class VariationalAutoEncoder(nn.Module):
    """Encoder, decoder and the reparameterisation z = mean + exp(log_var / 2) * eps.

    forward(x) -> (decoder output for one z per row, mean, log_var); the decoder's output is
    the likelihood's parameter (the Gaussian mean, or Bernoulli logits).
    """

    def __init__(self, encoder: GaussianEncoder, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_var = self.encoder(x)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        return self.decoder(z), mean, log_var


class ObservationModel(nn.Module):
    """log p(x | z) per sample from the decoder's output, in nats.

    "gaussian": N(x | mean, diag(exp(log_var))) with one learned log-variance per value
    (initially 0); "bernoulli": x in [0, 1] against logits (binary cross-entropy).
    """

    def __init__(self, likelihood: str, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.likelihood = likelihood
        self.log_var = nn.Parameter(torch.zeros(shape)) if likelihood == "gaussian" else None

    def log_likelihood(self, decoded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # -> (B,)
        if self.likelihood == "gaussian":
            terms = -0.5 * (math.log(2 * math.pi) + self.log_var + (x - decoded) ** 2 * torch.exp(-self.log_var))
        else:
            terms = -F.binary_cross_entropy_with_logits(decoded, x, reduction="none")
        return terms.flatten(1).sum(dim=1)

    def mean(self, decoded: torch.Tensor) -> torch.Tensor:
        """E[x | z]: the Gaussian mean, or sigmoid(logits)."""
        return decoded if self.likelihood == "gaussian" else torch.sigmoid(decoded)

    def draw(self, mean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x ~ p(x | z) given E[x | z], with the CPU ``generator``."""
        uniform = torch.rand(mean.shape, generator=generator).to(mean.device)
        if self.likelihood == "bernoulli":
            return (uniform < mean).to(mean.dtype)
        normal = torch.randn(mean.shape, generator=generator).to(mean.device)
        return mean + torch.exp(0.5 * self.log_var) * normal


class VAEModel(nn.Module):
    """The auto-encoder and its observation model; forward(x) -> (decoded, mean, log_var) for one z per row."""

    def __init__(self, autoencoder: VariationalAutoEncoder, observation: ObservationModel) -> None:
        super().__init__()
        self.autoencoder, self.observation = autoencoder, observation

    def forward(self, x: torch.Tensor):
        return self.autoencoder(x)


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) per row: 0.5 * sum(mean^2 + exp(log_var) - 1 - log_var)."""
    return 0.5 * (mean**2 + torch.exp(log_var) - 1.0 - log_var).sum(dim=1)


class ObservationMean(nn.Module):
    """The decoder's output -> E[x | z] (the decoder graph's tail)."""

    def __init__(self, observation: ObservationModel) -> None:
        super().__init__()
        self.observation = observation

    def forward(self, decoded: torch.Tensor) -> torch.Tensor:
        return self.observation.mean(decoded)


class AutoEncoderNet(nn.Module):
    """A plain auto-encoder: x -> z = encoder(x) -> x' = decoder(z); forward gives x'."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
