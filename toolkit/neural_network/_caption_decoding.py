"""Decoding a caption word by word from <START>: greedy (arg-max), sampled (softmax with a
temperature) or by beam search; the decoder net stays outside (``CaptionNet``'s ``decoder.step``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from toolkit.neural_network._caption_vocabulary import END_ID, NULL_ID, START_ID
from toolkit.nn.caption import CaptionDecoder

Choose = Callable[[torch.Tensor], torch.Tensor]  # (N, V) scores -> (N,) next words


def greedy(scores: torch.Tensor) -> torch.Tensor:
    """The most probable next word of each row."""
    return scores.argmax(dim=1)


def sampling(temperature: float, generator: torch.Generator) -> Choose:
    """Next words drawn from softmax(scores / ``temperature``) with ``generator`` (on the CPU)."""

    def draw(scores: torch.Tensor) -> torch.Tensor:
        probabilities = torch.softmax(scores.float().cpu() / temperature, dim=1)
        return torch.multinomial(probabilities, 1, generator=generator)[:, 0].to(scores.device)

    return draw


@torch.no_grad()
def decode(decoder: CaptionDecoder, state: tuple[torch.Tensor, ...], choose: Choose, max_length: int) -> np.ndarray:
    """Token rows (n, max_length) for a batch's initial states: from <START>, ``choose(scores)``
    picks each next word; a row that produced <END> gets <NULL> after it; all stop once every
    row has ended."""
    n, device = len(state[0]), state[0].device
    words = torch.full((n,), START_ID, dtype=torch.int64, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    tokens = torch.full((n, max_length), NULL_ID, dtype=torch.int64)
    for step in range(max_length):
        scores, state = decoder.step(words, state)
        words = torch.where(done, NULL_ID, choose(scores))
        tokens[:, step] = words.cpu()
        done |= words == END_ID
        if bool(done.all()):
            break
    return tokens.numpy()


def beam_search(decoder: CaptionDecoder, state: tuple[torch.Tensor, ...], width: int, max_length: int) -> list[int]:
    """The token list (after <START>, <END> included when reached) with the best length-normalised
    log-probability among those beam search of ``width`` keeps, for ONE image's initial state.

    Each step extends every live hypothesis by every word; the ``width`` best by total
    log-probability stay live, and one that ends in <END> is finished. Hypotheses still live
    after ``max_length`` steps are finished as they are. A hypothesis is ranked by its
    total log-probability divided by its number of tokens.
    """
    live = [(0.0, [], state)]
    finished: list[tuple[float, list[int]]] = []
    for _ in range(max_length):
        words = torch.tensor([tokens[-1] if tokens else START_ID for _, tokens, _ in live], device=state[0].device)
        states = tuple(torch.cat([s[k] for _, _, s in live]) for k in range(len(state)))
        scores, next_states = decoder.step(words, states)
        log_p = torch.log_softmax(scores.double(), dim=1).cpu()  # (beams, V)
        totals = torch.tensor([total for total, _, _ in live], dtype=torch.float64)[:, None] + log_p
        order = torch.argsort(totals.reshape(-1), descending=True)[:width]
        candidates = []
        for flat in order.tolist():
            beam, word = divmod(flat, log_p.shape[1])
            tokens = live[beam][1] + [word]
            beam_state = tuple(s[beam : beam + 1] for s in next_states)
            if word == END_ID:
                finished.append((float(totals[beam, word]), tokens))
            else:
                candidates.append((float(totals[beam, word]), tokens, beam_state))
        live = candidates
        if not live:
            break
    finished += [(total, tokens) for total, tokens, _ in live]
    return max(finished, key=lambda pair: pair[0] / len(pair[1]))[1]
