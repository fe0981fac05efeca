"""The delivery ledger as a sending run uses it, whatever the channel: the one loop
that sends a recipient's deliveries on a channel (``send_through_ledger``), claiming
an unsent delivery, recording it sent through a database restart, and the domain its
Message-IDs (a webhook's idempotency keys) are made in."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from alerts.claims import is_abandoned, sending_run
from alerts.muting import mute_follow_ups

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager
    from datetime import timedelta
    from email.message import EmailMessage

    from crawler.domain.config import Config
    from crawler.storage.store import DeliveryRecord, Store

logger = logging.getLogger(__name__)

# The kinds of delivery.
DIGEST = "digest"
ALERT = "alert"
# Seconds between the tries of recording a send while the database does not answer
# (a restart): ~30 s in all, then the delivery stays unsent and is sent again later.
MARK_SENT_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


@dataclass(frozen=True)
class LedgerRun:
    """What one (recipient, channel) run did: the articles sent, and, when the
    channel's throttle held the rest back, when the next message may go."""

    sent: int = 0
    held_until: datetime | None = None


def _always_open() -> AbstractContextManager[datetime | None]:
    return contextlib.nullcontext(None)


def send_through_ledger(
    store: Store,
    config: Config,
    recipient: str,
    channel: str,
    rules: Sequence[str],
    kind: str,
    *,
    lease: timedelta,
    send: Callable[[DeliveryRecord, str], int],
    gate: Callable[[], AbstractContextManager[datetime | None]] = _always_open,
    now: datetime | None = None,
) -> LedgerRun:
    """Send what ``recipient`` has waiting on ``channel``, exactly once: the unsent
    deliveries first (the same messages again, same Message-ID or idempotency key),
    then one new delivery of what is pending (once the pending stories that follow
    up a story the reader muted are muted too: alerts/muting.py).

    Each delivery is claimed before ``send(record, run)`` sends it (returning the
    articles sent); one another live run holds is left to that run, so overlapping
    runs (a catch-up and a cron tick, a `newswatch digest` beside the service, a feed
    read beside a digest) never send the same message. ``gate`` is entered around
    each send: it gives None when a message may go now (and holds, for instance, a
    channel's throttle lock meanwhile), else the time one may — then the run stops
    and what waits stays pending, whole.
    """
    sent = 0
    with sending_run() as run:
        for record in store.unsent_deliveries(recipient, channel):
            with gate() as held_until:
                if held_until is not None:
                    return LedgerRun(sent, held_until)
                if not claim_unsent(store, record, run, lease):
                    logger.info(
                        "%s %s to %s on %s is being sent by another run (%s); left to it",
                        record.kind, record.message_id, recipient, channel, record.claimed_by,
                    )  # fmt: skip
                    continue
                sent += send(record, run)
        mute_follow_ups(store, recipient, rules, channel, now or datetime.now(UTC))
        pending = store.pending_items(recipient, rules, with_bodies=False, channel=channel)
        if not pending:
            return LedgerRun(sent)
        with gate() as held_until:
            if held_until is not None:
                return LedgerRun(sent, held_until)
            created = store.create_delivery(
                recipient,
                pending,
                message_domain(config),
                kind,
                claim=(run, datetime.now(UTC) + lease),
                channel=channel,
            )
            if created is None:
                logger.warning(
                    "%s for %s on %s: items were claimed by another run", kind, recipient, channel
                )
                return LedgerRun(sent)
            sent += send(created, run)
    return LedgerRun(sent)


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


def record_sent(
    store: Store, record: DeliveryRecord, now: datetime, size: int | None = None
) -> None:
    """Mark the delivery sent (``size``: its message's bytes, when measured),
    waiting out a database that is restarting: the server has the message, and not
    recording it would send it again."""
    for delay in (*MARK_SENT_RETRY_DELAYS, None):
        try:
            store.mark_sent(record.id, at=now, size=size)
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


def keep_sent_copy(
    store: Store, record: DeliveryRecord, message: EmailMessage, now: datetime
) -> None:
    """Keep the message's bodies as sent, for its "view in browser" link and the
    delivery history. The message is sent and recorded: a failure here is logged
    and costs only the copy."""
    try:
        html, text = message.get_body(("html",)), message.get_body(("plain",))
        store.keep_sent_message(
            record.id,
            html.get_content() if html is not None else "",
            text.get_content() if text is not None else "",
            now,
        )
    except Exception as error:  # the mail went out: nothing here may undo that
        logger.warning(
            "%s %s to %s: its copy for the browser was not kept: %s",
            record.kind, record.message_id, record.recipient, str(error)[:300],
        )  # fmt: skip


def first_line(error: OperationalError) -> str:
    lines = str(error.orig or error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def message_domain(config: Config) -> str:
    return config.digest.sender.rpartition("@")[2] or "newswatch.local"
