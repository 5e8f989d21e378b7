"""Text as words: the tokenisation the captioner and the shape scenes share."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """The lower-case words of ``text``: runs of letters and digits, split by whitespace and
    punctuation ("A big, red disc!" -> ["a", "big", "red", "disc"])."""
    return _WORD.findall(str(text).lower())
