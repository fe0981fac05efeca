"""The query language of watch rules: parsed once, evaluated on each article.

A watch rule is either a list of keywords (`KeywordRule` in alerts/rules.py) or
a query such as::

    "Palmyra" OR (ISIS NEAR/5 (Syria OR Iraq)) AND NOT title:football AND lang:en

Syntax
------
``ISIS``
    a word, matched whole: ``ISIS`` does not match "crisis". A term with inner
    punctuation is the phrase of its words: ``anti-ISIS`` is ``"anti ISIS"`` and
    ``bbc.co.uk`` is ``"bbc co uk"``.
``"Islamic State"``
    an exact phrase: these words, consecutive, in this order. What separates
    the words in the article (spaces, line breaks, punctuation, hyphens) does
    not matter. A quoted phrase (or quoted word) is never stemmed.
``refug*``
    a prefix: any word starting with "refug". ``*`` may only end a word of at
    least one letter or digit; it works inside phrases too: ``"refug* camp*"``.
``a AND b``, ``a b``
    both. Terms written next to each other are joined by an implicit AND.
``a OR b``
    either.
``NOT a``
    not a. A query may be made of NOT and ``lang:`` alone: ``NOT title:football``.
``a NEAR/n b``
    a and b in the same field, in either order, at two different places at most
    n words apart (neighbouring words are 1 apart; n from 1 to 1000). Sentence
    ends do not count: it is a word distance. Each side is a term, a phrase, a
    prefix or a parenthesised OR of those: ``ISIS NEAR/5 (Syria OR Iraq)``.
    NEAR does not chain; join two NEARs with AND. A side has at most 100
    alternatives.
``( … )``
    grouping.
``title:``, ``body:``, ``author:``, ``source:``, ``url:``
    look only in that field, for the term, phrase or parenthesised group written
    right after the colon, with no space: ``title:(Syria OR Iraq)``. A term
    without a field looks in the title and the body (a phrase never runs from
    the one into the other). Fields do not nest, and NEAR's sides take none:
    scope the whole NEAR instead, ``title:(ISIS NEAR/3 Syria)``.
``lang:en``, ``lang:(en OR fr)``
    the article's language: ``lang:en`` matches "en" and "en-GB", ``lang:pt-BR``
    only "pt-BR". An article whose language is unknown matches no ``lang:``.

Precedence, tightest first: a field prefix, then NEAR/n, then NOT, then AND
(explicit or implicit, which are the same), then OR. So ``a OR b c`` is
``a OR (b AND c)``, ``NOT a b`` is ``(NOT a) AND b``, ``a OR NOT b AND c`` is
``a OR ((NOT b) AND c)`` and ``NOT a NEAR/2 b`` is ``NOT (a NEAR/2 b)``.
Operators are upper case. A lower-case ``and``, ``or``, ``not`` or ``near/5`` is
an error, not a silently searched word (to search for the word, quote it:
``"not"``); so are ``-word`` and ``+word`` (write ``NOT word``, or just ``word``).

Limits: a query nests at most 50 levels deep (each parenthesised group, each
NOT and each field prefix is a level: ``NOT (a OR title:b)`` is three deep)
and has at most 10,000 terms. Past either, parsing stops with a
`QuerySyntaxError` at the column where the limit was passed.

Text
----
Queries and articles are compared in one normalised form: NFKC, case-folded,
accents stripped (``Zurich`` matches "Zürich" and ``Zürich`` matches "Zurich";
also ł→l, ø→o, đ→d, ħ→h, ŧ→t, ı→i), soft hyphens and zero-width characters
removed. A soft hyphen at the end of a word also removes the line break after
it ("Pal\\u00ad⏎myra" is "Palmyra"). Words are runs of letters, digits,
underscores and combining marks; anything else separates words, so hyphens are
word boundaries ("anti-ISIS" holds the word ISIS). One letter followed by ``+``
or ``#`` is a word of its own, so C++, C# and F# are not the word "c" or "f".

Stemming
--------
With the rule option ``stem: true``, unquoted words (not prefixes) match every
word with the same Snowball stem: ``election`` matches "elections". The stemmer
is the article's language's; the rule's ``language:`` stands in for articles
whose language is unknown (or has no Snowball stemmer). With neither, words
match exactly.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

import snowballstemmer

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from collections.abc import Set as AbstractSet

__all__ = [
    "DEFAULT_SCOPE",
    "FIELDS",
    "TEXT_FIELDS",
    "And",
    "CompiledQuery",
    "Found",
    "Lang",
    "Near",
    "Not",
    "Or",
    "PreparedDocument",
    "Query",
    "QueryResult",
    "QuerySyntaxError",
    "Term",
    "Word",
    "best_word",
    "compile_query",
    "evaluate",
    "find_word_runs",
    "keyword_query",
    "normalise_text",
    "parse_query",
    "prepare_document",
    "query_terms",
    "stem_language",
    "stem_word",
    "term_key",
    "term_pattern",
    "tokenise",
    "word_key",
    "word_spans",
]

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
    + _as_ranges([
        code
        for code in _MARK_CODES
        if any(ord(low) <= code <= ord(high) for low, high in _DIACRITIC_BLOCKS)
    ])
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
        + _as_ranges([
            code
            for code in range(0x80, 0x10000)
            if not 0xD800 <= code < 0xE000 and _strip_accents(char := chr(code)) != char
        ])
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


# --- the syntax tree ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a term: its match form, its folded form for the stemmer, how it matches."""

    text: str
    folded: str
    prefix: bool = False
    stemmable: bool = True

    def __str__(self) -> str:
        return self.text + ("*" if self.prefix else "")


