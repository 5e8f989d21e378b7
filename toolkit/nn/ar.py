"""The AR(p) forecast recursion as a torch module, for export."""

from __future__ import annotations

import torch
from torch import nn


class ARForecastModule(nn.Module):
    """Forecast ``horizon`` steps for S series from windows of their last p observations.

    Input (B, S, w): per series y[n-p], ..., y[n-1] (oldest first), plus a last column with
    the 0-based time index n of the first forecast when the model has a time trend (w = p + 1).
    With ``squeeze_series`` (one series) the input is (B, w) and outputs (B, H).
    Outputs: point forecasts (B, S, H) and the bounds mean -/+ half_width.

    Buffers (one row per series): ``ar`` (S, p) with ar[:, p - l] = phi_l (zeros for unused
    lags), ``const`` (S,), ``slope`` (S,) applied to time + 1, ``half_width`` (S, H).
    """

    def __init__(
        self,
        ar: torch.Tensor,
        const: torch.Tensor,
        slope: torch.Tensor | None,
        half_width: torch.Tensor,
        squeeze_series: bool,
    ) -> None:
        super().__init__()
        self.register_buffer("ar", ar)  # (S, p)
        self.register_buffer("const", const)  # (S,)
        self.register_buffer("slope", torch.zeros_like(const) if slope is None else slope)  # (S,)
        self.register_buffer("half_width", half_width)  # (S, H)
        self.has_time = slope is not None
        self.order = ar.shape[1]
        self.horizon = half_width.shape[1]
        self.squeeze_series = squeeze_series

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.squeeze_series:
            x = x.unsqueeze(1)  # (B, 1, w)
        window = x[:, :, : self.order]  # (B, S, p)
        steps = []
        for step in range(self.horizon):
            value = self.const + (window * self.ar).sum(dim=2)  # (B, S)
            if self.has_time:
                value = value + self.slope * (x[:, :, self.order] + step + 1)
            steps.append(value)
            window = torch.cat([window[:, :, 1:], value.unsqueeze(2)], dim=2)  # (B, S, p)
        mean = torch.stack(steps, dim=2)  # (B, S, H)
        outputs = (mean, mean - self.half_width, mean + self.half_width)
        return tuple(o.squeeze(1) for o in outputs) if self.squeeze_series else outputs
