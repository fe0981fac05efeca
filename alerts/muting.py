"""A mute covers the muted story's follow-ups (docs/feedback.md).

A mute is by story id, so ``pending_items`` leaves out the muted story's copies and
revisions by SQL. A *new* story that continues it (alerts/follow_ups.py: two
background paragraphs shared) has another id: before a reader's pending stories
become a delivery, the ones that continue a story the reader muted get a mute of
their own, naming the story they follow. From then on SQL leaves them out too, on
every channel, with their later copies; the reader's page lists them, undoable.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from alerts.follow_ups import FOLLOW_UP_WINDOW, continued_stories
from crawler.domain.wording import counted
from crawler.storage.feedback import story_key

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from crawler.storage.store import PendingItem, Store

logger = logging.getLogger(__name__)

# Pending stories' bodies are read this many at a time: memory stays flat however
# many stories wait.
BODIES_AT_ONCE = 200


def mute_follow_ups(
    store: Store, recipient: str, rules: Sequence[str], channel: str, now: datetime
) -> int:
    """Mute for ``recipient`` each story pending on ``channel`` that continues a
    story they muted in the last ``FOLLOW_UP_WINDOW`` (a follow-up's own mute counts:
    a developing story stays muted). Returns the mutes made. One query when the
    reader has muted nothing lately."""
    muted = store.muted_story_texts(recipient, now - FOLLOW_UP_WINDOW)
    if not muted:
        return 0
    pending = store.pending_items(recipient, rules, with_bodies=False, channel=channel)
    firsts = first_copies(pending)
    found = continued_stories(_bodies(store, firsts), muted)
    made = store.mute_follow_ups(
        recipient,
        [(story, firsts[story].article.title, found[story].story) for story in found],
        now,
    )
    if made:
        logger.info(
            "%s muted for %s: they follow stories they muted",
            counted(made, "new story", "new stories"),
            recipient,
        )
    return made


def first_copies(items: Sequence[PendingItem]) -> dict[int, PendingItem]:
    """Each story of ``items`` (by the key a mute names) with its earliest copy."""
    latest = datetime.max.replace(tzinfo=UTC)
    firsts: dict[int, PendingItem] = {}
    for item in items:
        key = story_key(item.article.story_id, item.article.id)
        known = firsts.get(key)
        order = (item.article.published or latest, item.article.id)
        if known is None or order < (known.article.published or latest, known.article.id):
            firsts[key] = item
    return firsts


def _bodies(store: Store, firsts: dict[int, PendingItem]) -> Iterator[tuple[int, str]]:
    stories = list(firsts.items())
    for start in range(0, len(stories), BODIES_AT_ONCE):
        batch = stories[start : start + BODIES_AT_ONCE]
        bodies = store.article_bodies([item.article.id for _, item in batch])
        for story, item in batch:
            yield story, bodies.get(item.article.id, "")
