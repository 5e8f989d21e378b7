"""A captioner's words: the vocabulary, captions as rows of word ids, and ids back to text.

Captions are tokenised into lower-case words (:func:`toolkit._text.tokenize`). The vocabulary
holds <NULL>, <START>, <END>, <UNK> (ids 0-3), then the words kept, most frequent first; a
caption becomes [<START>, word ids (rarer words as <UNK>), <END>, <NULL> padding].
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from toolkit._text import tokenize

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIAL = (NULL, START, END, UNK)  # ids 0, 1, 2, 3
NULL_ID, START_ID, END_ID, UNK_ID = range(4)


def caption_words(y, n_samples: int) -> list[list[str]]:
    """The words of each caption in y (one string per row of X); TypeError / ValueError naming
    the first caption that is not text, or has no words."""
    captions = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=object)
    if captions.ndim != 1:
        raise ValueError(f"y must be a 1-D sequence of caption strings (one per row of X), got shape {captions.shape}")
    if len(captions) != n_samples:
        raise ValueError(f"X has {n_samples} rows but y has {len(captions)} captions; give one caption per row")
    not_text = [i for i, c in enumerate(captions) if not isinstance(c, str)]
    if not_text:
        i = not_text[0]
        raise TypeError(f"y must hold caption strings; caption {i} is {captions[i]!r} ({type(captions[i]).__name__})")
    words = [tokenize(c) for c in captions]
    empty = [i for i, w in enumerate(words) if not w]
    if empty:
        raise ValueError(f"caption {empty[0]} ({captions[empty[0]]!r}) has no words; {len(empty)} caption(s) are empty")
    return words


def build_vocabulary(captions: list[list[str]], min_count: int) -> np.ndarray:
    """<NULL>, <START>, <END>, <UNK>, then the words seen at least ``min_count`` times, most
    frequent first (ties alphabetically)."""
    counts = Counter(word for words in captions for word in words)
    kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return np.asarray([*SPECIAL, *kept], dtype=object)


def encode_captions(captions: list[list[str]], word_index: dict[str, int], max_length: int) -> np.ndarray:
    """(n, max_length + 1) int64 rows [<START>, ids of the first max_length - 1 words, <END>,
    <NULL>...]."""
    encoded = np.full((len(captions), max_length + 1), NULL_ID, dtype=np.int64)
    for row, caption in zip(encoded, captions):
        ids = [word_index.get(word, UNK_ID) for word in caption[: max_length - 1]]
        row[: len(ids) + 2] = [START_ID, *ids, END_ID]
    return encoded


def render(tokens: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """Token rows -> strings: the words before the first <END>, joined by spaces; <NULL> and
    <START> are skipped, <UNK> is written as "<UNK>"."""
    captions = []
    for row in tokens:
        words = []
        for token in row:
            if token == END_ID:
                break
            if token not in (NULL_ID, START_ID):
                words.append(vocabulary[token])
        captions.append(" ".join(words))
    return np.asarray(captions, dtype=object)
