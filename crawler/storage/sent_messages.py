"""Sent messages: each email delivery's HTML and text bodies as they went out, kept
compressed for the "view in browser" link and the delivery history, and purged
with the article bodies."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, select

from crawler.storage.engine import StoreBase, _insert_ignoring_conflict
from crawler.storage.models import Delivery, SentMessage

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import CursorResult


@dataclass(frozen=True)
class SentCopy:
    """A delivery as it was sent: to whom, when, and its two bodies."""

    delivery_id: int
    recipient: str
    kind: str
    sent_at: datetime
    html: str
    text: str


class SentMessageQueries(StoreBase):
    def keep_sent_message(self, delivery_id: int, html: str, text: str, at: datetime) -> None:
        """Keep the bodies of a delivery just sent; a copy kept before (the same
        message resent after a crash) stays as it is."""
        values = {
            "delivery_id": delivery_id,
            "html": zlib.compress(html.encode("utf-8")),
            "text": zlib.compress(text.encode("utf-8")),
            "sent_at": at,
        }
        with self._session.begin() as session:
            session.execute(_insert_ignoring_conflict(session, SentMessage, values))

    def sent_copy(self, delivery_id: int) -> SentCopy | None:
        """The delivery as it was sent; None when it was not kept (sent before copies
        were kept, not sent by email, or purged)."""
        query = (
            select(Delivery.recipient, Delivery.kind, SentMessage)
            .join(SentMessage, SentMessage.delivery_id == Delivery.id)
            .where(Delivery.id == delivery_id)
        )
        with self._session() as session:
            row = session.execute(query).first()
            if row is None:
                return None
            recipient, kind, kept = row
            return SentCopy(
                delivery_id=delivery_id,
                recipient=recipient,
                kind=kind,
                sent_at=kept.sent_at,
                html=zlib.decompress(kept.html).decode("utf-8"),
                text=zlib.decompress(kept.text).decode("utf-8"),
            )

    def purge_sent_messages(self, before: datetime) -> int:
        """Retention: forget the copies of messages sent before ``before``."""
        with self._session.begin() as session:
            result = session.execute(delete(SentMessage).where(SentMessage.sent_at < before))
            return cast("CursorResult[Any]", result).rowcount