@dataclass(frozen=True, slots=True)
class Term:
    """A word, phrase or prefix, looked for in `field` (None: the title or the body).

    `text` is the term as written, without its field and quotes: what
    `RuleMatch.terms` reports and the digest highlights.
    """

    text: str
    words: tuple[Word, ...]
    field: str | None = None
    quoted: bool = False

    def __str__(self) -> str:
        text = f'"{self.text}"' if self.quoted else self.text
        return f"{self.field}:{text}" if self.field else text


@dataclass(frozen=True, slots=True)
class Lang:
    """True when the article's language is one of `codes` (or a variant of one)."""

    codes: tuple[str, ...]

    def __str__(self) -> str:
        if len(self.codes) == 1:
            return f"lang:{self.codes[0]}"
        return "lang:(" + " OR ".join(self.codes) + ")"


@dataclass(frozen=True, slots=True)
class Not:
    child: Node

    def __str__(self) -> str:
        return f"NOT {self.child}"


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return "(" + " AND ".join(map(str, self.children)) + ")"


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return "(" + " OR ".join(map(str, self.children)) + ")"


@dataclass(frozen=True, slots=True)
class Near:
    """Some term of `left` and some term of `right` at most `distance` words apart."""

    left: tuple[Term, ...]
    right: tuple[Term, ...]
    distance: int

    def __str__(self) -> str:
        def side(terms: tuple[Term, ...]) -> str:
            return str(terms[0]) if len(terms) == 1 else "(" + " OR ".join(map(str, terms)) + ")"

        return f"({side(self.left)} NEAR/{self.distance} {side(self.right)})"


