"""The AR(p) forecast recursion as a torch module, for export."""

from __future__ import annotations

import torch
from torch import nn


class ARForecastModule(nn.Module):
    """Forecast ``horizon`` steps from windows of the last p observations.

    Input (B, p) holds y[n-p], ..., y[n-1] (oldest first), plus a last column with the
    0-based time index n of the first forecast when the model has a time trend. Outputs the
    point forecasts (B, H) and the interval bounds mean -/+ half_width (B, H).

    Buffers: ``ar`` (p,) with ar[p - l] = phi_l (zeros for unused lags), ``const``,
    ``slope`` (the trend coefficient, applied to time + 1), ``half_width`` (H,).
    """

    def __init__(self, ar: torch.Tensor, const: float, slope: float | None, half_width: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("ar", ar)  # (p,)
        self.register_buffer("const", torch.tensor(const, dtype=ar.dtype))
        self.register_buffer("slope", torch.tensor(0.0 if slope is None else slope, dtype=ar.dtype))
        self.register_buffer("half_width", half_width)  # (H,)
        self.has_time = slope is not None
        self.order = ar.shape[0]
        self.horizon = half_width.shape[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        window = x[:, : self.order]  # (B, p)
        steps = []
        for step in range(self.horizon):
            value = self.const + (window * self.ar).sum(dim=1)  # (B,)
            if self.has_time:
                value = value + self.slope * (x[:, self.order] + step + 1)
            steps.append(value)
            window = torch.cat([window[:, 1:], value.unsqueeze(1)], dim=1)  # (B, p)
        mean = torch.stack(steps, dim=1)  # (B, H)
        return mean, mean - self.half_width, mean + self.half_width
