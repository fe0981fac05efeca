"""Lexing a query: the tokens of the rule language (terms, phrases, fields, operators,
NEAR/n, parentheses), each with its column for error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crawler.domain.query.syntax import (
    QuerySyntaxError,
    Term,
    Word,
    _words_of,
)
from crawler.domain.query.text import (
    _WORD_CHAR_RE,
    MAX_NEAR_DISTANCE,
    MAX_QUERY_TERMS,
)

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
                f"the query has more than {MAX_QUERY_TERMS:,} terms",
                tokens[-1].column,
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
            raise QuerySyntaxError(
                f"'{shown}' is not an operator", column, f"write {_shown(upper)}"
            )
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
