"""Search: full-text search of the stored articles (FTS5 on SQLite, a GIN index
on PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import column, func, select, text

from crawler.storage.engine import StoreBase
from crawler.storage.models import Article, Source

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
        terms = [
            term
            for term in (" ".join(CONTROL_CHARACTERS.sub(" ", t).split()) for t in terms)
            if term
        ]
        if not terms:
            return []
        with self._session() as session:
            dialect = session.get_bind().dialect.name
            if dialect == "sqlite":
                # An FTS5 string is a phrase; a doubled quote is a quote inside it.
                expression = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
                hits = (
                    text("SELECT rowid FROM articles_fts WHERE articles_fts MATCH :expression")
                    .bindparams(expression=expression)
                    .columns(column("rowid"))
                )
                condition: Any = Article.id.in_(hits)
            elif dialect == "postgresql":
                # The very expression of the index, or PostgreSQL will not use it.
                wanted = " && ".join(
                    f"phraseto_tsquery('simple', :term{n})" for n in range(len(terms))
                )
                condition = text(
                    f"to_tsvector('simple', articles.title || ' ' || articles.body) @@ ({wanted})"
                ).bindparams(**{f"term{n}": term for n, term in enumerate(terms)})
            else:
                raise NotImplementedError(f"no search on {dialect}")
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
