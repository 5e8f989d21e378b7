"""Generative models: a variational auto-encoder and a denoising diffusion model."""

from toolkit.generative._ddpm import DDPM
from toolkit.generative._quality import energy_distance, shuffled_columns
from toolkit.generative._schedule import NoiseSchedule
from toolkit.generative._vae import VAE

__all__ = ["DDPM", "VAE", "NoiseSchedule", "energy_distance", "shuffled_columns"]
