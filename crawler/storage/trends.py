"""Counts per UTC day for the status page's sparklines: new articles of every source
and matches of every rule, each in one grouped query however many sources or
rules there are (a status page of 10,000 sources makes two queries, not 10,000).

Days are bucketed in SQL, as UTC calendar days in both dialects: SQLite keeps
naive UTC text (``date()`` reads its day), PostgreSQL an aware timestamp (read in
UTC, whatever the session's zone)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from crawler.storage.engine import StoreBase
from crawler.storage.models import Article, ArticleRevision, Match, Source

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session


class TrendQueries(StoreBase):
    """Per-day counts over a window, grouped in the database."""

    def new_articles_per_source_day(self, since: datetime) -> dict[str, dict[date, int]]:
        """For each source with any, how many of its articles were first seen on
        each UTC day since ``since`` (days without any left out). First seen: the
        fetch of an article's first revision, as on a source's own page
        (``new_articles_per_day``)."""
        # Only a revised article (rare) looks up its first revision's fetch: the
        # others count by their own row, grouped without a join.
        first_revision = (
            select(func.min(ArticleRevision.fetched_at))
            .where(ArticleRevision.article_id == Article.id)
            .scalar_subquery()
        )
        first_seen = case(
            (Article.revision > 1, func.coalesce(first_revision, Article.fetched_at)),
            else_=Article.fetched_at,
        )
        with self._session() as session:
            day = _utc_day(session, first_seen)
            counted = (
                select(Article.source_id, day.label("day"), func.count().label("count"))
                # First seen is never after the last fetch: the index narrows it.
                .where(Article.fetched_at >= since, first_seen >= since)
                .group_by(Article.source_id, day)
                .subquery()
            )
            # Names joined to the counts, not to every article.
            rows = session.execute(
                select(Source.name, counted.c.day, counted.c.count).join(
                    Source, Source.id == counted.c.source_id
                )
            ).all()
        return _by_name_and_day(rows)

    def matches_per_rule_day(self, since: datetime) -> dict[str, dict[date, int]]:
        """For each rule with any, how many matches it made on each UTC day since
        ``since`` (days without any left out)."""
        with self._session() as session:
            day = _utc_day(session, Match.matched_at)
            rows = session.execute(
                select(Match.rule, day, func.count())
                .where(Match.matched_at >= since)
                .group_by(Match.rule, day)
            ).all()
        return _by_name_and_day(rows)


def _utc_day(session: Session, moment: Any) -> ColumnElement[str]:
    """``moment``'s UTC calendar day as ``YYYY-MM-DD`` text, in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", moment), "YYYY-MM-DD")
    return func.date(moment)


def _by_name_and_day(rows: Any) -> dict[str, dict[date, int]]:
    counts: dict[str, dict[date, int]] = {}
    for name, day, count in rows:
        counts.setdefault(name, {})[date.fromisoformat(str(day))] = count
    return counts
