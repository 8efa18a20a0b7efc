# Copyright (c) cmdyseg contributors. All rights reserved.
"""Sentence tokenisation for the text encoder (SPEC item 4).

The rules, applied in this order:

1. lower-case (``str.lower``);
2. apostrophes (``'`` and the typographic ``\u2019``, ``\u2018``, `````)
   are deleted, so a possessive stays one word: ``man's`` -> ``mans``;
3. every other punctuation character (Unicode category ``P*`` or one of
   ASCII :data:`string.punctuation`) becomes a space, so ``left,right`` and
   ``t-shirt`` split into two words;
4. split on any run of whitespace (leading, trailing and doubled spaces, as
   found in the real A2D / J-HMDB queries, give no empty words);
5. keep the first ``max_words`` words (20 in the paper; the longest real
   query has exactly 20).
"""
import string
import unicodedata
from typing import List, Optional

#: Sentences are truncated to this many words (paper, Sec. "Text encoder").
MAX_WORDS = 20

_APOSTROPHES = frozenset("'\u2019\u2018`")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def _is_punctuation(char: str) -> bool:
    return (char in _ASCII_PUNCTUATION
            or unicodedata.category(char).startswith('P'))


def _strip_punctuation(text: str) -> str:
    pieces = []
    for char in text:
        if char in _APOSTROPHES:
            continue
        pieces.append(' ' if _is_punctuation(char) else char)
    return ''.join(pieces)


def tokenize(sentence: str,
             max_words: Optional[int] = MAX_WORDS) -> List[str]:
    """Split a referring expression into lower-case words.

    Args:
        sentence (str): The query, e.g. ``'Guy in blue shirt is walking'``.
        max_words (int, optional): Keep at most this many words (the paper
            truncates to 20). ``None`` keeps all of them. Defaults to 20.

    Returns:
        list[str]: The words, possibly empty (a sentence of only spaces or
        punctuation).
    """
    if not isinstance(sentence, str):
        raise TypeError('tokenize expects a sentence as str, got '
                        f'{type(sentence).__name__}: {sentence!r}')
    if max_words is not None and (isinstance(max_words, bool)
                                  or not isinstance(max_words, int)
                                  or max_words < 1):
        raise ValueError(
            f'max_words must be a positive int or None, got {max_words!r}')
    words = _strip_punctuation(sentence.lower()).split()
    if max_words is not None:
        words = words[:max_words]
    return words
