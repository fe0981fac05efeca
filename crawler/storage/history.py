"""A reader's history: the stories they were sent, with a body each, for telling a
new story that continues one of them (alerts/sections.py, "follow-up to")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from crawler.storage.engine import StoreBase
from crawler.storage.models import Article, Delivery, DeliveryItem
from crawler.storage.records import SentStory

if TYPE_CHECKING:
    from datetime import datetime

# The newest stories read, at most: a bound on the work of a digest, whatever the
# reader's history holds.
MAX_SENT_STORIES = 2000


class HistoryQueries(StoreBase):
    """What a recipient was sent."""

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
