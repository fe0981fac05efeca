"""Retention: what the daily job deletes, as ``retention`` and the feedback and
health settings say (README, "Configuration reference")."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crawler.domain.health import POLL_HISTORY
from crawler.domain.wording import counted

if TYPE_CHECKING:
    from crawler.domain.config import Config
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)

__all__ = ["purge_old_articles"]


def purge_old_articles(
    store: Store, config: Config, now: datetime | None = None
) -> tuple[int, int]:
    """Purge bodies and old rows as ``retention`` says; returns (purged, deleted).
    Readers' answers go with the stories they name; answers taken back (and pauses
    over) with the bodies; used links once no link that old works; the sources' poll
    log after ``POLL_HISTORY`` (7 days: their health reads less); the copies of sent
    messages with the bodies."""
    now = now or datetime.now(UTC)
    purged, deleted = store.purge(
        bodies_before=now - config.retention.bodies,
        rows_before=now - config.retention.fingerprints,
    )
    answers = store.purge_feedback(
        answers_before=now - config.retention.fingerprints,
        undone_before=now - config.retention.bodies,
        links_before=now - config.feedback.link_ttl,
    )
    if answers:
        logger.info("retention: %d old reader answers and used links deleted", answers)
    store.purge_polls(now - POLL_HISTORY)
    # Sent messages' copies (their "view in browser" links) go with the article bodies.
    store.purge_sent_messages(now - config.retention.bodies)
    if purged or deleted:
        logger.info(
            "retention: %s purged, %s deleted",
            counted(purged, "article body", "article bodies"),
            counted(deleted, "old article"),
        )
    return purged, deleted
