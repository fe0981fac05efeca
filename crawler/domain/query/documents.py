"""An article prepared for matching: each field's words tokenised once, with the
lookups (hits, positions, stems) that evaluation builds on them."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Protocol

from crawler.domain.query.text import (
    TEXT_FIELDS,
    _language_tag,
    _words_and_folded,
    stem_language,
    stem_word,
)

if TYPE_CHECKING:
    from collections.abc import Sequence


class _Document(Protocol):
    """What a MatchDocument offers (declared here to keep the import one-way)."""

    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def author(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def language(self) -> str | None: ...


class _FieldWords:
    """The words of one field, and lookups built the first time they are needed.

    Exact words, phrases and prefixes are found with `str.find` in `text` (the
    words between single spaces); only stems get a position index.
    """

    __slots__ = ("_reversed", "_stem_positions", "_stems", "_text", "folded", "words")

    def __init__(self, text: str) -> None:
        words, folded = _words_and_folded(text) if text else ([], [])
        self.words = words
        self.folded = folded  # with accents, for stemmers
        self._text: str | None = None
        self._reversed: str | None = None
        self._stems: dict[str, list[str]] = {}
        self._stem_positions: dict[str, dict[str, list[int]]] = {}

    def text(self) -> str:
        """The words between single spaces, with a space at each end ("" if none)."""
        if self._text is None:
            self._text = " " + " ".join(self.words) + " " if self.words else ""
        return self._text

    def has(self, key: str) -> bool:
        """Whether the field has a hit of `key` (see `term_key`)."""
        return (key if key[0] == " " else f" {key} ") in self.text()

    def hits(self, key: str) -> list[tuple[int, int]]:
        """(word position, text offset) of every hit of `key` (see `term_key`), in order."""
        if key[0] != " ":
            key = f" {key} "
        text = self.text()
        found: list[tuple[int, int]] = []
        offset = text.find(key)
        position = previous = 0
        while offset != -1:
            # The words before a hit are the spaces before it, counted in C.
            position += text.count(" ", previous, offset)
            previous = offset
            found.append((position, offset))
            offset = text.find(key, offset + 1)
        return found

    def occurrences(self, key: str) -> list[int]:
        """The word positions of every hit of `key` (see `term_key`), in order."""
        return [position for position, _ in self.hits(key)]

    def hits_around(
        self, key: str, position: int, offset: int, before: int, after: int
    ) -> list[int]:
        """The positions of the hits of `key` from `before` words before `position`
        to `after` words after it, word `position` starting at text `offset`."""
        if key[0] != " ":
            key = f" {key} "
        text = self.text()
        if self._reversed is None:
            self._reversed = text[::-1]
        # The window: `before` words back (walked forward in the reversed text)
        # and `after` words on, each walk one regex match in C.
        last = len(text) - 1
        low = last - _walk_words(self._reversed, last - offset, before)
        high = _walk_words(text, offset, after + 1) + len(key)
        found: list[int] = []
        hit = text.find(key, low, high)
        while hit != -1:
            if hit < offset:
                distance = -text.count(" ", hit, offset)
            else:
                distance = text.count(" ", offset, hit)
            if -before <= distance <= after:
                found.append(position + distance)
            hit = text.find(key, hit + 1, high)
        return found

    def stems(self, language: str) -> list[str]:
        stems = self._stems.get(language)
        if stems is None:
            stems = self._stems[language] = [stem_word(language, word) for word in self.folded]
        return stems

    def stem_positions(self, language: str) -> dict[str, list[int]]:
        positions = self._stem_positions.get(language)
        if positions is None:
            positions = self._stem_positions[language] = _index(self.stems(language))
        return positions


@functools.lru_cache(maxsize=256)
def _words_pattern(count: int) -> re.Pattern[str]:
    return re.compile(f"(?: [^ ]+){{0,{count}}}")


def _walk_words(text: str, offset: int, count: int) -> int:
    """The offset after up to `count` words of `text`, each after its space, from
    the space at `offset` on (one regex match: the walk happens in C)."""
    match = _words_pattern(count).match(text, offset)
    return match.end() if match else offset


def _index(words: Sequence[str]) -> dict[str, list[int]]:
    positions: dict[str, list[int]] = {}
    for position, word in enumerate(words):
        positions.setdefault(word, []).append(position)
    return positions


class PreparedDocument:
    """An article tokenised once: the words of each field, and its language.

    Build it with `prepare_document`; every query evaluated on it shares the
    tokens and the lookups built from them.
    """

    __slots__ = ("fields", "language", "language_tags", "source", "stem_language")

    def __init__(self, document: _Document) -> None:
        self.fields = {name: _FieldWords(getattr(document, name) or "") for name in TEXT_FIELDS}
        # The source's name as configured: rules limited to sources look it up whole.
        self.source = document.source or ""
        self.language = _language_tag(document.language) or None
        # What lang: accepts: "pt-br" is matched by lang:pt and lang:pt-br.
        parts = self.language.split("-") if self.language else []
        self.language_tags = frozenset("-".join(parts[:end]) for end in range(1, len(parts) + 1))
        self.stem_language = stem_language(self.language)

    def field_text(self, name: str) -> str:
        """The words of field `name` between single spaces, with a space at each end
        ("" for an empty field): `term_key` substrings are the hits."""
        return self.fields[name].text()

    def stems_text(self, language: str) -> str:
        """Every field's words replaced by their stems in `language`, between spaces."""
        stems = (stem for field in self.fields.values() for stem in field.stems(language))
        return " " + " ".join(stems) + " "


def prepare_document(document: _Document | PreparedDocument) -> PreparedDocument:
    """Tokenise `document` (a MatchDocument) once for any number of queries."""
    if isinstance(document, PreparedDocument):
        return document
    return PreparedDocument(document)
