"""The story index of a running process: rebuilt from the database at start, and kept
up to date with the articles other processes store."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from crawler.domain.stories import StoryIndex
from crawler.domain.wording import counted

if TYPE_CHECKING:
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)


def load_story_index(store: Store, window: timedelta) -> StoryIndex:
    """The story index, rebuilt from the signatures stored for the last ``window``."""
    index = StoryIndex(window=window)
    now = datetime.now(UTC)
    skipped = 0
    for article_id, story_id, signature, published, title, source in store.story_signatures(
        now - window
    ):
        try:
            index.add_existing(article_id, story_id, signature, published, title, source)
        except ValueError:  # made by another version of the index: leave it out
            skipped += 1
    index.prune(now)
    logger.info(
        "story index: %s from the last %s%s",
        counted(len(index), "article"),
        window,
        f" ({skipped} old signatures skipped)" if skipped else "",
    )
    return index


class StoryIndexFollower:
    """Adds to a story index the articles other processes stored since it last looked.

    Every process that stores articles keeps its own index; several may write to one
    database (scale-out workers, or a `newswatch crawl` beside `newswatch run`).
    Called before each batch is stored, so a copy of a story another process stored
    a moment ago is grouped with it. (Two copies stored in the same instant by two
    processes can still become two stories.)
    """

    def __init__(self, store: Store, index: StoryIndex) -> None:
        self.store = store
        self.index = index
        self.seen = index.newest_id()

    def __call__(self) -> None:
        since = datetime.now(UTC) - self.index.window
        for (
            article_id,
            story_id,
            signature,
            published,
            title,
            source,
        ) in self.store.story_signatures(since, after_id=self.seen):
            self.seen = max(self.seen, article_id)
            # Already indexed (stored by this process) or made by another version of
            # the index: add_existing skips the one and refuses the other.
            with contextlib.suppress(ValueError):
                self.index.add_existing(article_id, story_id, signature, published, title, source)