Node = Term | Lang | Not | And | Or | Near


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: immutable, hashable, and printed fully parenthesised."""

    text: str
    root: Node

    def __str__(self) -> str:
        return str(self.root)

    def triggers(self) -> tuple[Term | Lang, ...] | None:
        """Terms and ``lang:`` filters one of which holds in every article the query
        matches: a prefilter evaluates the query only for such articles.

        A ``lang:`` filter is chosen only where no term would do (``lang:ja AND
        NOT tax``). None when the query can match without any (a NOT-only
        query): a prefilter must always evaluate it.
        """
        cover = _cover(self.root)
        return None if cover is None else tuple(dict.fromkeys(cover))

    def terms(self) -> tuple[str, ...]:
        """The words and prefixes (``refug*``) the query needs, in match form.

        At least one of them occurs in every article the query matches, so an
        article holding none of them can be skipped; empty when there is no such
        set (``NOT football``, ``lang:en``) and the query must always be evaluated.
        """
        triggers = self.triggers() or ()
        if any(isinstance(trigger, Lang) for trigger in triggers):
            return ()
        words = (best_word(trigger) for trigger in triggers if isinstance(trigger, Term))
        return tuple(dict.fromkeys(str(word) for word in words))


def best_word(term: Term) -> Word:
    """The word of `term` that rejects the most articles: every word of a phrase
    must occur, and the longest exact one is the rarest, as a rule."""
    return max(term.words, key=lambda word: (not word.prefix, len(word.text)))


def _cover(node: Node) -> list[Term | Lang] | None:
    """A disjunctive set of terms and lang: filters implied by `node`, or None."""
    if isinstance(node, Term | Lang):
        return [node]
    if isinstance(node, Near):
        sides: list[list[Term | Lang]] = [list(node.left), list(node.right)]
        return min(sides, key=_cover_cost)
    if isinstance(node, Or):
        items: list[Term | Lang] = []
        for child in node.children:
            cover = _cover(child)
            if cover is None:
                return None
            items.extend(cover)
        return items
    if isinstance(node, And):
        covers = [cover for child in node.children if (cover := _cover(child)) is not None]
        return min(covers, key=_cover_cost) if covers else None
    return None  # Not


def _cover_cost(items: list[Term | Lang]) -> tuple[int, int, int, int]:
    # Terms before languages (lang:en holds for most articles), then fewer terms,
    # then no prefix (" thin" starts many words), then longer words.
    words = [best_word(item) for item in items if isinstance(item, Term)]
    languages = len(items) - len(words)
    prefixes = sum(word.prefix for word in words)
    return languages, len(items), prefixes, -min((len(w.text) for w in words), default=0)


def term_key(term: Term, *, stem: bool = False) -> str | None:
    """What marks a hit of `term` in a field: its key.

    A word's key is the word ("isis"): it hits when the field has that word. A
    phrase's key is " two words " and a prefix's " pref": they hit when that
    text occurs in `PreparedDocument.field_text`, where every word stands
    between single spaces. None when a hit needs more than that: a stemmed
    word, or a prefix inside a phrase.
    """
    words = term.words
    if stem and any(word.stemmable for word in words):
        return None
    if len(words) == 1:
        return word_key(words[0])
    if any(word.prefix for word in words):
        return None
    return " " + " ".join(word.text for word in words) + " "


def word_key(word: Word) -> str:
    """The `term_key` of a one-word term: the word, or " pref" for a prefix."""
    return f" {word.text}" if word.prefix else word.text


# --- errors ----------------------------------------------------------------------


class QuerySyntaxError(ValueError):
    """A query that cannot be parsed: what was wrong, and where (1-based column)."""

    def __init__(self, message: str, column: int, hint: str | None = None) -> None:
        self.message = message
        self.column = column
        self.hint = hint
        text = f"{message} at column {column}"
        super().__init__(f"{text}; {hint}" if hint else text)


# --- lexer ----------------------------------------------------------------------------

_OPERATORS = frozenset({"AND", "OR", "NOT"})
_FIELD_RE = re.compile(r"([A-Za-z]+):")
_NEAR_RE = re.compile(r"NEAR/(\d+)")
_LANG_CODE_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
_STOPS = frozenset('()"')


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # TERM PHRASE FIELD LPAREN RPAREN AND OR NOT NEAR END
    text: str
    column: int  # 1-based column of the first character
    end: int  # 1-based column just after the last character
    node: Term | None = None
    distance: int = 0


def _lex(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    index, length = 0, len(query)
    terms = 0  # TERM and PHRASE tokens: stop at the first one past the limit
    while index < length:
        char = query[index]
        if char.isspace():
            index += 1
        elif char in "()":
            kind = "LPAREN" if char == "(" else "RPAREN"
            tokens.append(_Token(kind, char, index + 1, index + 2))
            index += 1
        elif char == '"':
            close = query.find('"', index + 1)
            if close == -1:
                raise QuerySyntaxError(
                    "unterminated phrase", index + 1, 'expected a closing " before the end'
                )
            term = _make_term(query[index + 1 : close], index + 2, quoted=True)
            if term is None:
                raise QuerySyntaxError("empty phrase", index + 1)
            tokens.append(_Token("PHRASE", query[index : close + 1], index + 1, close + 2, term))
            index = close + 1
            terms += 1
        else:
            end = index
            while end < length and not query[end].isspace() and query[end] not in _STOPS:
                end += 1
            run = query[index:end]
            if field := _FIELD_RE.match(run):
                tokens.append(_Token("FIELD", field[1], index + 1, index + len(field[0]) + 1))
                index += len(field[0])
                continue
            tokens.append(token := _word_token(run, index + 1))
            index = end
            terms += token.node is not None
        if terms > MAX_QUERY_TERMS:
            raise QuerySyntaxError(
                f"the query has more than {MAX_QUERY_TERMS:,} terms", tokens[-1].column,
                "split it into several rules",
            )
    tokens.append(_Token("END", "the end of the query", length + 1, length + 1))
    return tokens


def _word_token(run: str, column: int) -> _Token:
    """An operator, NEAR/n or term token for a run of non-space characters."""
    end = column + len(run)
    if run in _OPERATORS:
        return _Token(run, run, column, end)
    upper = run.upper()
    if upper in _OPERATORS:
        raise QuerySyntaxError(
            f"'{run}' is not an operator", column, f'write {upper}, or "{run}" for the word'
        )
    shown = _shown(run)
    if upper.startswith("NEAR/") or run == "NEAR":
        near = _NEAR_RE.fullmatch(run)
        if near is None:
            if run.startswith("NEAR"):
                raise QuerySyntaxError(
                    "NEAR needs a word distance", column, "write NEAR/n, such as NEAR/5"
                )
            raise QuerySyntaxError(f"'{shown}' is not an operator", column,
                                   f"write {_shown(upper)}")
        # A distance of more digits than the largest has is out of range without
        # converting it (int() refuses numbers of thousands of digits).
        digits = near[1]
        distance = int(digits) if len(digits) <= len(str(MAX_NEAR_DISTANCE)) else 0
        if not 1 <= distance <= MAX_NEAR_DISTANCE:
            raise QuerySyntaxError(
                f"NEAR distance {_shown(digits)} is out of range",
                column + 5,
                f"expected a number of words from 1 to {MAX_NEAR_DISTANCE}",
            )
        return _Token("NEAR", run, column, end, distance=distance)
    if run[0] in "-+" and len(run) > 1:
        if run[0] == "-":
            hint = f"to exclude it write NOT {_shown(run[1:])}"
        else:
            hint = f"terms are required by default: write {_shown(run[1:])}"
        raise QuerySyntaxError(f"'{shown}' starts with '{run[0]}'", column, hint)
    term = _make_term(run, column, quoted=False)
    if term is None:
        raise QuerySyntaxError(
            f"expected a term, found '{shown}'", column, "a term needs letters or digits"
        )
    return _Token("TERM", run, column, end, term)


def _shown(text: str) -> str:
    """`text` as quoted in an error message: at most 40 characters, and those that do
    not print (bidi controls, zero-width characters) as escapes."""
    text = text if len(text) <= 40 else text[:39] + "…"
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in text)


def _make_term(text: str, column: int, *, quoted: bool) -> Term | None:
    """The term for `text` written at `column`; None if it has no word at all.

    Raises QuerySyntaxError for a `*` that does not end a word.
    """
    words: list[Word] = []
    start = 0
    for index, char in enumerate(text):
        if char != "*":
            continue
        if index == 0 or not _WORD_CHAR_RE.match(text[index - 1]):
            raise QuerySyntaxError(
                "'*' needs a word before it", column + index, "write a prefix such as refug*"
            )
        following = text[index + 1 : index + 2]
        if following and (following == "*" or _WORD_CHAR_RE.match(following)):
            raise QuerySyntaxError("'*' may only end a word", column + index)
        words.extend(_words_of(text[start:index], quoted=quoted, prefix_last=True))
        start = index + 1
    words.extend(_words_of(text[start:], quoted=quoted, prefix_last=False))
    if not words:
        return None
    return Term(text=text.strip(), words=tuple(words), quoted=quoted)


def _words_of(text: str, *, quoted: bool, prefix_last: bool) -> list[Word]:
    folded = [word for word in _folded_words(text) if _match_form(word)]
    words = [Word(_match_form(word), word, stemmable=not quoted) for word in folded]
    if prefix_last and words:
        last = words[-1]
        words[-1] = Word(last.text, last.folded, prefix=True, stemmable=False)
    return words


# --- parser -----------------------------------------------------------------------

_TERM_STARTS = frozenset({"TERM", "PHRASE", "FIELD", "LPAREN", "NOT"})


def parse_query(text: str) -> Query:
    """Parse `text` into a `Query`; raises `QuerySyntaxError` naming what was expected."""
    parser = _Parser(_lex(text))
    if parser.peek().kind == "END":
        raise QuerySyntaxError("empty query", 1)
    root = parser.parse_or(after=None)
    token = parser.peek()
    if token.kind != "END":  # parse_or stops only at the end or a ')'
        raise QuerySyntaxError("unmatched ')'", token.column, "no '(' before it is left open")
    return Query(text=text, root=root)


def _flatten(kind: type[And] | type[Or], nodes: list[Node]) -> Node:
    children: list[Node] = []
    for node in nodes:
        children.extend(node.children if isinstance(node, kind) else (node,))
    return children[0] if len(children) == 1 else kind(tuple(children))


class _Parser:
    """Recursive descent: or := and (OR and)*; and := not ((AND)? not)*;
    not := NOT not | near; near := primary (NEAR/n primary)?;
    primary := FIELD? (TERM | PHRASE | '(' or ')').

    Each group, NOT and field prefix entered is a nesting level; past
    MAX_QUERY_DEPTH the parse stops (the recursion depth is a few frames a level).
    """

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._position = 0
        self._scope: str | None = None
        self._depth = 0  # open parentheses
        self._levels = 0  # nesting levels: groups, NOTs and fields

    def _enter(self, token: _Token) -> None:
        """One nesting level more, opened by `token`."""
        self._levels += 1
        if self._levels > MAX_QUERY_DEPTH:
            raise QuerySyntaxError(
                f"the query nests more than {MAX_QUERY_DEPTH} levels deep", token.column,
                "each parenthesised group, NOT and field prefix is a level; write it flatter",
            )

    def peek(self) -> _Token:
        return self._tokens[self._position]

    def _advance(self) -> _Token:
        token = self._tokens[self._position]
        self._position += 1
        return token

    def parse_or(self, after: str | None) -> Node:
        nodes = [self._parse_and(after)]
        while self.peek().kind == "OR":
            self._advance()
            nodes.append(self._parse_and("OR"))
        return _flatten(Or, nodes)

    def _parse_and(self, after: str | None) -> Node:
        nodes = [self._parse_not(after)]
        while True:
            token = self.peek()
            if token.kind == "AND":
                self._advance()
                nodes.append(self._parse_not("AND"))
            elif token.kind in _TERM_STARTS:
                nodes.append(self._parse_not(None))
            else:
                return _flatten(And, nodes)

    def _parse_not(self, after: str | None) -> Node:
        negations = 0
        while self.peek().kind == "NOT":
            self._enter(self._advance())
            negations += 1
            after = "NOT"
        node = self._parse_near(after)
        self._levels -= negations
        for _ in range(negations):
            node = Not(node)
        return node

    def _parse_near(self, after: str | None) -> Node:
        start = self.peek()
        left = self._parse_primary(after)
        if self.peek().kind != "NEAR":
            return left
        near = self._advance()
        left_terms = self._near_side(left, start, near.text)
        right_start = self.peek()
        right = self._parse_primary(near.text)
        right_terms = self._near_side(right, right_start, near.text)
        if (chained := self.peek()).kind == "NEAR":
            raise QuerySyntaxError(
                f"{chained.text} cannot follow another NEAR", chained.column,
                "join two NEAR expressions with AND",
            )
        return Near(left_terms, right_terms, near.distance)

    def _near_side(self, node: Node, start: _Token, near: str) -> tuple[Term, ...]:
        terms = node.children if isinstance(node, Or) else (node,)
        if len(terms) > MAX_NEAR_ALTERNATIVES:
            raise QuerySyntaxError(
                f"{near} takes at most {MAX_NEAR_ALTERNATIVES} alternatives on a side",
                start.column, f"this side has {len(terms)}; split the rule",
            )
        for term in terms:
            if not isinstance(term, Term):
                raise QuerySyntaxError(
                    f"{near} needs a term, a phrase or a parenthesised OR of them on each side",
                    start.column,
                )
            if term.field != self._scope:
                raise QuerySyntaxError(
                    f"'{term.field}:' cannot be used inside NEAR", start.column,
                    f"scope the whole NEAR instead, as in {term.field}:(a {near} b)",
                )
        return tuple(terms)  # type: ignore[arg-type]

    def _parse_primary(self, after: str | None) -> Node:
        token = self.peek()
        if token.node is not None:  # a TERM or PHRASE
            self._advance()
            if self._scope is None:
                return token.node
            return Term(token.node.text, token.node.words, self._scope, token.node.quoted)
        if token.kind == "LPAREN":
            self._enter(self._advance())
            self._depth += 1
            node = self.parse_or("'('")
            self._depth -= 1
            self._levels -= 1
            if self.peek().kind != "RPAREN":
                raise QuerySyntaxError("unclosed '('", token.column, "expected ')' before the end")
            self._advance()
            return node
        if token.kind == "FIELD":
            return self._parse_field()
        if token.kind == "RPAREN" and self._depth == 0 and after is None:
            raise QuerySyntaxError("unmatched ')'", token.column, "no '(' before it is left open")
        if after is None:
            raise QuerySyntaxError(f"expected a term before {token.text}", token.column)
        raise QuerySyntaxError(f"expected a term after {after}", token.column)

    def _parse_field(self) -> Node:
        field = self._advance()
        name = field.text.lower()
        if name not in FIELDS:
            raise QuerySyntaxError(
                f"unknown field '{_shown(field.text)}'", field.column,
                "expected one of " + ", ".join(FIELDS),
            )
        if self._scope is not None:
            raise QuerySyntaxError(
                f"'{name}:' cannot be used inside '{self._scope}:(…)'", field.column
            )
        following = self.peek()
        if following.column != field.end or following.kind not in ("TERM", "PHRASE", "LPAREN"):
            raise QuerySyntaxError(f"expected a term right after '{name}:'", field.end)
        self._enter(field)
        if name == "lang":
            node: Node = self._parse_lang(field)
        else:
            self._scope = name
            try:
                node = self._parse_primary(f"'{name}:'")
            finally:
                self._scope = None
        self._levels -= 1
        return node

    def _parse_lang(self, field: _Token) -> Lang:
        expected = "expected a language code such as en or pt-BR"
        token = self._advance()
        if token.kind == "TERM":
            if not _LANG_CODE_RE.fullmatch(token.text):
                raise QuerySyntaxError(f"{expected} after 'lang:'", token.column)
            return Lang((_language_tag(token.text),))
        if token.kind != "LPAREN":
            raise QuerySyntaxError(f"{expected} after 'lang:'", token.column)
        codes: list[str] = []
        while True:
            code = self._advance()
            if code.kind != "TERM" or not _LANG_CODE_RE.fullmatch(code.text):
                raise QuerySyntaxError(f"{expected} in 'lang:(…)'", code.column)
            codes.append(_language_tag(code.text))
            separator = self._advance()
            if separator.kind == "RPAREN":
                return Lang(tuple(dict.fromkeys(codes)))
            if separator.kind != "OR":
                raise QuerySyntaxError(
                    "expected OR or ')' in 'lang:(…)'", separator.column,
                    "lang:(…) takes language codes joined by OR",
                )


def _language_tag(text: str | None) -> str:
    return (text or "").strip().lower().replace("_", "-")


def keyword_query(keywords: Sequence[str], exclude: Sequence[str] = ()) -> Query:
    """The query of a keyword rule: any keyword, and none of the excluded terms.

    Keywords are taken literally, except that a `*` ending a word makes it a
    prefix; keywords without any word are ignored. A rule left without keywords
    is an empty OR, which never matches.
    """

    def terms(texts: Sequence[str]) -> list[Node]:
        found: list[Node] = []
        for text in dict.fromkeys(texts):
            if words := _split_words(text, quoted=False):
                found.append(Term(text=text.strip(), words=words))
        return found

    positive = Or(tuple(terms(keywords)))
    negative = terms(exclude)
    root: Node = And((positive, Not(Or(tuple(negative))))) if negative else positive
    return Query(text=str(root), root=root)


# --- documents --------------------------------------------------------------------


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

    __slots__ = ("fields", "language", "language_tags", "stem_language")

    def __init__(self, document: _Document) -> None:
        self.fields = {name: _FieldWords(getattr(document, name) or "") for name in TEXT_FIELDS}
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


# --- evaluation -------------------------------------------------------------------

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


def _compile(node: Node, stem: bool, language: str | None) -> _Matcher:
    if isinstance(node, Term):
        return _TermMatcher(node, stem, language)
    if isinstance(node, Lang):
        return _LangMatcher(node)
    if isinstance(node, Not):
        return _NotMatcher(_compile(node.child, stem, language))
    if isinstance(node, And):
        return _AndMatcher([_compile(child, stem, language) for child in node.children])
    if isinstance(node, Or):
        return _OrMatcher([_compile(child, stem, language) for child in node.children])
    return _NearMatcher(
        [_TermMatcher(term, stem, language) for term in node.left],
        [_TermMatcher(term, stem, language) for term in node.right],
        node.distance,
    )


def query_terms(node: Node) -> Iterator[Term]:
    """Every term of the query under `node`, NEAR's and negated ones included."""
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Near):
        yield from node.left
        yield from node.right
    elif isinstance(node, Not):
        yield from query_terms(node.child)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from query_terms(child)


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Whether a query matched, and its terms that hit (as written, in query order).

    Only terms that made the match count: not the ones under NOT, nor those of
    an OR branch or NEAR pair that did not hold. A stemmed term is followed by
    the article's words it matched through their stem ("election", "elections"),
    so that highlighting finds them. True in a boolean context when it matched.
    """

    matched: bool
    terms: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.matched


class CompiledQuery:
    """A query ready to run: `matches` is the fast yes/no, `evaluate` adds the terms.

    `stem` turns on stemming of unquoted words, in each article's language, or
    in `language` for articles whose language has no stemmer. Both methods
    take an optional `found` (see `Found`) from a caller that already scanned
    the document for the `term_key` of every term.
    """

    __slots__ = ("_matcher", "language", "query", "stem")

    def __init__(self, query: Query, *, stem: bool = False, language: str | None = None) -> None:
        resolved = stem_language(language)
        if stem and language and resolved is None:
            raise ValueError(
                f"no stemmer for language {language!r}; expected one of "
                + ", ".join(sorted(_LANGUAGE_CODES))
            )
        self.query = query
        self.stem = stem
        self.language = resolved if stem else None
        self._matcher = _compile(query.root, stem, self.language)

    def matches(self, document: PreparedDocument, found: Found | None = None) -> bool:
        return self._matcher.matches(document, found)

    def evaluate(self, document: PreparedDocument, found: Found | None = None) -> QueryResult:
        if not self._matcher.matches(document, found):
            return QueryResult(matched=False)
        return QueryResult(matched=True, terms=self.hit_terms(document, found))

    def hit_terms(self, document: PreparedDocument, found: Found | None = None) -> tuple[str, ...]:
        """The `QueryResult.terms` of a document the query matches."""
        terms: list[str] = []
        self._matcher.collect(document, found, terms)
        return tuple(dict.fromkeys(terms))


@functools.lru_cache(maxsize=1024)
def compile_query(
    query: Query | str, *, stem: bool = False, language: str | None = None
) -> CompiledQuery:
    """Compile (and cache) `query`, parsing it first when it is a string."""
    parsed = parse_query(query) if isinstance(query, str) else query
    return CompiledQuery(parsed, stem=stem, language=language)


def evaluate(
    query: Query | str,
    document: _Document | PreparedDocument,
    *,
    stem: bool = False,
    language: str | None = None,
) -> QueryResult:
    """Evaluate `query` on `document` (a MatchDocument, or one already prepared).

    Returns whether it matched and which of its terms hit; see `QueryResult`.
    """
    compiled = compile_query(query, stem=stem, language=language)
    return compiled.evaluate(prepare_document(document))


# --- highlighting -----------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def term_pattern(term: str) -> tuple[Word, ...]:
    """The words of a reported term (a word, a phrase, a prefix ending in `*`).

    Empty when `term` has no word. Used to find the term again in a text.
    """
    return _split_words(term, quoted=True)


def _split_words(text: str, *, quoted: bool) -> tuple[Word, ...]:
    """The words of `text`, where a `*` right after a word makes that word a prefix."""
    parts = _PREFIX_STAR_RE.split(text) if "*" in text else [text]
    return tuple(
        word
        for index, part in enumerate(parts)
        for word in _words_of(part, quoted=quoted, prefix_last=index < len(parts) - 1)
    )


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
    soft_breaks = {
        index for hit in _SOFT_BREAK_RE.finditer(text) for index in range(*hit.span())
    }
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
