"""Finding a reported term again in a text, for highlighting: its words, where
they run in a row, and each word's offsets in the original text."""

from __future__ import annotations

import functools
import unicodedata
from typing import TYPE_CHECKING

from crawler.domain.query.syntax import Word, _split_words
from crawler.domain.query.text import _SOFT_BREAK_RE, _TOKEN_RE, _fold, _match_form

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence


@functools.lru_cache(maxsize=1024)
def term_pattern(term: str) -> tuple[Word, ...]:
    """The words of a reported term (a word, a phrase, a prefix ending in `*`).

    Empty when `term` has no word. Used to find the term again in a text.
    """
    return _split_words(term, quoted=True)


def find_word_runs(words: Sequence[str], pattern: Sequence[Word]) -> Iterable[int]:
    """Start indexes in `words` where the words of `pattern` occur in a row."""
    count = len(pattern)
    for start in range(len(words) - count + 1):
        for offset, word in enumerate(pattern):
            found = words[start + offset]
            if not (found.startswith(word.text) if word.prefix else found == word.text):
                break
        else:
            yield start


def _segments(text: str) -> Iterator[tuple[int, int]]:
    """Split `text` into (start, end) runs of a base character and its combining marks.

    NFKC composes a base character with the marks that follow it, so these runs
    are the smallest pieces that can be normalised on their own.
    """
    start = 0
    for index in range(1, len(text)):
        if unicodedata.combining(text[index]) == 0:
            yield start, index
            start = index
    if text:
        yield start, len(text)


# Most pieces are single characters that recur constantly; caching their folded
# form keeps highlighting a long article in the low milliseconds.
_fold_piece = functools.lru_cache(maxsize=4096)(_fold)


def word_spans(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The words of `text` exactly as `tokenise` gives them, with their (start, end)
    offsets in `text` itself (for highlighting the original)."""
    soft_breaks = {index for hit in _SOFT_BREAK_RE.finditer(text) for index in range(*hit.span())}
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for start, end in _segments(text):
        if start in soft_breaks:
            continue
        for char in _fold_piece(text[start:end]):
            chars.append(char)
            starts.append(start)
            ends.append(end)
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    for hit in _TOKEN_RE.finditer("".join(chars)):
        if word := _match_form(hit.group()):
            words.append(word)
            spans.append((starts[hit.start()], ends[hit.end() - 1]))
    return words, spans
