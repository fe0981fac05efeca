"""Evaluating a query's syntax tree on a prepared document: one matcher per node kind
(term, language, NOT, AND, OR, NEAR), each telling whether it holds and which terms
hit."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from crawler.domain.query.documents import (
    PreparedDocument,
    _FieldWords,
)
from crawler.domain.query.syntax import (
    Lang,
    Term,
    Word,
    term_key,
    word_key,
)
from crawler.domain.query.text import DEFAULT_FIELDS, stem_word

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from collections.abc import Set as AbstractSet

# The scope of a term without a field in `Found`: the title or the body.
DEFAULT_SCOPE = ""
# For each field name (and DEFAULT_SCOPE), the `term_key`s present in it: what a
# caller that scanned the document for them (RuleMatcher) hands to evaluation so
# that simple terms are set lookups. It must hold every key of the query's terms.
Found: TypeAlias = "Mapping[str, AbstractSet[str]]"

# A NEAR side with more hits than this is compared with the other side's count.
_FEW_HITS = 4
# How many article words one stemmed term reports (for highlighting).
_MAX_STEM_FORMS = 5


class _TermMatcher:
    __slots__ = ("fields", "fixed_language", "key", "scope", "single", "stem", "term", "words")

    def __init__(self, term: Term, stem: bool, fixed_language: str | None) -> None:
        self.term = term
        self.words = term.words
        self.fields = DEFAULT_FIELDS if term.field is None else (term.field,)
        self.scope = DEFAULT_SCOPE if term.field is None else term.field
        self.stem = stem and any(word.stemmable for word in term.words)
        self.key = term_key(term, stem=stem)
        self.fixed_language = fixed_language
        self.single = len(term.words) == 1

    def _language(self, document: PreparedDocument) -> str | None:
        if not self.stem:
            return None
        return document.stem_language or self.fixed_language

    def _has(self, field: _FieldWords, word: Word, language: str | None) -> bool:
        if language is not None and word.stemmable:
            return stem_word(language, word.folded) in field.stem_positions(language)
        return field.has(word_key(word))

    def _positions(self, field: _FieldWords, word: Word, language: str | None) -> list[int]:
        if language is not None and word.stemmable:
            return field.stem_positions(language).get(stem_word(language, word.folded), [])
        return field.occurrences(word_key(word))

    def spans(
        self, document: PreparedDocument, name: str, found: Found | None
    ) -> list[tuple[int, int]]:
        """(first, last) word positions of every hit in field `name`."""
        return [(start, end) for start, end, _ in self.located_spans(document, name, found)]

    def located_spans(
        self, document: PreparedDocument, name: str, found: Found | None
    ) -> list[tuple[int, int, int | None]]:
        """Like `spans`, with the text offset of each hit when the term has a key."""
        field = document.fields[name]
        width = len(self.words) - 1
        if self.key is not None:
            if found is not None and self.key not in found[name]:
                return []
            return [(start, start + width, offset) for start, offset in field.hits(self.key)]
        language = self._language(document)
        for word in self.words:
            if not self._has(field, word, language):
                return []
        starts = self._positions(field, self.words[0], language)
        if self.single:
            return [(start, start, None) for start in starts]
        rest = [set(self._positions(field, word, language)) for word in self.words[1:]]
        return [
            (start, start + width, None)
            for start in starts
            if all(start + offset in positions for offset, positions in enumerate(rest, 1))
        ]

    def matches(self, document: PreparedDocument, found: Found | None) -> bool:
        if self.key is not None:
            if found is not None:
                return self.key in found[self.scope]
            for name in self.fields:  # noqa: SIM110 - hot path: no generator
                if document.fields[name].has(self.key):
                    return True
            return False
        if self.single:
            language = self._language(document)
            word = self.words[0]
            for name in self.fields:  # noqa: SIM110 - hot path: no generator
                if self._has(document.fields[name], word, language):
                    return True
            return False
        for name in self.fields:  # noqa: SIM110 - hot path: no generator
            if self.spans(document, name, found):
                return True
        return False

    def collect(self, document: PreparedDocument, found: Found | None, out: list[str]) -> None:
        out.append(self.term.text)
        if not self.stem or self._language(document) is None:
            return
        plain = " ".join(word.text for word in self.words)
        forms: dict[str, None] = {}
        for name in self.fields:
            words = document.fields[name].words
            for start, end in self.spans(document, name, found):
                form = " ".join(words[start : end + 1])
                if form != plain:
                    forms[form] = None
                    if len(forms) == _MAX_STEM_FORMS:
                        out.extend(forms)
                        return
        out.extend(forms)


class _LangMatcher:
    __slots__ = ("codes",)

    def __init__(self, node: Lang) -> None:
        self.codes = frozenset(node.codes)

    def matches(self, document: PreparedDocument, found: Found | None) -> bool:
        return not self.codes.isdisjoint(document.language_tags)

    def collect(self, document: PreparedDocument, found: Found | None, out: list[str]) -> None:
        pass


class _NotMatcher:
    __slots__ = ("child",)

    def __init__(self, child: _Matcher) -> None:
        self.child = child

    def matches(self, document: PreparedDocument, found: Found | None) -> bool:
        return not self.child.matches(document, found)

    def collect(self, document: PreparedDocument, found: Found | None, out: list[str]) -> None:
        pass  # what an article must not contain is never a highlight


class _AndMatcher:
    __slots__ = ("children",)

    def __init__(self, children: list[_Matcher]) -> None:
        self.children = tuple(children)

    def matches(self, document: PreparedDocument, found: Found | None) -> bool:
        for child in self.children:  # noqa: SIM110 - hot path: no generator
            if not child.matches(document, found):
                return False
        return True

    def collect(self, document: PreparedDocument, found: Found | None, out: list[str]) -> None:
        for child in self.children:
            child.collect(document, found, out)


class _OrMatcher:
    __slots__ = ("children",)

    def __init__(self, children: list[_Matcher]) -> None:
        self.children = tuple(children)

    def matches(self, document: PreparedDocument, found: Found | None) -> bool:
        for child in self.children:  # noqa: SIM110 - hot path: no generator
            if child.matches(document, found):
                return True
        return False

    def collect(self, document: PreparedDocument, found: Found | None, out: list[str]) -> None:
        for child in self.children:
            if child.matches(document, found):
                child.collect(document, found, out)


class _NearMatcher:
    __slots__ = ("distance", "fields", "left", "right")

    def __init__(self, left: list[_TermMatcher], right: list[_TermMatcher], distance: int) -> None:
        self.left = tuple(left)
        self.right = tuple(right)
        self.distance = distance
        self.fields = left[0].fields

    def _pairs(
        self,
        document: PreparedDocument,
        found: Found | None,
        left: tuple[_TermMatcher, ...],
        right: tuple[_TermMatcher, ...],
    ) -> Iterator[tuple[int, int]]:
        """(left, right) indexes of the term pairs that are near each other.

        Lazily, so the first pair costs only what finding it takes. The side
        with fewer hits is listed; the other is only looked for in the window
        around each of its hits, so a common word on one side costs little.
        """
        distance = self.distance
        for name in self.fields:
            if not (_side_hits(left, name, found) and _side_hits(right, name, found)):
                continue
            field = document.fields[name]
            outer, inner, swapped = left, right, False
            outer_hits = _side_spans(outer, document, name, found)
            if len(outer_hits) > _FEW_HITS:
                inner_hits = _side_spans(inner, document, name, found)
                if len(inner_hits) < len(outer_hits):
                    outer, inner, swapped = inner, outer, True
                    outer_hits = inner_hits
            all_spans: dict[int, list[tuple[int, int]]] = {}
            for i, (outer_start, outer_end, offset) in outer_hits:
                for j, term in enumerate(inner):
                    width = len(term.words) - 1
                    if term.key is not None and offset is not None:
                        # Only the window that can hold a near hit is searched.
                        starts = field.hits_around(
                            term.key, outer_start, offset,
                            distance + width, outer_end - outer_start + distance,
                        )  # fmt: skip
                        spans = [(start, start + width) for start in starts]
                    else:
                        if j not in all_spans:
                            all_spans[j] = term.spans(document, name, found)
                        spans = all_spans[j]
                    for inner_start, inner_end in spans:
                        if outer_end < inner_start:
                            gap = inner_start - outer_end
                        elif inner_end < outer_start:
                            gap = outer_start - inner_end
                        else:
                            continue  # the same place: two hits are needed
                        if gap <= distance:
                            yield (j, i) if swapped else (i, j)

    def matches(self, document: PreparedDocument, found: Found | None) -> bool:
        pairs = self._pairs(document, found, self.left, self.right)
        return next(pairs, None) is not None

    def collect(self, document: PreparedDocument, found: Found | None, out: list[str]) -> None:
        # Which alternatives take part in some near pair: one early-exit search
        # per pair of alternatives, never a list of every pair of hits.
        lefts: set[int] = set()
        rights: set[int] = set()
        for i, left in enumerate(self.left):
            for j, right in enumerate(self.right):
                if next(self._pairs(document, found, (left,), (right,)), None) is not None:
                    lefts.add(i)
                    rights.add(j)
        for i in sorted(lefts):
            self.left[i].collect(document, found, out)
        for j in sorted(rights):
            self.right[j].collect(document, found, out)


def _side_hits(terms: Sequence[_TermMatcher], name: str, found: Found | None) -> bool:
    """False when `found` tells that no term of a NEAR side hits in field `name`."""
    if found is None:
        return True
    keys = found[name]
    return any(term.key is None or term.key in keys for term in terms)


def _side_spans(
    terms: Sequence[_TermMatcher], document: PreparedDocument, name: str, found: Found | None
) -> list[tuple[int, tuple[int, int, int | None]]]:
    return [
        (index, span)
        for index, term in enumerate(terms)
        for span in term.located_spans(document, name, found)
    ]


_Matcher = _TermMatcher | _LangMatcher | _NotMatcher | _AndMatcher | _OrMatcher | _NearMatcher
