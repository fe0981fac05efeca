"""Text for the query language: the normalised form queries and articles are
compared in (folding, accents, words), Snowball stemming, and the field names and
limits every other part of the language shares."""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

import snowballstemmer

FIELDS = ("title", "body", "author", "source", "url", "lang")
TEXT_FIELDS = ("title", "body", "author", "source", "url")
DEFAULT_FIELDS = ("title", "body")
MAX_NEAR_DISTANCE = 1000
# Bounds on what one query may be, so that no query written in a configuration can
# exhaust the stack or take long to evaluate. Nesting: each group, NOT and field
# prefix is a level; the syntax tree is then at most about three nodes per level
# deep, so every walk over it (parsing, str, hash, compiling, matching) recurses
# a few hundred frames at most, whatever the query. Terms: a query is compiled
# into the rule automaton and evaluated as a whole on matching articles.
MAX_QUERY_DEPTH = 50
MAX_QUERY_TERMS = 10_000
# The alternatives on one side of NEAR: matching looks at each pair of them.
MAX_NEAR_ALTERNATIVES = 100

# --- text --------------------------------------------------------------------------

_DIACRITIC_BLOCKS = (
    ("\u0300", "\u036f"), ("\u1ab0", "\u1aff"), ("\u1dc0", "\u1dff"),
    ("\u20d0", "\u20ff"), ("\ufe20", "\ufe2f"),
)  # fmt: skip


# Combining marks that `\w` does not match (Devanagari vowel signs, Arabic
# harakat, …): inside a word they belong to it, or "हिंदी" would be two words.
def _as_ranges(codes: list[int]) -> str:
    """A regex character-class body for the code points, consecutive ones as ranges
    (a class of hundreds of single characters takes a good part of a second to compile)."""
    parts: list[str] = []
    start = previous = codes[0]
    for code in [*codes[1:], -1]:
        if code != previous + 1:
            parts.append(chr(start) if start == previous else f"{chr(start)}-{chr(previous)}")
            start = code
        previous = code
    return "".join(parts)


_MARK_CODES = [
    code
    for code in range(0x300, 0x10000)
    if unicodedata.category(chr(code)).startswith("M") and not chr(code).isalnum()
]
_MARKS = _as_ranges(_MARK_CODES)
_MARK_RE = re.compile(f"[{_MARKS}]")
_WORD_CHAR = f"[\\w{_MARKS}]"
_WORD_CHAR_RE = re.compile(_WORD_CHAR)
_PREFIX_STAR_RE = re.compile(rf"(?<={_WORD_CHAR})\*")


def _token_regex(word_char: str) -> re.Pattern[str]:
    # A run of word characters; a one-letter word keeps a run of + or # after it
    # (C++, C#, F#) unless a word character follows.
    return re.compile(rf"{word_char}+(?:(?<=(?<!{word_char})[^\W\d_])[+#]+(?!{word_char}))?")


_TOKEN_RE = _token_regex(_WORD_CHAR)
# The same words for text without loose combining marks (most text after NFKC),
# where the smaller character class makes tokenising a third faster.
_PLAIN_TOKEN_RE = _token_regex(r"\w")

_IGNORABLE_RE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# A soft hyphen right after a letter marks where the word was broken for the
# line; the whitespace after it is that line break, not a word boundary.
_SOFT_BREAK_RE = re.compile(rf"(?<={_WORD_CHAR})\u00ad+\s*")
_WHITESPACE_RE = re.compile(r"\s+")
# Only the marks of the combining diacritics blocks: vowel signs of Indic
# scripts are letters, not accents.
_DIACRITICS_RE = re.compile(
    "["
    + _as_ranges(
        [
            code
            for code in _MARK_CODES
            if any(ord(low) <= code <= ord(high) for low, high in _DIACRITIC_BLOCKS)
        ]
    )
    + "]"
)
# Letters whose "accent" is part of the glyph, so NFD cannot take it off.
_LETTER_FOLDS = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ı": "i"})


