"""Keyword rules: which watch rules an article matches, and where the terms occur.

Matching happens on *normalised* text (NFKC, casefolded, soft hyphens and
zero-width characters removed, whitespace collapsed), so a rule hits the same
article however the publisher typed it. A keyword hits only as whole words: the
characters on either side of the hit must not be letters, digits or underscores,
so "ISIS" hits "anti-ISIS" and "ISIS," but not "crisis". A keyword with spaces
is a phrase: its words in order, separated by any run of whitespace. Hyphens in
a keyword accept any of the dash variants publishers use.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "KeywordRule",
    "RuleMatch",
    "RuleMatcher",
    "find_terms",
    "normalise_text",
]

# Invisible characters that publishers (and CMS hyphenation) put inside words;
# left in, they would split "Pal\u00admyra" into two words.
_IGNORABLE = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")
_IGNORABLE_RE = re.compile("[" + "".join(sorted(_IGNORABLE)) + "]")
_WHITESPACE_RE = re.compile(r"\s+")

# Hyphen-minus, hyphen, non-breaking hyphen, figure dash, en dash. NFKC already
# folds U+2011 into U+2010; it stays listed so the class reads as the contract.
# Em dash is left out on purpose: it separates clauses, it does not join words.
_DASHES = "-\u2010\u2011\u2012\u2013"
_DASH_CLASS = "[" + re.escape(_DASHES) + "]"

# Not a letter, digit or underscore on either side (str patterns are Unicode-aware).
_WORD_START = r"(?<!\w)"
_WORD_END = r"(?!\w)"


@dataclass(frozen=True)
class KeywordRule:
    """A watch rule: it matches when any keyword hits and no exclude term hits."""

    name: str
    keywords: tuple[str, ...]
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleMatch:
    """A rule that matched, with the configured keywords that hit, in config order."""

    rule: str
    terms: tuple[str, ...]


def _fold(text: str) -> str:
    """NFKC, casefold and drop ignorable characters; whitespace is left as is."""
    return _IGNORABLE_RE.sub("", unicodedata.normalize("NFKC", text).casefold())


def normalise_text(text: str) -> str:
    """Return `text` in the form rules are matched against.

    NFKC-normalised, casefolded, without soft hyphens or zero-width characters,
    every run of whitespace collapsed to one space, no leading or trailing
    whitespace. Accents are kept: "Zürich" and "Zurich" stay different.
    """
    return _WHITESPACE_RE.sub(" ", _fold(text)).strip()


def _term_pattern(term: str) -> str | None:
    """Regex source matching `term` as whole words in normalised text.

    Returns None for a term that normalises to nothing: it can never hit, and an
    empty alternative would otherwise match everywhere.
    """
    words = normalise_text(term).split(" ")
    if words == [""]:
        return None
    escaped = [
        "".join(_DASH_CLASS if char in _DASHES else re.escape(char) for char in word)
        for word in words
    ]
    # Normalised text has exactly one space wherever the source had any whitespace.
    return _WORD_START + " ".join(escaped) + _WORD_END


def _compile_any(terms: Sequence[str]) -> re.Pattern[str] | None:
    """One alternation that hits when any of `terms` hits; None if none can."""
    sources = [source for source in map(_term_pattern, terms) if source is not None]
    if not sources:
        return None
    return re.compile("|".join(f"(?:{source})" for source in sources))


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    any_keyword: re.Pattern[str] | None
    keywords: tuple[tuple[str, re.Pattern[str]], ...]
    any_exclude: re.Pattern[str] | None


def _compile_rule(rule: KeywordRule) -> _CompiledRule:
    keywords: list[tuple[str, re.Pattern[str]]] = []
    for keyword in dict.fromkeys(rule.keywords):  # drop repeats, keep config order
        source = _term_pattern(keyword)
        if source is not None:
            keywords.append((keyword, re.compile(source)))
    return _CompiledRule(
        name=rule.name,
        any_keyword=_compile_any(rule.keywords),
        keywords=tuple(keywords),
        any_exclude=_compile_any(rule.exclude),
    )


class RuleMatcher:
    """Matches articles against a fixed set of keyword rules.

    All regexes are compiled once, in the constructor.
    """

    def __init__(self, rules: Sequence[KeywordRule]) -> None:
        self._rules = tuple(_compile_rule(rule) for rule in rules)

    def match(self, title: str, body: str) -> list[RuleMatch]:
        """Return every rule the article matches, in rule order.

        A rule matches when at least one keyword hits the title or body and no
        exclude term does. A phrase never spans from the title into the body.
        """
        text = normalise_text(title) + "\n" + normalise_text(body)
        matches: list[RuleMatch] = []
        for rule in self._rules:
            # The single alternation rejects most articles in one scan; the
            # per-keyword patterns then run only for rules that hit.
            if rule.any_keyword is None or rule.any_keyword.search(text) is None:
                continue
            if rule.any_exclude is not None and rule.any_exclude.search(text) is not None:
                continue
            terms = tuple(keyword for keyword, pattern in rule.keywords if pattern.search(text))
            matches.append(RuleMatch(rule=rule.name, terms=terms))
        return matches


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


def _normalise_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """Normalise like `normalise_text` and map each output char back to `text`.

    Returns the normalised text and, for each of its characters, the start and
    end offsets in `text` of the piece it came from.
    """
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for start, end in _segments(text):
        for char in _fold_piece(text[start:end]):
            is_space = char.isspace()
            if is_space and (not chars or chars[-1] == " "):
                continue  # collapse runs and drop leading whitespace
            chars.append(" " if is_space else char)
            starts.append(start)
            ends.append(end)
    if chars and chars[-1] == " ":
        chars.pop()
        starts.pop()
        ends.pop()
    return "".join(chars), starts, ends


@functools.lru_cache(maxsize=256)
def _term_patterns(terms: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    sources = (source for source in map(_term_pattern, terms) if source is not None)
    return tuple(re.compile(source) for source in sources)


def find_terms(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Return the (start, end) spans of whole-word hits of `terms` in `text`.

    Spans index the original, un-normalised `text` (for highlighting it), follow
    the same rules as `RuleMatcher` (case-insensitive, whole words, phrases over
    any whitespace, dash variants), are sorted, and never overlap: overlapping
    or touching hits are merged into one span.
    """
    patterns = _term_patterns(tuple(terms))
    if not patterns or not text:
        return []
    normalised, starts, ends = _normalise_with_offsets(text)
    spans = sorted(
        (starts[hit.start()], ends[hit.end() - 1])
        for pattern in patterns
        for hit in pattern.finditer(normalised)
        if hit.end() > hit.start()
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
