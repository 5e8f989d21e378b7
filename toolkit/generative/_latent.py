"""What the auto-encoders (plain and variational) share: a dense or convolutional encoder and its
mirrored decoder, and the scikit-learn transformer around them (transform to the latent space,
inverse_transform back, feature names, float32 out)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from toolkit._input_checks import check_positive_ints
from toolkit._param_validation import Interval, StrOptions
from toolkit._training import inference_batches
from toolkit.generative._base import BaseGenerativeNet
from toolkit.nn.vae import conv_decoder, conv_encoder, dense_decoder, dense_encoder


class BaseAutoEncoder(TransformerMixin, BaseGenerativeNet):
    """Base class of the auto-encoders (not for direct use).

    Subclasses build their net from :meth:`_encoder_and_decoder` and say how their net maps
    latent points to the data's mean (:meth:`_decoded_mean`).
    """

    _parameter_constraints: dict = {
        **BaseGenerativeNet._parameter_constraints,
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "architecture": [StrOptions({"mlp", "conv"})],
        "hidden": ["array-like"],
        "channels": ["array-like"],
    }
    _IMAGE_ARCHITECTURES = ("conv",)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the net computes in float32
        return tags

    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_positive_ints(self.hidden, "hidden")
        check_positive_ints(self.channels, "channels")

    def _encoder_and_decoder(self, net_shape: tuple[int, ...], n_encoder_out: int) -> tuple[nn.Module, nn.Module]:
        """An encoder x -> (N, n_encoder_out) and a decoder z -> (N, *net_shape), of the architecture."""
        if self.architecture == "conv":
            channels = check_positive_ints(self.channels, "channels")
            return conv_encoder(net_shape, n_encoder_out, channels), conv_decoder(self.latent_dim, net_shape, channels)
        hidden = check_positive_ints(self.hidden, "hidden")
        return dense_encoder(net_shape[0], n_encoder_out, hidden), dense_decoder(self.latent_dim, net_shape, hidden)

    def _decoded_mean(self, net: nn.Module, z: torch.Tensor) -> torch.Tensor:
        """The decoder's picture of x for latent points z, in the net's scale."""
        raise NotImplementedError

    @torch.no_grad()
    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        net = self._inference_net()
        return torch.cat([self._decoded_mean(net, z[a:b]) for a, b in inference_batches(len(z))])

    @torch.no_grad()
    def inverse_transform(self, Z):
        """Decode latent points to the data's space, in the input's units and form.

        Parameters
        ----------
        Z : array-like of shape (n_samples, latent_dim)

        Returns
        -------
        X : DataFrame (fitted on one: its columns), or ndarray of the input's sample shape
        """
        check_is_fitted(self, "module_")
        Z = np.array(Z.to_numpy() if isinstance(Z, pd.DataFrame) else Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.latent_dim:
            raise ValueError(f"Z must have shape (n_samples, {self.latent_dim}), got {Z.shape}")
        if not np.isfinite(Z).all():
            raise ValueError("Z contains NaN or infinity")
        return self._to_input_form(self._decode(torch.from_numpy(Z).to(self.device_)))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """z0 .. z{latent_dim - 1}."""
        check_is_fitted(self, "module_")
        return np.asarray([f"z{i}" for i in range(self.latent_dim)], dtype=object)
