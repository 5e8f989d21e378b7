"""The AR forecast recursion (with deterministic terms and exogenous regressors) as a torch module, for export."""

from __future__ import annotations

import torch
from torch import nn


class ARForecastModule(nn.Module):
    """Forecast ``horizon`` steps for S series from windows of their last p observations.

    Inputs: ``x`` (B, S, w): per series y[n-p], ..., y[n-1] (oldest first), plus a last
    column with the 0-based position n of the first forecast when a deterministic term
    needs it (w = p + 1); and, for an AR-X model, the future regressors (B, H, e), or
    (B, S, H, e) when each series has its own. With ``squeeze_series`` (one series) ``x``
    is (B, w) and outputs (B, H). Outputs: point forecasts (B, S, H) and the bounds
    mean -/+ half_width.

    Buffers (one row per series): ``ar`` (S, p) with ar[:, p - l] = phi_l (zeros for unused
    lags), ``deterministic`` (S, d) the coefficients of ``terms``, ``exog`` (S, e),
    ``half_width`` (S, H). ``terms`` lists the deterministic columns by kind: ("const",),
    ("power", k) for (position + 1)^k, ("season", j, period) for position mod period == j.
    """

    def __init__(
        self,
        ar: torch.Tensor,
        terms: list[tuple],
        deterministic: torch.Tensor,
        exog: torch.Tensor | None,
        half_width: torch.Tensor,
        squeeze_series: bool,
        exog_per_series: bool = False,
    ) -> None:
        super().__init__()
        self.register_buffer("ar", ar)  # (S, p)
        self.register_buffer("deterministic", deterministic)  # (S, d)
        self.register_buffer("exog", torch.zeros((ar.shape[0], 0), dtype=ar.dtype) if exog is None else exog)
        self.register_buffer("half_width", half_width)  # (S, H)
        self.terms = list(terms)
        self.has_exog = exog is not None
        self.exog_per_series = exog_per_series
        self.order = ar.shape[1]
        self.horizon = half_width.shape[1]
        self.squeeze_series = squeeze_series

    def _offsets(self, x: torch.Tensor, future: torch.Tensor | None) -> torch.Tensor:
        """The deterministic and exogenous part of each forecast; (B, S, H)."""
        steps = torch.arange(self.horizon, dtype=x.dtype, device=x.device)
        offsets = torch.zeros(x.shape[0], x.shape[1], self.horizon, dtype=x.dtype, device=x.device)
        if any(term[0] != "const" for term in self.terms):
            position = x[:, :, self.order : self.order + 1] + steps  # (B, S, H)
        for column, term in enumerate(self.terms):
            coefficient = self.deterministic[:, column : column + 1]  # (S, 1)
            if term[0] == "const":
                offsets = offsets + coefficient
            elif term[0] == "power":
                offsets = offsets + coefficient * (position + 1) ** term[1]
            else:
                _, j, period = term
                remainder = position - torch.floor(position / period) * period
                offsets = offsets + coefficient * ((remainder - j).abs() < 0.5).to(x.dtype)
        if self.has_exog:
            if not self.exog_per_series:
                future = future.unsqueeze(1)  # (B, 1, H, e): one table for every series
            offsets = offsets + (future * self.exog[:, None, :]).sum(dim=3)
        return offsets

    def forward(self, x: torch.Tensor, future: torch.Tensor | None = None):
        if self.squeeze_series:
            x = x.unsqueeze(1)  # (B, 1, w)
            if future is not None and self.exog_per_series:
                future = future.unsqueeze(1)
        offsets = self._offsets(x, future)
        window = x[:, :, : self.order]  # (B, S, p)
        steps = []
        for step in range(self.horizon):
            value = offsets[:, :, step] + (window * self.ar).sum(dim=2)  # (B, S)
            steps.append(value)
            window = torch.cat([window[:, :, 1:], value.unsqueeze(2)], dim=2)  # (B, S, p)
        mean = torch.stack(steps, dim=2)  # (B, S, H)
        outputs = (mean, mean - self.half_width, mean + self.half_width)
        return tuple(o.squeeze(1) for o in outputs) if self.squeeze_series else outputs
