"""The ledger as people and readers see it: a reader's private feed read back from
the ledger, the stories a reader was sent (for "follow-up to"), the delivery
history and unsent counts for the status pages, and each channel's state (what it
took, refused and has waiting) for `newswatch status`, the web UI and /metrics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    String,
    and_,
    case,
    exists,
    func,
    literal,
    select,
    union_all,
)

from crawler.storage.articles import _URL_BATCH, _article_query, _stored_article
from crawler.storage.engine import StoreBase
from crawler.storage.models import Article, Delivery, DeliveryItem, Match
from crawler.storage.records import ChannelState, FeedItem, SentStory

if TYPE_CHECKING:
    from sqlalchemy import Subquery
    from sqlalchemy.orm import Session

# A reader's history is read no further back than their newest stories this many
# (a follow-up is checked against them): a bound on a digest's work.
MAX_SENT_STORIES = 2000

# (recipient, channel) pairs per statement when counting what readers have waiting:
# each pair is one SELECT of a UNION ALL, and SQLite allows 500 of those.
_READER_BATCH = 200


class LedgerViewQueries(StoreBase):
    """Read-only queries on the ledger: feeds, history, each channel's state."""

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


def _readers_table(pairs: Sequence[tuple[str, str]]) -> Subquery:
    """(recipient, channel) pairs as a table to join against (a UNION ALL of
    literal rows: SQLite's VALUES takes no column names)."""
    rows = [
        select(
            literal(recipient, String).label("recipient"), literal(channel, String).label("channel")
        )
        for recipient, channel in pairs
    ]
    return (union_all(*rows) if len(rows) > 1 else rows[0]).subquery("readers")


def _undelivered_counts(
    session: Session, pairs: Sequence[tuple[str, str]], rules: Sequence[str]
) -> dict[str, int]:
    """Per channel: the matched articles of ``rules`` that each (recipient, channel)
    in ``pairs`` has yet to get, summed; the conditions of ``pending_items``.

    In two steps, so the work grows with the ledger, not with the ledger times what
    is pending: the articles not delivered at their latest revision (an index probe
    each), then, for a reader's articles never delivered at all, whether another copy
    of their story was, by one pass over that reader's items of those stories
    (``delivery_items`` has no index on the story).
    """
    readers = _readers_table(pairs)
    mine = and_(
        DeliveryItem.recipient == readers.c.recipient, DeliveryItem.channel == readers.c.channel
    )
    has_this_revision = exists().where(
        mine,
        DeliveryItem.article_id == Article.id,
        DeliveryItem.revision == Article.notify_revision,
    )
    had_it = exists().where(mine, DeliveryItem.article_id == Article.id)
    candidates = session.execute(
        select(
            readers.c.recipient,
            readers.c.channel,
            Article.id,
            Article.story_id,
            had_it.label("had"),
        )
        .select_from(readers)
        .join(Match, Match.rule.in_(list(rules)))
        .join(Article, Article.id == Match.article_id)
        .where(~has_this_revision)
        .distinct()
    ).all()
    new: dict[tuple[str, str], list[tuple[int, int]]] = {}  # never had: (article, story)
    counts: dict[str, int] = {}
    for recipient, channel, article_id, story_id, had in candidates:
        if had or story_id is None:
            counts[channel] = counts.get(channel, 0) + 1
        else:
            new.setdefault((recipient, channel), []).append((article_id, story_id))
    for (recipient, channel), articles in new.items():
        delivered = _delivered_story_members(
            session, recipient, channel, {story for _, story in articles}
        )
        waiting = sum(1 for a, story in articles if not delivered.get(story, set()) - {a})
        counts[channel] = counts.get(channel, 0) + waiting
    return counts


def _delivered_story_members(
    session: Session, recipient: str, channel: str, stories: set[int]
) -> dict[int, set[int]]:
    """Of ``stories``, the articles ``recipient`` got on ``channel``, by story."""
    members: dict[int, set[int]] = {}
    ordered = sorted(stories)
    for start in range(0, len(ordered), _URL_BATCH):
        rows = session.execute(
            select(DeliveryItem.story_id, DeliveryItem.article_id).where(
                DeliveryItem.recipient == recipient,
                DeliveryItem.channel == channel,
                DeliveryItem.story_id.in_(ordered[start : start + _URL_BATCH]),
            )
        )
        for story, article in rows:
            if story is not None:  # (the IN holds no NULL; for the type checker)
                members.setdefault(story, set()).add(article)
    return members


def _utc(moment: datetime | None) -> datetime | None:
    # An aggregate (max) of a UTC column comes back naive from SQLite.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
