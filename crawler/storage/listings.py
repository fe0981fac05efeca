"""Listings: read-only, keyset-paginated pages of matches, stories, sources and
deliveries, for the JSON API (crawler/faces/web/api.py).

Each listing is ordered newest first on (a time, an id) and continues after the
key of the last row it gave, never by offset: a page costs the same however far
in the listing it is, and rows stored while a client walks the pages neither
repeat nor shift it. A page asks for one row more than it returns, to know whether
there is a next one. Rows are plain dicts with the keys each docstring names; times
are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, func, or_, select

from crawler.storage.engine import StoreBase
from crawler.storage.models import (
    DELIVERY_HISTORY_COLUMNS,
    Article,
    Delivery,
    DeliveryItem,
    Match,
    Source,
)

Key = TypeVar("Key")
# Where a time-ordered listing goes on: after the row with this (time, id).
TimeKey = tuple[datetime, int]
_LATEST = datetime.max.replace(tzinfo=UTC)
# Ids are INTEGER columns: 32 bits on PostgreSQL, which refuses a larger number.
MAX_ROW_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ListingPage(Generic[Key]):
    """One page of a listing; ``next_key`` (the last row's key) when more follow."""

    rows: list[dict[str, Any]]
    next_key: Key | None


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """``since`` (inclusive) and ``until`` (exclusive); either may be open."""

    since: datetime | None = None
    until: datetime | None = None


def _story_of(article: Any = Article) -> Any:
    # Articles stored before stories existed (migration 0003) have none: each is its own.
    return func.coalesce(article.story_id, article.id)


def _in_stories(stories: Any) -> Any:
    """Articles of ``stories`` (ids, or a query of them): written so that each side
    can use an index (``ix_articles_story_id``, the primary key), which a condition
    on ``coalesce(story_id, id)`` cannot."""
    return or_(
        Article.story_id.in_(stories),
        and_(Article.story_id.is_(None), Article.id.in_(stories)),
    )


def _within(column: Any, window: TimeWindow) -> list[Any]:
    conditions = []
    if window.since is not None:
        conditions.append(column >= window.since)
    if window.until is not None:
        conditions.append(column < window.until)
    return conditions


def _before(time: Any, id_: Any, key: TimeKey | None) -> list[Any]:
    """Rows after ``key`` in newest-first (time, id) order."""
    if key is None:
        return []
    moment, last_id = key
    return [or_(time < moment, and_(time == moment, id_ < last_id))]


def _page(rows: list[dict[str, Any]], limit: int, key: str) -> ListingPage[TimeKey]:
    """The first ``limit`` of ``rows`` (fetched ``limit`` + 1) and the key to go on from."""
    if len(rows) <= limit:
        return ListingPage(rows, None)
    last = rows[limit - 1]
    return ListingPage(rows[:limit], (last[key], last["id"]))


class ListingQueries(StoreBase):
    """The paginated, read-only listings of the JSON API."""

    def match_page(
        self,
        *,
        rules: Sequence[str] = (),
        window: TimeWindow | None = None,
        after: TimeKey | None = None,
        limit: int = 50,
    ) -> ListingPage[TimeKey]:
        """Rule matches (of ``rules``, if any are given), newest first: ``id``, ``rule``,
        ``terms``, ``matched_at`` and the article's ``article_id``, ``url``, ``title``,
        ``source``, ``published_at``, ``story_id``."""
        window = window or TimeWindow()
        query = (
            select(
                Match.id,
                Match.rule,
                Match.terms,
                Match.matched_at,
                Article.id.label("article_id"),
                Article.url,
                Article.title,
                func.coalesce(Source.name, "").label("source"),
                Article.published_at,
                _story_of().label("story_id"),
            )
            .join(Article, Article.id == Match.article_id)
            .outerjoin(Source, Source.id == Article.source_id)
            .where(
                *([Match.rule.in_(rules)] if rules else []),
                *_within(Match.matched_at, window),
                *_before(Match.matched_at, Match.id, after),
            )
            .order_by(Match.matched_at.desc(), Match.id.desc())
            .limit(limit + 1)
        )
        with self._session() as session:
            rows = [row._asdict() for row in session.execute(query)]
        return _page(rows, limit, "matched_at")

    def story_page(
        self,
        *,
        rules: Sequence[str] = (),
        window: TimeWindow | None = None,
        after: TimeKey | None = None,
        limit: int = 50,
    ) -> ListingPage[TimeKey]:
        """Stories a rule (one of ``rules``, if given) matched, by the time a copy was
        last fetched, newest first; ``window`` bounds that time. Each: ``id`` (the
        story), ``first_seen``, ``last_seen``, ``rules`` (every rule that matched a
        copy, sorted) and ``articles`` (see ``story_articles``)."""
        window = window or TimeWindow()
        matched = select(_story_of()).join(Match, Match.article_id == Article.id)
        if rules:
            matched = matched.where(Match.rule.in_(rules))
        story = _story_of().label("id")
        last_seen = func.max(Article.fetched_at)
        recent = []
        if window.since is not None:
            # A story last seen since then has a copy fetched since then (an index look-up).
            recent = [_in_stories(select(_story_of()).where(Article.fetched_at >= window.since))]
        query = (
            select(
                story,
                func.min(Article.fetched_at).label("first_seen"),
                last_seen.label("last_seen"),
            )
            .where(_in_stories(matched), *recent)
            .group_by(_story_of())
            .having(*_within(last_seen, window), *_before(last_seen, _story_of(), after))
            .order_by(last_seen.desc(), _story_of().desc())
            .limit(limit + 1)
        )
        with self._session() as session:
            stories = [row._asdict() for row in session.execute(query)]
        page = _page(stories, limit, "last_seen")
        self._add_members(page.rows)
        return page

    def story(self, story_id: int) -> dict[str, Any] | None:
        """One story as ``story_page`` gives it (matched or not), or None."""
        if not 0 < story_id <= MAX_ROW_ID:
            return None
        story: dict[str, Any] = {"id": story_id}
        self._add_members([story])
        return story if story["articles"] else None

    def _add_members(self, stories: list[dict[str, Any]]) -> None:
        """Give each story its ``articles`` (``id``, ``url``, ``title``, ``source``,
        ``published_at``, earliest published first) and ``rules``; and, when it has
        none yet, ``first_seen`` and ``last_seen``."""
        ids = [story["id"] for story in stories]
        if not ids:
            return
        members = (
            select(
                _story_of().label("story_id"),
                Article.id,
                Article.url,
                Article.title,
                func.coalesce(Source.name, "").label("source"),
                Article.published_at,
                Article.fetched_at,
            )
            .outerjoin(Source, Source.id == Article.source_id)
            .where(_in_stories(ids))
            .order_by(Article.id)
        )
        with self._session() as session:
            articles = [row._asdict() for row in session.execute(members)]
            rules = session.execute(
                select(Match.article_id, Match.rule).where(
                    Match.article_id.in_([article["id"] for article in articles])
                )
            ).all()
        rules_of: dict[int, set[str]] = {}
        for article_id, rule in rules:
            rules_of.setdefault(article_id, set()).add(rule)
        by_story: dict[int, list[dict[str, Any]]] = {story_id: [] for story_id in ids}
        for article in articles:
            by_story[article.pop("story_id")].append(article)
        for story in stories:
            copies = by_story[story["id"]]
            # Undated copies last, then in the order they were stored.
            copies.sort(key=lambda a: (a["published_at"] or _LATEST, a["id"]))
            fetched = [article.pop("fetched_at") for article in copies]
            if fetched and "first_seen" not in story:
                story["first_seen"], story["last_seen"] = min(fetched), max(fetched)
            story["articles"] = copies
            story["rules"] = sorted({r for a in copies for r in rules_of.get(a["id"], ())})

    def source_page(
        self, names: Sequence[str], *, after: str | None = None, limit: int = 50
    ) -> ListingPage[str]:
        """The sources named in ``names``, by name, after ``after``: ``name``, ``kind``,
        ``url``, ``discovered_url``, ``last_polled_at``, ``last_success_at``,
        ``consecutive_failures``, ``last_error``, ``articles`` (stored from it now).
        A configured source not polled yet may have no row: it is not listed."""
        page = (
            select(Source.id)
            .where(Source.name.in_(names), *([Source.name > after] if after is not None else []))
            .order_by(Source.name)
            .limit(limit + 1)
            .subquery()
        )
        counts = (
            select(Article.source_id, func.count().label("articles"))
            .where(Article.source_id.in_(select(page.c.id)))
            .group_by(Article.source_id)
            .subquery()
        )
        query = (
            select(
                Source.name,
                Source.kind,
                Source.url,
                Source.discovered_url,
                Source.last_polled_at,
                Source.last_success_at,
                Source.consecutive_failures,
                Source.last_error,
                func.coalesce(counts.c.articles, 0).label("articles"),
            )
            .join(page, page.c.id == Source.id)
            .outerjoin(counts, counts.c.source_id == Source.id)
            .order_by(Source.name)
        )
        with self._session() as session:
            rows = [row._asdict() for row in session.execute(query)]
        if len(rows) <= limit:
            return ListingPage(rows, None)
        return ListingPage(rows[:limit], rows[limit - 1]["name"])

    def delivery_page(
        self,
        *,
        recipient: str | None = None,
        channel: str | None = None,
        kind: str | None = None,
        window: TimeWindow | None = None,
        after: TimeKey | None = None,
        limit: int = 50,
    ) -> ListingPage[TimeKey]:
        """The delivery ledger, newest first: ``id``, ``recipient``, ``channel``,
        ``kind``, ``created_at``, ``sent_at``, ``failed_at``, ``attempts``,
        ``last_error``, ``articles`` (items still stored)."""
        articles = (
            select(func.count())
            .where(DeliveryItem.delivery_id == Delivery.id)
            .correlate(Delivery)
            .scalar_subquery()
        )
        filters = [
            column == value
            for column, value in (
                (Delivery.recipient, recipient),
                (Delivery.channel, channel),
                (Delivery.kind, kind),
            )
            if value is not None
        ]
        window = window or TimeWindow()
        query = (
            select(
                *DELIVERY_HISTORY_COLUMNS,
                articles.label("articles"),
            )
            .where(
                *filters,
                *_within(Delivery.created_at, window),
                *_before(Delivery.created_at, Delivery.id, after),
            )
            .order_by(Delivery.created_at.desc(), Delivery.id.desc())
            .limit(limit + 1)
        )
        with self._session() as session:
            rows = [row._asdict() for row in session.execute(query)]
        return _page(rows, limit, "created_at")
