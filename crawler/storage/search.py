"""Search: full-text search of the stored articles (FTS5 on SQLite, a GIN index
on PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import column, func, select, text

from crawler.storage.articles import _article_query, _stored_article
from crawler.storage.engine import StoreBase
from crawler.storage.models import Article, Source
from crawler.storage.records import StoredArticle

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# C0 controls and DEL: no database string or full-text query takes a NUL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class SearchQueries(StoreBase):
    """The full-text search of articles."""

    # -- web UI queries --------------------------------------------------------
    # Read-only, for the status pages (crawler/faces/web/) and /metrics
    # (crawler/orchestration/metrics.py). Rows are plain dicts with the keys each docstring names.

    def search_articles(self, terms: Sequence[str], limit: int = 50) -> list[dict[str, Any]]:
        """Articles whose title or body holds every one of ``terms`` (each a word or
        a phrase of whole words, any case), newest first: ``id``, ``url``, ``title``,
        ``body``, ``source``, ``published_at``, ``fetched_at``.

        The terms go to the database as data, never as query syntax, so nothing a
        user types is an operator or a syntax error. Uses the full-text index of
        migration 0006 (FTS5 on SQLite, a GIN index on PostgreSQL). Control
        characters count as spaces: neither database takes a NUL in a string.
        """
        terms = _clean(terms)
        if not terms:
            return []
        with self._session() as session:
            condition = _index_condition(session, terms, every=True)
            rows = session.execute(
                select(
                    Article.id,
                    Article.url,
                    Article.title,
                    Article.body,
                    func.coalesce(Source.name, "").label("source"),
                    Article.published_at,
                    Article.fetched_at,
                )
                .outerjoin(Source, Source.id == Article.source_id)
                .where(condition)
                .order_by(
                    func.coalesce(Article.published_at, Article.fetched_at).desc(),
                    Article.id.desc(),
                )
                .limit(limit)
            )
            return [row._asdict() for row in rows]

    def articles_with_any_word(
        self, words: Sequence[str], limit: int, *, skip_newest: int = 0
    ) -> list[StoredArticle]:
        """At most ``limit`` articles whose title or body holds one of ``words`` (or
        phrases) by the full-text index, the most recently fetched first, leaving out
        the ``skip_newest`` most recently fetched articles of the store (those
        `newest_articles` gave): the candidates of a query search beyond its bounded
        scan. A candidate is only that: the caller evaluates the query on it."""
        words = _clean(words)
        if not words:
            return []
        with self._session() as session:
            condition = _index_condition(session, words, every=False)
            query = _article_query().where(condition)
            if skip_newest:
                newest = (
                    select(Article.id)
                    .order_by(Article.fetched_at.desc(), Article.id.desc())
                    .limit(skip_newest)
                )
                query = query.where(Article.id.not_in(newest))
            query = query.order_by(Article.fetched_at.desc(), Article.id.desc()).limit(limit)
            return [_stored_article(row) for row in session.execute(query)]


def _clean(terms: Sequence[str]) -> list[str]:
    """``terms`` with control characters as spaces (neither database takes a NUL in a
    string) and runs of spaces as one; empty ones dropped."""
    cleaned = (" ".join(CONTROL_CHARACTERS.sub(" ", term).split()) for term in terms)
    return [term for term in cleaned if term]


def _index_condition(session: Session, terms: Sequence[str], *, every: bool) -> Any:
    """The full-text index's condition for articles holding every one of ``terms``
    (or, without ``every``, any one), each a word or a phrase, passed as data."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # An FTS5 string is a phrase; a doubled quote is a quote inside it.
        joiner = " " if every else " OR "
        expression = joiner.join('"' + term.replace('"', '""') + '"' for term in terms)
        hits = (
            text("SELECT rowid FROM articles_fts WHERE articles_fts MATCH :expression")
            .bindparams(expression=expression)
            .columns(column("rowid"))
        )
        return Article.id.in_(hits)
    if dialect == "postgresql":
        # The very expression of the index, or PostgreSQL will not use it.
        joiner = " && " if every else " || "
        wanted = joiner.join(f"phraseto_tsquery('simple', :term{n})" for n in range(len(terms)))
        return text(
            f"to_tsvector('simple', articles.title || ' ' || articles.body) @@ ({wanted})"
        ).bindparams(**{f"term{n}": term for n, term in enumerate(terms)})
    raise NotImplementedError(f"no search on {dialect}")
