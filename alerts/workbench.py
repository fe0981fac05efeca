"""Trying a query on stored articles before it becomes a rule: the web UI's search in
the rule language and its rule workbench.

A query is checked with the rules' own parser (its errors carry the column), run
with the rules' own matcher on articles the caller read (a bounded scan: the
caller picks how many), and compared with a configured rule on the same articles:
what the draft would newly catch and what it would drop. The rule's YAML entry
for the draft is written by a YAML dumper, never by pasting text together, so
that any query comes out as one valid scalar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from alerts.rules import MatchDocument, QueryRule, RuleError, RuleMatcher
from crawler.domain.query import QuerySyntaxError, parse_query, prepare_document

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from alerts.rules import KeywordRule
    from crawler.storage.records import StoredArticle


@dataclass(frozen=True, slots=True)
class QueryProblem:
    """Why a query cannot run: the parser's message, and the 1-based column it
    points at (None for a problem that is not at one place, such as a language
    without a stemmer)."""

    message: str
    column: int | None = None
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """An article a query or rule matches, with its terms that hit (for highlighting)."""

    article: StoredArticle
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Comparison:
    """A draft query against a configured rule, on the same articles: every hit of the
    draft, the ones the rule does not have (``added``), the rule's hits the draft
    loses (``dropped``), and how many both catch. Each list keeps the articles' order."""

    draft: list[Hit]
    added: list[Hit]
    dropped: list[Hit]
    kept: int


def check_query(query: str) -> QueryProblem | None:
    """None when ``query`` parses as a rule query; otherwise what is wrong and where."""
    try:
        parse_query(query)
    except QuerySyntaxError as error:
        return QueryProblem(error.message, error.column, error.hint)
    except ValueError as error:
        return QueryProblem(str(error))
    return None


def index_words(query: str, most: int = 12) -> tuple[str, ...]:
    """Words one of which every article ``query`` matches holds, for a full-text
    index to find candidates by (a candidate is then evaluated); () when there is no
    such set, when one is a prefix, or when there are more than ``most``: the
    query must then be evaluated on every article."""
    try:
        words = parse_query(query).terms()
    except ValueError:
        return ()
    if len(words) > most or any(word.endswith("*") for word in words):
        return ()
    return words


def rule_problem(error: RuleError) -> QueryProblem:
    """A rule that would not compile, as a `QueryProblem` (with the column when the
    cause is the query's syntax)."""
    cause = error.error
    if isinstance(cause, QuerySyntaxError):
        return QueryProblem(cause.message, cause.column, cause.hint)
    return QueryProblem(str(cause))


def find_hits(rule: KeywordRule | QueryRule, articles: Sequence[StoredArticle]) -> list[Hit]:
    """The articles ``rule`` matches, in the order given, each with its terms that
    hit; a rule limited to sources matches only their articles, as in a crawl.

    Raises `RuleError` for a rule that does not compile. CPU-bound: callers on an
    event loop run it in a thread.
    """
    [hits] = find_hits_of([rule], articles)
    return hits


def find_hits_of(
    rules: Sequence[KeywordRule | QueryRule], articles: Sequence[StoredArticle]
) -> list[list[Hit]]:
    """`find_hits` for each of ``rules`` (rules of the same name too), each article
    tokenised once for all of them: tokenising is most of the cost."""
    matchers = [RuleMatcher([rule]) for rule in rules]
    hits: list[list[Hit]] = [[] for _ in rules]
    for article in articles:
        document = prepare_document(MatchDocument.of_stored(article))
        for matcher, found in zip(matchers, hits, strict=True):
            found.extend(Hit(article, match.terms) for match in matcher.match(document))
    return hits


def draft_rule(query: str, like: KeywordRule | QueryRule | None) -> QueryRule:
    """The rule a draft query makes: with the stemming, language and sources of the
    rule ``like`` it is meant to replace (so that only the words change), or of
    none (every source, no stemming)."""
    if like is None:
        return QueryRule("draft", query)
    return QueryRule(like.name, query, stem=like.stem, language=like.language, sources=like.sources)


def compare_hits(draft: Sequence[Hit], configured: Sequence[Hit]) -> Comparison:
    """What ``draft`` catches that ``configured`` does not, and the reverse, by article."""
    draft_ids = {hit.article.id for hit in draft}
    configured_ids = {hit.article.id for hit in configured}
    return Comparison(
        draft=list(draft),
        added=[hit for hit in draft if hit.article.id not in configured_ids],
        dropped=[hit for hit in configured if hit.article.id not in draft_ids],
        kept=len(draft_ids & configured_ids),
    )


def rule_snippet(name: str, query: str, settings: Mapping[str, Any] | None = None) -> str:
    """The ``rules:`` entry for a rule named ``name`` with ``query``, as YAML to paste
    under ``rules:``; ``settings`` are the rule's other keys (a keyword rule's
    ``keywords`` and ``exclude`` are left out: the query replaces them)."""
    entry: dict[str, Any] = {"name": name, "query": query}
    for key, value in (settings or {}).items():
        if key not in entry and key not in ("keywords", "exclude"):
            entry[key] = value
    dumped: str = yaml.safe_dump(
        [entry], sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
    )
    return dumped
