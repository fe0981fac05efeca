"""Deliveries and the ledger: what each recipient has yet to get, the digests and
alerts created, who is sending them, and what was sent."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    and_,
    case,
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
    ChannelState,
    DeliveryRecord,
    FeedItem,
    PendingItem,
    StoredArticle,
)
from crawler.storage.undelivered import _undelivered_counts

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

# (recipient, channel) pairs per statement when counting what readers have waiting:
# each pair is one SELECT of a UNION ALL, and SQLite allows 500 of those.
_READER_BATCH = 200


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
        it was sent meanwhile or another run holds it.

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
                    .where(Delivery.id == delivery_id, Delivery.sent_at.is_(None), free)
                    .values(claimed_by=owner, claimed_until=until)
                ),
            )
            return claimed.rowcount == 1

    def mark_sent(self, delivery_id: int, at: datetime | None = None) -> None:
        """Record that the server accepted the delivery; it is never sent again."""
        with self._session.begin() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(
                    sent_at=at or utcnow(),
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

    def deliveries(self) -> list[DeliveryRecord]:
        """Every delivery, oldest first."""
        with self._session() as session:
            rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
            return [_delivery_record(session, d) for d in rows]

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
                Delivery.id,
                Delivery.recipient,
                Delivery.channel,
                Delivery.kind,
                Delivery.created_at,
                Delivery.sent_at,
                Delivery.failed_at,
                Delivery.attempts,
                Delivery.last_error,
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

    def channel_states(
        self, readers: Iterable[tuple[str, str, Sequence[str]]] = ()
    ) -> dict[str, ChannelState]:
        """How each channel stands (see ``ChannelState``): every channel in the ledger
        and every one ``readers`` names, by name.

        ``readers`` are (channel, recipient, rules): who reads what on which channel
        (from the configuration); they decide ``undelivered``, counted as
        ``pending_items`` finds it (the latest notable revision of a matched article,
        unless its story already reached the reader through another copy). The ledger
        figures are one GROUP BY each; ``undelivered`` takes one statement per set of
        rules and one per reader with new articles (see ``_undelivered_counts``).
        """
        waiting = and_(Delivery.sent_at.is_(None), Delivery.failed_at.is_(None))
        ledger = select(
            Delivery.channel,
            func.count(Delivery.sent_at).label("sent"),
            func.count(Delivery.failed_at).label("failed"),
            func.sum(case((waiting, 1), else_=0)).label("unsent"),
            func.sum(case((and_(waiting, Delivery.attempts > 0), 1), else_=0)).label("retrying"),
            func.max(Delivery.sent_at).label("last_sent_at"),
            func.max(Delivery.failed_at).label("last_failed_at"),
        ).group_by(Delivery.channel)
        unsent_articles = (
            select(Delivery.channel, func.count())
            .join(DeliveryItem, DeliveryItem.delivery_id == Delivery.id)
            .where(waiting)
            .group_by(Delivery.channel)
        )
        latest_errors = (
            select(func.max(Delivery.id))
            .where(Delivery.last_error.is_not(None))
            .group_by(Delivery.channel)
        )
        errors = select(
            Delivery.channel, Delivery.last_error, Delivery.failed_at, Delivery.created_at
        ).where(Delivery.id.in_(latest_errors))
        by_rules: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for channel, recipient, rules in readers:
            by_rules.setdefault(tuple(sorted(set(rules))), []).append((recipient, channel))
        states: dict[str, ChannelState] = {
            channel: ChannelState(channel) for pairs in by_rules.values() for _, channel in pairs
        }
        with self._session() as session:
            for row in session.execute(ledger):
                states[row.channel] = replace(
                    states.get(row.channel, ChannelState(row.channel)),
                    sent=row.sent,
                    failed=row.failed,
                    unsent=row.unsent or 0,
                    retrying=row.retrying or 0,
                    last_sent_at=_utc(row.last_sent_at),
                    last_failed_at=_utc(row.last_failed_at),
                )
            for channel, count in session.execute(unsent_articles):
                states[channel] = replace(states[channel], unsent_articles=count)
            for channel, error, failed_at, created_at in session.execute(errors):
                states[channel] = replace(
                    states[channel], last_error=error, last_error_at=_utc(failed_at or created_at)
                )
            for rules, pairs in by_rules.items():
                for start in range(0, len(pairs) if rules else 0, _READER_BATCH):
                    batch = pairs[start : start + _READER_BATCH]
                    for channel, count in _undelivered_counts(session, batch, rules).items():
                        state = states[channel]
                        states[channel] = replace(state, undelivered=state.undelivered + count)
        return states


def _group_matches(rows: Sequence[Any]) -> list[PendingItem]:
    grouped: dict[int, tuple[StoredArticle, int, list[tuple[str, tuple[str, ...]]]]] = {}
    for row in rows:
        entry = grouped.setdefault(row.id, (_stored_article(row), row.item_revision, []))
        entry[2].append((row.rule, tuple(row.terms or ())))
    return [
        PendingItem(article, tuple(rules), revision)
        for article, revision, rules in grouped.values()
    ]


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


def _utc(moment: datetime | None) -> datetime | None:
    # An aggregate (max) of a UTC column comes back naive from SQLite.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
