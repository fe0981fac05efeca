"""Parsing a query: the recursive-descent parser over the lexer's tokens, and the
query of a keyword rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawler.domain.query.lexer import _LANG_CODE_RE, _lex, _shown, _Token
from crawler.domain.query.syntax import (
    And,
    Lang,
    Near,
    Node,
    Not,
    Or,
    Query,
    QuerySyntaxError,
    Term,
    _split_words,
)
from crawler.domain.query.text import (
    FIELDS,
    MAX_NEAR_ALTERNATIVES,
    MAX_QUERY_DEPTH,
    _language_tag,
)

if TYPE_CHECKING:
    from collections.abc import Sequence


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
                f"the query nests more than {MAX_QUERY_DEPTH} levels deep",
                token.column,
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
                f"{chained.text} cannot follow another NEAR",
                chained.column,
                "join two NEAR expressions with AND",
            )
        return Near(left_terms, right_terms, near.distance)

    def _near_side(self, node: Node, start: _Token, near: str) -> tuple[Term, ...]:
        terms = node.children if isinstance(node, Or) else (node,)
        if len(terms) > MAX_NEAR_ALTERNATIVES:
            raise QuerySyntaxError(
                f"{near} takes at most {MAX_NEAR_ALTERNATIVES} alternatives on a side",
                start.column,
                f"this side has {len(terms)}; split the rule",
            )
        for term in terms:
            if not isinstance(term, Term):
                raise QuerySyntaxError(
                    f"{near} needs a term, a phrase or a parenthesised OR of them on each side",
                    start.column,
                )
            if term.field != self._scope:
                raise QuerySyntaxError(
                    f"'{term.field}:' cannot be used inside NEAR",
                    start.column,
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
                f"unknown field '{_shown(field.text)}'",
                field.column,
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
                    "expected OR or ')' in 'lang:(…)'",
                    separator.column,
                    "lang:(…) takes language codes joined by OR",
                )


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
