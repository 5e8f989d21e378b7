"""Generative models and their relatives: a plain and a variational auto-encoder, a denoising diffusion model."""

from toolkit.generative._autoencoder import AutoEncoder
from toolkit.generative._ddpm import DDPM
from toolkit.generative._quality import energy_distance, shuffled_columns
from toolkit.generative._schedule import NoiseSchedule
from toolkit.generative._vae import VAE

__all__ = ["DDPM", "VAE", "AutoEncoder", "NoiseSchedule", "energy_distance", "shuffled_columns"]
