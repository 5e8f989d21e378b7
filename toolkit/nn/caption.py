"""The many-to-many pieces of an image captioner (CS231n's captioning RNN, assignment 3).

Image features -> the decoder's initial state through a learned affine projection
(h0 = features W_h + b_h; an LSTM's c0 likewise, or zero as CS231n's starts it); words -> a learned embedding; a
vanilla RNN, an LSTM or a GRU over time; a temporal affine layer to vocabulary scores at
every step; a temporal softmax loss that ignores <NULL> padding. ``CaptionNet`` puts an
encoder (a conv net, or nothing for precomputed features) in front; its forward pass maps
images to the decoder's initial state, and the decoder runs the rest, teacher-forced over a
whole caption or one step at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from toolkit.nn.layers import init_weights
from toolkit.nn.rnn import CELLS


def masked_temporal_cross_entropy(scores: torch.Tensor, targets: torch.Tensor, null_index: int = 0) -> torch.Tensor:
    """CS231n's temporal softmax loss: -sum over steps of log softmax(scores)[target], summed
    over every position whose target is not <NULL>, divided by the batch size N.

    Positions whose target is ``null_index`` change neither the loss nor any gradient.

    Parameters
    ----------
    scores : tensor of shape (N, T, V)
    targets : int tensor of shape (N, T)
    null_index : int, default=0
    """
    n, steps, vocabulary = scores.shape
    total = F.cross_entropy(
        scores.reshape(n * steps, vocabulary), targets.reshape(n * steps), ignore_index=null_index, reduction="sum"
    )
    return total / n


class CaptionDecoder(nn.Module):
    """Features -> initial state; (state, words) -> word scores at every step.

    Parameters
    ----------
    n_features : int
        Width of the image features.
    vocabulary_size : int
    embedding_dim, hidden_size : int
    cell : {"rnn", "lstm", "gru"}
        "rnn" is the Elman cell h' = tanh(x W_x + h W_h + b); torch orders an LSTM's gates
        i, f, g, o where CS231n's assignment writes i, f, o, g.
    dropout : float
        On the embedded words and on the states before the temporal affine layer.
    null_index : int
        The <NULL> word: its embedding stays zero and gets no gradient.
    initial_cell : {"learned", "zero"}
        An LSTM's c0: affine in the features as h0 is, or zero (CS231n's captioning LSTM).
    """

    def __init__(
        self,
        n_features: int,
        vocabulary_size: int,
        embedding_dim: int,
        hidden_size: int,
        cell: str = "lstm",
        dropout: float = 0.0,
        null_index: int = 0,
        initial_cell: str = "learned",
    ) -> None:
        super().__init__()
        self.cell_type = cell
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=null_index)
        self.initial_hidden = nn.Linear(n_features, hidden_size)
        if initial_cell not in ("learned", "zero"):
            raise ValueError(f'initial_cell must be "learned" or "zero", got {initial_cell!r}')
        self.zero_cell = cell == "lstm" and initial_cell == "zero"
        self.initial_cell = nn.Linear(n_features, hidden_size) if cell == "lstm" and not self.zero_cell else None
        self.rnn = CELLS[cell](embedding_dim, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.temporal_affine = nn.Linear(hidden_size, vocabulary_size)  # (N, T, H) -> (N, T, V)
        init_weights(self, "tanh")  # the <NULL> row of the embedding starts (and stays) zero

    def initial_state(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(h0,) or, for an LSTM, (h0, c0); each (N, H), affine in the features (c0 may be zero)."""
        h0 = self.initial_hidden(features)
        if self.zero_cell:
            return h0, torch.zeros_like(h0)
        return (h0, self.initial_cell(features)) if self.initial_cell is not None else (h0,)

    def _run(
        self, words: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        x = self.dropout(self.embedding(words))  # (N, T, E)
        packed = tuple(s.unsqueeze(0) for s in state)  # (1, N, H) each: one layer
        hidden, final = self.rnn(x, packed if len(packed) == 2 else packed[0])  # (N, T, H)
        final = final if isinstance(final, tuple) else (final,)
        return self.temporal_affine(self.dropout(hidden)), tuple(s.squeeze(0) for s in final)

    def forward(self, state: tuple[torch.Tensor, ...], words: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: word scores (N, T, V) at every step, reading ``words`` (N, T)."""
        return self._run(words, state)[0]

    def step(
        self, words: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One step: scores (N, V) for the word after ``words`` (N,), and the next state."""
        scores, state = self._run(words.unsqueeze(1), state)
        return scores[:, 0], state


class CaptionNet(nn.Module):
    """Encoder + decoder; ``forward(images)`` gives the decoder's initial state.

    Parameters
    ----------
    encoder : nn.Module
        Images (or feature rows) -> features (N, n_features): a conv net, or ``nn.Identity``.
    decoder : CaptionDecoder
    """

    def __init__(self, encoder: nn.Module, decoder: CaptionDecoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.decoder.initial_state(self.encoder(x))
