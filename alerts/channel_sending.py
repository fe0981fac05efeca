"""Sending a recipient's digest or alert on one channel, through the ledger.

The same exactly-once path as email: the unsent deliveries of this (recipient,
channel) first, the same messages again with the same idempotency key, then one new
delivery of what is pending on this channel, each claimed before it is sent and
recorded sent only once the receiver took it. A temporary failure leaves the
delivery pending for the retry with backoff; a permanent one marks it failed, shown
and never sent again. One channel's failure never holds back another's. A channel
at its throttle (alerts/throttle.py) sends nothing until it may; what waits goes
out in its next message.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from alerts.apprise_channel import AppriseChannel
from alerts.channel import ChannelError, ChannelMessage
from alerts.claims import claim_lease
from alerts.feed_channel import FeedChannel
from alerts.feedback import reader_links, with_actions
from alerts.follow_ups import FOLLOW_UP_WINDOW
from alerts.learning import reader_tastes
from alerts.ledger import ALERT, LedgerRun, record_sent, send_through_ledger
from alerts.render import DigestEntry, DigestSection, format_subject
from alerts.sections import (
    body_cache,
    count_stories,
    digest_sections,
    find_follow_ups_in,
    recipient_named,
)
from alerts.throttle import channel_lock, next_send_at
from alerts.webhook import WebhookChannel
from crawler import __version__
from crawler.domain.wording import counted

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from alerts.channel import Channel
    from crawler.domain.config import Config, Recipient
    from crawler.storage.store import DeliveryRecord, Store

logger = logging.getLogger(__name__)


def make_channels(config: Config, only: Sequence[str] | None = None) -> dict[str, Channel]:
    """The configured channels by name (their URLs and secrets read from the
    environment now), or those named in ``only``; one that cannot be built is left
    out, with one log line."""
    user_agent = f"newswatch/{__version__} (+{config.user_agent_contact})"
    channels: dict[str, Channel] = {}
    for settings in config.channels:
        if only is not None and settings.name not in only:
            continue
        if settings.kind == "feed":
            channels[settings.name] = FeedChannel(settings.name)
            continue
        url = settings.target_url()
        try:
            if not url:
                raise ValueError(f"channel {settings.name}: no URL (is ${settings.url_env} set?)")
            if settings.kind == "webhook":
                channels[settings.name] = WebhookChannel(
                    settings.name,
                    url,
                    settings.secret() or "",
                    timeout=settings.timeout.total_seconds(),
                    user_agent=user_agent,
                )
            else:
                channels[settings.name] = AppriseChannel(settings.name, url)
        except ValueError as error:
            logger.error("%s; nothing goes to it until the configuration is fixed", error)
    return channels


def channel_message(store: Store, config: Config, record: DeliveryRecord) -> ChannelMessage:
    """The message of a delivery: its items as the digest's sections, with snippets."""
    items = store.items_of(record, with_bodies=False)
    bodies = body_cache(store)
    # The delivery's own time, not the try's: every retry sends the same body.
    sent = store.sent_stories(
        record.recipient, record.channel, record.created_at - FOLLOW_UP_WINDOW
    )
    recipient = recipient_named(config, record.recipient)
    tastes = (
        reader_tastes(
            store, record.recipient, recipient.rules, config.feedback.learn_after, record.created_at
        )
        if recipient is not None
        else None
    )
    sections = digest_sections(
        items,
        config,
        recipient,
        record.created_at,
        bodies=bodies,
        tastes=tastes,
        follow_ups=find_follow_ups_in(
            items, [story for story in sent if story.sent_at <= record.created_at], bodies
        ),
    )
    links = reader_links(store, config, record.recipient)
    sections = with_actions(sections, links)
    template = config.alerts.subject if record.kind == ALERT else config.digest.subject
    base = config.web.public_url
    return ChannelMessage(
        kind=record.kind,
        channel=record.channel,
        recipient=record.recipient,
        idempotency_key=record.message_id.strip("<>"),
        subject=format_subject(
            template, count=count_stories(items), rules=[s.rule for s in sections if not s.top]
        ),
        sections=tuple(sections),
        created=record.created_at,  # not the try's time: every retry sends the same body
        more_url=f"{str(base).rstrip('/')}/matches" if base is not None else None,
        manage_url=links.reader_page() if links is not None else None,
    )


def test_message(channel: str, config: Config, now: datetime) -> ChannelMessage:
    """A message that says it is a test, in the form a digest takes (for `newswatch
    channels test`): it goes through no ledger and carries a key of its own."""
    entry = DigestEntry(
        title="newswatch test message: this channel works",
        url=str(config.web.public_url or config.user_agent_contact),
        source="newswatch",
        published=now,
        snippet_text=f"A test sent by `newswatch channels test {channel}`; nothing to do.",
        terms=(),
    )
    return ChannelMessage(
        kind="test",
        channel=channel,
        recipient="",
        idempotency_key=f"test.{secrets.token_hex(8)}",
        subject="newswatch: test message",
        sections=(DigestSection(rule="test", entries=(entry,)),),
        created=now,
    )


def send_on_channel(
    store: Store,
    config: Config,
    channel: Channel,
    recipient: Recipient,
    rules: Sequence[str],
    kind: str,
    now: datetime,
) -> LedgerRun:
    """Send what ``recipient`` has waiting on ``channel``, through the ledger, as far
    as the channel's throttle allows (what it holds back stays pending for the next
    message). A temporary failure is raised (ChannelError, with the delivery's
    attempts so far); a permanent one is recorded and the run goes on."""

    @contextlib.contextmanager
    def throttle() -> Iterator[datetime | None]:
        # The check and the send are one step: no other thread sends meanwhile.
        with channel_lock(channel.name):
            yield next_send_at(store, config, channel.name, now)

    result = send_through_ledger(
        store,
        config,
        recipient.email,
        channel.name,
        rules,
        kind,
        lease=claim_lease(timedelta(minutes=1)),
        send=lambda record, run: _deliver(store, config, channel, record, run, now),
        gate=throttle,
        now=now,
    )
    if result.held_until is not None:
        _held(result, channel, recipient, kind)
    return result


def _held(result: LedgerRun, channel: Channel, recipient: Recipient, kind: str) -> None:
    logger.info(
        "%s to %s on %s held back by the channel's throttle until %s; it stays pending",
        kind, recipient.email, channel.name, result.held_until,
    )  # fmt: skip


def _deliver(
    store: Store, config: Config, channel: Channel, record: DeliveryRecord, run: str, now: datetime
) -> int:
    """Send one claimed delivery; 0 when the channel refused it for good."""
    try:
        channel.send(channel_message(store, config, record))
    except ChannelError as error:
        if not error.temporary:
            store.mark_failed(record.id, str(error))
            logger.error(
                "%s %s to %s on %s refused for good, not retried: %s",
                record.kind, record.message_id, record.recipient, channel.name, error,
            )  # fmt: skip
            return 0
        store.record_send_failure(record.id, str(error))
        error.attempts = record.attempts + 1
        logger.error(
            "%s %s to %s on %s not sent (attempt %d), will retry: %s",
            record.kind, record.message_id, record.recipient, channel.name,
            record.attempts + 1, error,
        )  # fmt: skip
        raise
    except BaseException:
        with contextlib.suppress(Exception):  # the database may be what failed
            store.release_delivery(record.id, run)
        raise
    record_sent(store, record, now)
    logger.info(
        "%s %s sent to %s on %s with %s",
        record.kind, record.message_id, record.recipient, channel.name,
        counted(len(record.article_ids), "article"),
    )  # fmt: skip
    return len(record.article_ids)
