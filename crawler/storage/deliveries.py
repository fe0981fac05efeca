"""Deliveries and the ledger: what each recipient has yet to get, the digests and
alerts created, who is sending them, and what was sent."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    and_,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crawler.domain.items import EMAIL_CHANNEL
from crawler.storage.articles import _URL_BATCH, _article_query, _stored_article
from crawler.storage.feedback import FeedbackQueries, not_muted
from crawler.storage.models import Article, Delivery, DeliveryItem, Match, utcnow
from crawler.storage.records import (
    DeliveryRecord,
    PendingItem,
    StoredArticle,
)

if TYPE_CHECKING:
    from sqlalchemy import CursorResult


def make_message_id(
    recipient: str,
    items: Iterable[tuple[int, int]],
    domain: str,
    channel: str = EMAIL_CHANNEL,
) -> str:
    """A Message-ID that is the same whenever the same items (article, revision) go
    to the same person on the same channel (an email's keeps the form it always had)."""
    keys = ",".join(f"{article}.{revision}" for article, revision in sorted(items))
    to = recipient.lower() if channel == EMAIL_CHANNEL else f"{recipient.lower()}|{channel}"
    digest = hashlib.sha256(f"{to}|{keys}".encode()).hexdigest()[:32]
    return f"<digest.{digest}@{domain}>"


class DeliveryQueries(FeedbackQueries):
    """The queries on deliveries (digests and alerts) and the items they hold."""

    # -- digests ---------------------------------------------------------------

    def pending_items(
        self,
        recipient: str,
        rules: Sequence[str],
        *,
        with_bodies: bool = True,
        channel: str = EMAIL_CHANNEL,
        now: datetime | None = None,
    ) -> list[PendingItem]:
        """Matched articles (for the given rules) that ``recipient`` has yet to get on
        ``channel`` (each channel keeps its own ledger).

        An article is pending until a digest to the recipient holds its latest
        notable revision, unless the recipient already got its story through
        another copy (a syndicated wire story is delivered once). A story the
        recipient muted, and a rule they paused (until ``now`` passes the pause) or
        unsubscribed from, are never pending for them. Without ``with_bodies`` each
        body is "" (``article_bodies`` reads the ones needed).
        """
        held = {hold.rule for hold in self.held_rules(recipient, now or utcnow())}
        rules = [rule for rule in rules if rule not in held]
        mine = and_(DeliveryItem.recipient == recipient, DeliveryItem.channel == channel)
        has_this_revision = exists().where(
            mine,
            DeliveryItem.article_id == Article.id,
            DeliveryItem.revision == Article.notify_revision,
        )
        had_it = exists().where(mine, DeliveryItem.article_id == Article.id)
        story_delivered = exists().where(
            mine, DeliveryItem.story_id == Article.story_id, DeliveryItem.article_id != Article.id
        )
        with self._session() as session:
            rows = session.execute(
                _article_query(with_bodies)
                .add_columns(
                    Match.rule, Match.terms, Article.notify_revision.label("item_revision")
                )
                .join(Match, Match.article_id == Article.id)
                .where(
                    Match.rule.in_(list(rules)),
                    ~has_this_revision,
                    or_(had_it, ~story_delivered),
                    not_muted(recipient),
                )
                .order_by(Article.id, Match.id)
            ).all()
        return _group_matches(rows)

    def items_of(self, delivery: DeliveryRecord, *, with_bodies: bool = True) -> list[PendingItem]:
        """The articles of an existing delivery, at the revisions it holds, with
        all their matches (bodies "" without ``with_bodies``)."""
        with self._session() as session:
            rows = session.execute(
                _article_query(with_bodies)
                .add_columns(Match.rule, Match.terms, DeliveryItem.revision.label("item_revision"))
                .join(Match, Match.article_id == Article.id)
                .join(DeliveryItem, DeliveryItem.article_id == Article.id)
                .where(DeliveryItem.delivery_id == delivery.id)
                .order_by(Article.id, Match.id)
            ).all()
        return _group_matches(rows)

    def article_bodies(self, article_ids: Sequence[int]) -> dict[int, str]:
        """The bodies of these articles, by id (a digest reads only those it shows)."""
        bodies: dict[int, str] = {}
        with self._session() as session:
            for start in range(0, len(article_ids), _URL_BATCH):
                batch = list(article_ids[start : start + _URL_BATCH])
                bodies.update(
                    session.execute(
                        select(Article.id, Article.body).where(Article.id.in_(batch))
                    ).all()
                )
        return bodies

    def unsent_deliveries(
        self, recipient: str, channel: str = EMAIL_CHANNEL
    ) -> list[DeliveryRecord]:
        """Deliveries to ``recipient`` on ``channel`` that were created but never
        accepted, oldest first."""
        with self._session() as session:
            deliveries = session.scalars(
                select(Delivery)
                .where(
                    Delivery.recipient == recipient,
                    Delivery.channel == channel,
                    Delivery.sent_at.is_(None),
                    Delivery.failed_at.is_(None),
                )
                .order_by(Delivery.id)
            ).all()
            return [_delivery_record(session, d) for d in deliveries]

    def create_delivery(
        self,
        recipient: str,
        items: Sequence[PendingItem],
        domain: str,
        kind: str = "digest",
        *,
        claim: tuple[str, datetime] | None = None,
        channel: str = EMAIL_CHANNEL,
    ) -> DeliveryRecord | None:
        """Create a delivery holding ``items``, before anything is sent.

        The items are claimed in the same transaction; if another process claimed
        any of them first, nothing is created and None is returned. ``claim``
        (run, until) makes the new delivery that run's to send (see claim_delivery).
        """
        keys = [(item.article.id, item.revision) for item in items]
        message_id = make_message_id(recipient, keys, domain, channel)
        owner, until = claim if claim is not None else (None, None)
        try:
            with self._session.begin() as session:
                delivery = Delivery(
                    recipient=recipient,
                    channel=channel,
                    kind=kind,
                    message_id=message_id,
                    attempts=0,
                    created_at=utcnow(),
                    claimed_by=owner,
                    claimed_until=until,
                )
                session.add(delivery)
                session.flush()
                session.execute(
                    insert(DeliveryItem),
                    [
                        {
                            "delivery_id": delivery.id,
                            "recipient": recipient,
                            "channel": channel,
                            "article_id": item.article.id,
                            "revision": item.revision,
                            "story_id": item.article.story_id,
                        }
                        for item in items
                    ],
                )
                return _delivery_record(session, delivery)
        except IntegrityError:
            return None

    def claim_delivery(
        self,
        delivery_id: int,
        owner: str,
        until: datetime,
        *,
        now: datetime,
        replacing: str | None = None,
    ) -> bool:
        """Make an unsent delivery ``owner``'s to send until ``until``; False when
        it was sent or refused for good meanwhile, or another run holds it.

        A claim is free when nobody holds it, its lease ran out, or it is held by
        ``replacing`` (a run the caller knows is dead). One statement: of two runs
        claiming at once, exactly one wins.
        """
        free = or_(Delivery.claimed_by.is_(None), Delivery.claimed_until < now)
        if replacing is not None:
            free = or_(free, Delivery.claimed_by == replacing)
        with self._session.begin() as session:
            claimed = cast(
                "CursorResult[Any]",
                session.execute(
                    update(Delivery)
                    .where(
                        Delivery.id == delivery_id,
                        Delivery.sent_at.is_(None),
                        Delivery.failed_at.is_(None),
                        free,
                    )
                    .values(claimed_by=owner, claimed_until=until)
                ),
            )
            return claimed.rowcount == 1

    def mark_sent(
        self, delivery_id: int, at: datetime | None = None, size: int | None = None
    ) -> None:
        """Record that the server accepted the delivery (``size`` bytes, when
        measured); it is never sent again."""
        with self._session.begin() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(
                    sent_at=at or utcnow(),
                    size_bytes=size,
                    attempts=Delivery.attempts + 1,
                    last_error=None,
                    claimed_by=None,
                    claimed_until=None,
                )
            )

    def record_send_failure(self, delivery_id: int, error: str) -> None:
        """Count a failed attempt and release the claim; the delivery stays pending
        for the next run."""
        with self._session.begin() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(
                    attempts=Delivery.attempts + 1,
                    last_error=error[:2000],
                    claimed_by=None,
                    claimed_until=None,
                )
            )

    def mark_failed(self, delivery_id: int, error: str) -> None:
        """Record that the channel refused the delivery for good: it is kept, with its
        error, and never sent again (its items stay delivered, so nothing is resent)."""
        with self._session.begin() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(
                    failed_at=utcnow(),
                    attempts=Delivery.attempts + 1,
                    last_error=error[:2000],
                    claimed_by=None,
                    claimed_until=None,
                )
            )

    def release_delivery(self, delivery_id: int, owner: str) -> None:
        """Give up ``owner``'s claim without counting an attempt (nothing was tried)."""
        with self._session.begin() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.claimed_by == owner)
                .values(claimed_by=None, claimed_until=None)
            )

    def count_sent(
        self, recipient: str, kind: str, since: datetime, channel: str = EMAIL_CHANNEL
    ) -> tuple[int, datetime | None]:
        """How many ``kind`` messages ``recipient`` was sent on ``channel`` since
        ``since``, and the time of the oldest of them."""
        with self._session() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(Delivery.sent_at)).where(
                    Delivery.recipient == recipient,
                    Delivery.channel == channel,
                    Delivery.kind == kind,
                    Delivery.sent_at >= since,
                )
            ).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return count, oldest

    def count_sent_on_channel(self, channel: str, since: datetime) -> tuple[int, datetime | None]:
        """How many messages went out on ``channel`` after ``since`` (every recipient
        and kind: one chat room is one channel), and the time of the oldest of them.
        After, not at: a throttle that waits until the oldest is a window old may send."""
        with self._session() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(Delivery.sent_at)).where(
                    Delivery.channel == channel, Delivery.sent_at > since
                )
            ).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return count, oldest

    def last_sent_on_channels(
        self, channels: Sequence[str], since: datetime
    ) -> dict[tuple[str, str], datetime]:
        """When each (recipient, channel) of ``channels`` last got a message, for
        those that got one after ``since``."""
        if not channels:
            return {}
        with self._session() as session:
            rows = session.execute(
                select(Delivery.recipient, Delivery.channel, func.max(Delivery.sent_at))
                .where(Delivery.channel.in_(list(channels)), Delivery.sent_at > since)
                .group_by(Delivery.recipient, Delivery.channel)
            ).all()
        # An aggregate of a UTC column comes back naive from SQLite.
        return {
            (recipient, channel): last if last.tzinfo else last.replace(tzinfo=UTC)
            for recipient, channel, last in rows
            if last is not None  # (the WHERE keeps NULL out; for the type checker)
        }

    def deliveries(self) -> list[DeliveryRecord]:
        """Every delivery, oldest first."""
        with self._session() as session:
            rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
            return [_delivery_record(session, d) for d in rows]


def _group_matches(rows: Sequence[Any]) -> list[PendingItem]:
    grouped: dict[int, tuple[StoredArticle, int, list[tuple[str, tuple[str, ...]]]]] = {}
    for row in rows:
        entry = grouped.setdefault(row.id, (_stored_article(row), row.item_revision, []))
        entry[2].append((row.rule, tuple(row.terms or ())))
    return [
        PendingItem(article, tuple(rules), revision)
        for article, revision, rules in grouped.values()
    ]


def _delivery_record(session: Session, delivery: Delivery) -> DeliveryRecord:
    article_ids = session.scalars(
        select(DeliveryItem.article_id)
        .where(DeliveryItem.delivery_id == delivery.id)
        .order_by(DeliveryItem.article_id)
    ).all()
    return DeliveryRecord(
        id=delivery.id,
        recipient=delivery.recipient,
        kind=delivery.kind,
        message_id=delivery.message_id,
        created_at=delivery.created_at,
        sent_at=delivery.sent_at,
        attempts=delivery.attempts,
        article_ids=tuple(article_ids),
        claimed_by=delivery.claimed_by,
        claimed_until=delivery.claimed_until,
        channel=delivery.channel,
    )
