"""The ledger as readers and the status pages see it: a reader's private feed read
back from the ledger, the stories a reader was sent (for "follow-up to"), and the
delivery history and unsent counts (each channel's state is in channel_states.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    and_,
    exists,
    func,
    select,
)

from crawler.storage.articles import _article_query, _stored_article
from crawler.storage.engine import StoreBase
from crawler.storage.models import (
    DELIVERY_HISTORY_COLUMNS,
    Article,
    Delivery,
    DeliveryItem,
    Match,
)
from crawler.storage.records import FeedItem, SentStory

if TYPE_CHECKING:
    from datetime import datetime

# A reader's history is read no further back than their newest stories this many
# (a follow-up is checked against them): a bound on a digest's work.
MAX_SENT_STORIES = 2000


class LedgerViewQueries(StoreBase):
    """Read-only queries on the ledger: a reader's history and feed, the delivery
    history."""

    # -- a reader's history --------------------------------------------------------

    def sent_stories(
        self, recipient: str, channel: str, since: datetime, limit: int = MAX_SENT_STORIES
    ) -> list[SentStory]:
        """The stories ``recipient`` was sent on ``channel`` since ``since``, newest
        first, each once: its key (the story id, or minus the article id of an
        article on its own), when it was first sent, and one copy's body."""
        story = func.coalesce(DeliveryItem.story_id, -DeliveryItem.article_id).label("story")
        first = (
            select(
                story,
                func.min(Delivery.sent_at).label("sent_at"),
                func.min(DeliveryItem.article_id).label("article_id"),
            )
            .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
            .where(
                DeliveryItem.recipient == recipient,
                DeliveryItem.channel == channel,
                Delivery.sent_at.is_not(None),
                Delivery.sent_at >= since,
            )
            .group_by(story)
            .order_by(func.min(Delivery.sent_at).desc())
            .limit(limit)
            .subquery()
        )
        query = select(first.c.story, first.c.sent_at, Article.body).join(
            Article, Article.id == first.c.article_id
        )
        with self._session() as session:
            rows = session.execute(query).all()
        return sorted(
            (SentStory(story=key, sent_at=sent_at, body=body or "") for key, sent_at, body in rows),
            key=lambda sent: sent.sent_at,
            reverse=True,
        )

    # -- private feeds -----------------------------------------------------------

    def feed_items(
        self, recipient: str, channel: str, rules: Sequence[str], stories: int
    ) -> list[FeedItem]:
        """What ``recipient`` was delivered on ``channel`` (a feed: its ledger is its
        content) that matched one of ``rules``, for the ``stories`` stories delivered
        last; each article at the newest revision delivered, with that delivery's
        time, and its matches of ``rules`` only. Bodies are "" (``article_bodies``)."""
        story = func.coalesce(DeliveryItem.story_id, -DeliveryItem.article_id)
        delivered = and_(
            DeliveryItem.recipient == recipient,
            DeliveryItem.channel == channel,
            Delivery.sent_at.is_not(None),
        )
        matched = exists().where(
            Match.article_id == DeliveryItem.article_id, Match.rule.in_(list(rules))
        )
        last = func.max(Delivery.sent_at)
        newest = (
            select(story.label("story"))
            .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
            .where(delivered, matched)
            .group_by(story)
            .order_by(last.desc(), story.desc())
            .limit(stories)
        )
        with self._session() as session:
            keys = list(session.scalars(newest))
            if not keys:
                return []
            rows = session.execute(
                _article_query(with_bodies=False)
                .add_columns(
                    Match.rule,
                    Match.terms,
                    DeliveryItem.revision.label("item_revision"),
                    story.label("story"),
                    Delivery.sent_at.label("delivered"),
                )
                .join(DeliveryItem, DeliveryItem.article_id == Article.id)
                .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
                .join(Match, Match.article_id == Article.id)
                .where(delivered, story.in_(keys), Match.rule.in_(list(rules)))
                .order_by(Article.id, Match.id)
            ).all()
        return _feed_items(rows)

    # -- web UI queries --------------------------------------------------------
    # Read-only, for the status pages (crawler/faces/web/) and /metrics
    # (crawler/orchestration/metrics.py). Rows are plain dicts with the keys each docstring names.

    def delivery_history(self, limit: int = 200) -> list[dict[str, Any]]:
        """The latest ``limit`` deliveries, newest first: ``id``, ``recipient``,
        ``channel``, ``kind``, ``created_at``, ``sent_at``, ``failed_at``, ``attempts``,
        ``last_error``, ``articles`` (items still stored)."""
        counts = (
            select(DeliveryItem.delivery_id, func.count().label("articles"))
            .group_by(DeliveryItem.delivery_id)
            .subquery()
        )
        query = (
            select(
                *DELIVERY_HISTORY_COLUMNS,
                func.coalesce(counts.c.articles, 0).label("articles"),
            )
            .outerjoin(counts, counts.c.delivery_id == Delivery.id)
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
        with self._session() as session:
            return [row._asdict() for row in session.execute(query)]

    def unsent_delivery_counts(self) -> dict[str, int]:
        """Deliveries created but not accepted yet, per kind (digest, alert)."""
        with self._session() as session:
            rows = session.execute(
                select(Delivery.kind, func.count())
                .where(Delivery.sent_at.is_(None), Delivery.failed_at.is_(None))
                .group_by(Delivery.kind)
            )
            return {kind: count for kind, count in rows}


def _feed_items(rows: Sequence[Any]) -> list[FeedItem]:
    """One item per article: its newest revision and delivery, each rule once."""
    grouped: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = grouped.setdefault(
            row.id,
            {"article": _stored_article(row), "rules": {}, "story": row.story,
             "revision": row.item_revision, "delivered": row.delivered},
        )  # fmt: skip
        entry["rules"].setdefault(row.rule, tuple(row.terms or ()))
        if (row.item_revision, row.delivered) > (entry["revision"], entry["delivered"]):
            entry["revision"], entry["delivered"] = row.item_revision, row.delivered
    return [
        FeedItem(
            article=entry["article"],
            rules=tuple(entry["rules"].items()),
            story=entry["story"],
            revision=entry["revision"],
            delivered=entry["delivered"],
        )
        for entry in grouped.values()
    ]