def _fold(text: str) -> str:
    """NFKC, casefold, soft line breaks joined, ignorable characters dropped."""
    if "\u00ad" in text:
        text = _SOFT_BREAK_RE.sub("", text)
    return _IGNORABLE_RE.sub("", unicodedata.normalize("NFKC", text).casefold())


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text
    text = _DIACRITICS_RE.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", text.translate(_LETTER_FOLDS))


_match_form = functools.lru_cache(maxsize=1 << 16)(_strip_accents)


def normalise_text(text: str) -> str:
    """Return `text` in the form rules are matched against.

    NFKC-normalised, casefolded, accents stripped, without soft hyphens or
    zero-width characters, every run of whitespace collapsed to one space, no
    leading or trailing whitespace.
    """
    return _WHITESPACE_RE.sub(" ", _strip_accents(_fold(text))).strip()


@functools.cache
def _strippable_re() -> re.Pattern[str]:
    """Every character that `_strip_accents` changes: text without any (most English
    text, curly quotes and all) needs no stripping, word by word or otherwise. Built
    at the first match, not at import (a tenth of a second: every command imports
    this module to validate the rules, few match anything)."""
    return re.compile(
        "["
        + _as_ranges(
            [
                code
                for code in range(0x80, 0x10000)
                if not 0xD800 <= code < 0xE000 and _strip_accents(char := chr(code)) != char
            ]
        )
        + "]"
    )


def _folded_words(text: str) -> list[str]:
    """The words of `text`, folded but with their accents (what a stemmer reads)."""
    folded = _fold(text)
    if _MARK_RE.search(folded) is None:
        return _PLAIN_TOKEN_RE.findall(folded)
    return _TOKEN_RE.findall(folded)


def _words_and_folded(text: str) -> tuple[list[str], list[str]]:
    """The words of `text` in match form, and the same words with their accents."""
    folded_text = _fold(text)
    regex = _PLAIN_TOKEN_RE if _MARK_RE.search(folded_text) is None else _TOKEN_RE
    folded = regex.findall(folded_text)
    if _strippable_re().search(folded_text) is None:
        return folded, folded
    # Stripping word by word (cached) is ten times faster than the whole text.
    words = [word if word.isascii() else _match_form(word) for word in folded]
    if "" in words:  # a lone combining accent, stripped to nothing
        kept = [(w, f) for w, f in zip(words, folded, strict=True) if w]
        words, folded = [w for w, _ in kept], [f for _, f in kept]
    return words, folded


def tokenise(text: str) -> list[str]:
    """The words of `text` in match form (folded, accents stripped), in order."""
    return _words_and_folded(text)[0]


# --- stemming ----------------------------------------------------------------------

_SNOWBALL = frozenset(snowballstemmer.algorithms())
_LANGUAGE_CODES = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian",
    "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian",
    "nn": "norwegian", "fa": "persian", "pl": "polish", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "st": "sesotho",
    "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip


def stem_language(language: str | None) -> str | None:
    """The Snowball stemmer for an article or rule language, or None if there is none.

    Takes a language tag ("en", "en-GB", "pt_BR") or a Snowball name ("english").
    """
    if not language:
        return None
    tag = language.strip().lower().replace("_", "-")
    if tag in _SNOWBALL:
        return tag
    name = _LANGUAGE_CODES.get(tag.split("-", 1)[0])
    return name if name in _SNOWBALL else None


_stemmers = threading.local()  # a Snowball stemmer keeps state while it works


@functools.lru_cache(maxsize=1 << 17)
def stem_word(language: str, folded_word: str) -> str:
    """The match form of a word's Snowball stem in `language` (a Snowball name).

    `folded_word` is casefolded with its accents, which stemmers rely on; the
    stem is then stripped of accents like every word that is matched.
    """
    stemmers = _stemmers.__dict__
    stemmer = stemmers.get(language)
    if stemmer is None:
        stemmer = stemmers[language] = snowballstemmer.stemmer(language)
    return _strip_accents(stemmer.stemWord(folded_word)) or folded_word


def _language_tag(text: str | None) -> str:
    return (text or "").strip().lower().replace("_", "-")
