"""A recurrent net (RNN / LSTM / GRU, stacked, optionally bidirectional) with padding masks."""

from __future__ import annotations

import torch
from torch import nn

from toolkit.nn.layers import init_weights

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def sequence_lengths(x: torch.Tensor, mask_value: float) -> torch.Tensor:
    """Valid length of each padded sequence: 1 + the last step not entirely ``mask_value``.

    Padding goes at the end. A step inside the sequence that happens to equal ``mask_value``
    is kept; a sequence that is all padding counts as length 1.
    """
    steps = torch.arange(1, x.shape[1] + 1, device=x.device)  # (T,)
    valid = (x != mask_value).any(dim=-1)  # (B, T)
    return (valid * steps).amax(dim=1).clamp(min=1)  # (B,)


def reversal_index(lengths: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Index that reverses the first ``lengths[b]`` steps of each row and keeps the rest.

    It is its own inverse, so the same gather maps a sequence to its reversal and back.
    """
    t = torch.arange(n_steps, device=lengths.device).unsqueeze(0)  # (1, T)
    last = (lengths - 1).unsqueeze(1)  # (B, 1)
    return torch.where(t <= last, last - t, t)  # (B, T)


def gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b, t], :] for a (B, T, D) tensor and a (B, T') index."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (B, T', D)


class RecurrentNet(nn.Module):
    """Stacked recurrent layers read (B, T, D) sequences; a linear head maps the final state.

    Each direction of each layer is its own single-layer cell module, so that the backward
    direction can read every sequence from its own last valid step: with ``mask_value`` set,
    trailing steps equal to it in every feature are padding and do not change the output.
    The head sees the forward state at the last valid step, concatenated with the backward
    state at step 0 when ``bidirectional``.

    Parameters
    ----------
    n_in, n_out : int
        Features per step and output width.
    cell : {"rnn", "lstm", "gru"}
        "rnn" is the Elman cell with tanh.
    hidden_size, num_layers : int
    bidirectional : bool
    dropout : float
        Inverted dropout between layers and before the head.
    mask_value : float or None
        Padding value; None means every sequence uses all T steps.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        mask_value: float | None = None,
    ) -> None:
        super().__init__()
        directions = 2 if bidirectional else 1
        width = n_in
        self.forward_cells = nn.ModuleList()
        self.backward_cells = nn.ModuleList()
        for _ in range(num_layers):
            self.forward_cells.append(CELLS[cell](width, hidden_size, batch_first=True))
            if bidirectional:
                self.backward_cells.append(CELLS[cell](width, hidden_size, batch_first=True))
            width = hidden_size * directions
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(width, n_out)
        self.mask_value = mask_value
        init_weights(self, "tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, n_out)
        batch, n_steps = x.shape[0], x.shape[1]
        if self.mask_value is None:
            lengths = torch.full((batch,), n_steps, dtype=torch.long, device=x.device)
        else:
            lengths = sequence_lengths(x, self.mask_value)
        reverse = reversal_index(lengths, n_steps)  # (B, T)
        for layer, forward_cell in enumerate(self.forward_cells):
            if layer > 0:
                x = self.dropout(x)
            outputs = [forward_cell(x)[0]]  # (B, T, H)
            if self.backward_cells:
                backward = self.backward_cells[layer](gather_steps(x, reverse))[0]  # (B, T, H) reversed
                outputs.append(gather_steps(backward, reverse))
            x = torch.cat(outputs, dim=-1)  # (B, T, H * directions)
        hidden = x.shape[-1] // (2 if self.backward_cells else 1)
        last = gather_steps(x[..., :hidden], (lengths - 1).unsqueeze(1)).squeeze(1)  # (B, H)
        if self.backward_cells:
            last = torch.cat([last, x[:, 0, hidden:]], dim=-1)  # (B, 2H)
        return self.head(self.dropout(last))
