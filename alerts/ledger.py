"""The delivery ledger as a sending run uses it, whatever the channel: claiming an
unsent delivery, recording it sent through a database restart, and the domain its
Message-IDs (a webhook's idempotency keys) are made in."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from alerts.claims import is_abandoned

if TYPE_CHECKING:
    from datetime import timedelta

    from crawler.domain.config import Config
    from crawler.storage.store import DeliveryRecord, Store

logger = logging.getLogger(__name__)

# The kinds of delivery.
DIGEST = "digest"
ALERT = "alert"
# Seconds between the tries of recording a send while the database does not answer
# (a restart): ~30 s in all, then the delivery stays unsent and is sent again later.
MARK_SENT_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def claim_unsent(store: Store, record: DeliveryRecord, run: str, lease: timedelta) -> bool:
    """Claim an unsent delivery for ``run``: free, expired, or held by a dead run."""
    now = datetime.now(UTC)
    held_by = record.claimed_by
    abandoned = held_by if held_by is not None and is_abandoned(held_by) else None
    if abandoned is not None:
        logger.info(
            "%s %s to %s was being sent by a run that is gone (%s); taking it over",
            record.kind,
            record.message_id,
            record.recipient,
            abandoned,
        )
    return store.claim_delivery(record.id, run, now + lease, now=now, replacing=abandoned)


def record_sent(store: Store, record: DeliveryRecord, now: datetime) -> None:
    """Mark the delivery sent, waiting out a database that is restarting: the server
    has the message, and not recording it would send it again."""
    for delay in (*MARK_SENT_RETRY_DELAYS, None):
        try:
            store.mark_sent(record.id, at=now)
            return
        except OperationalError as error:
            if delay is None:
                logger.error(
                    "%s %s to %s was sent but could not be recorded (the database "
                    "does not answer); it will be sent again with the same "
                    "Message-ID",
                    record.kind,
                    record.message_id,
                    record.recipient,
                )
                raise
            logger.warning(
                "%s %s to %s was sent; recording it failed (%s), trying again in %.1fs",
                record.kind,
                record.message_id,
                record.recipient,
                first_line(error),
                delay,
            )
            time.sleep(delay)


def first_line(error: OperationalError) -> str:
    lines = str(error.orig or error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def message_domain(config: Config) -> str:
    return config.digest.sender.rpartition("@")[2] or "newswatch.local"
