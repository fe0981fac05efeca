"""How each channel stands, from the ledger: what it sent, refused and holds unsent,
its last error, and the articles its readers have yet to get (for ``newswatch
status``, the web UI and /metrics, through ``alerts/channel_status.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import String, and_, case, exists, func, literal, select, union_all
from sqlalchemy.orm import Session

from crawler.storage.articles import _URL_BATCH
from crawler.storage.engine import StoreBase
from crawler.storage.models import Article, Delivery, DeliveryItem, Match
from crawler.storage.records import ChannelState

if TYPE_CHECKING:
    from sqlalchemy import Subquery

# (recipient, channel) pairs per statement when counting what readers have waiting:
# each pair is one SELECT of a UNION ALL, and SQLite allows 500 of those.
_READER_BATCH = 200


class ChannelStateQueries(StoreBase):
    """Each channel's figures, read from the delivery ledger."""

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


def _utc(moment: datetime | None) -> datetime | None:
    # An aggregate (max) of a UTC column comes back naive from SQLite.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


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
