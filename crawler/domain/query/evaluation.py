"""Compiling a query into its matchers (CompiledQuery, compile_query), evaluating it on
an article (evaluate), and the terms a query names."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crawler.domain.query.documents import (
    PreparedDocument,
    _Document,
    prepare_document,
)
from crawler.domain.query.matchers import (
    Found,
    _AndMatcher,
    _LangMatcher,
    _Matcher,
    _NearMatcher,
    _NotMatcher,
    _OrMatcher,
    _TermMatcher,
)
from crawler.domain.query.parser import parse_query
from crawler.domain.query.syntax import (
    And,
    Lang,
    Near,
    Node,
    Not,
    Or,
    Query,
    Term,
)
from crawler.domain.query.text import _LANGUAGE_CODES, stem_language

if TYPE_CHECKING:
    from collections.abc import Iterator


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
