"""How many matched articles readers have yet to get, per channel, counted as
``pending_items`` finds them (for ``channel_states``: the status pages and metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import String, and_, exists, literal, select, union_all

from crawler.storage.articles import _URL_BATCH
from crawler.storage.feedback import not_held, not_muted
from crawler.storage.models import Article, DeliveryItem, Match, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Subquery
    from sqlalchemy.orm import Session


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
    in ``pairs`` has yet to get, summed; the conditions of ``pending_items`` (muted
    stories and held rules left out too).

    In two steps, so the work grows with the ledger, not with the ledger times what
    is pending: the articles not delivered at their latest revision (an index probe
    each), then, for a reader's articles never delivered at all, whether another copy
    of their story was, by one pass over that reader's items of those stories.
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
        .where(
            ~has_this_revision,
            not_muted(readers.c.recipient),
            not_held(readers.c.recipient, Match.rule, utcnow()),
        )
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
