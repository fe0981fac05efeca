"""Digest and alert runs: pending matches → one email per recipient → marked delivered.

Exactly once, as far as SMTP allows: a delivery row with a deterministic
Message-ID and its items are committed *before* sending; the row is marked sent
only after the server accepted the message. A send that fails leaves the row
unsent, and the next attempt sends that very message (same items, same
Message-ID) before it builds a new one. A crash after the server accepted but
before the commit resends the same Message-ID once: at least once, never two
different messages with the same articles.

Copies of one story (a wire story run by several outlets) are one entry: the
earliest copy is the link, the other outlets are listed as "also reported by",
and once a reader got the story, later copies are not sent to them again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError

from alerts.channel import ChannelError
from alerts.channel_sending import make_channels, send_on_channel
from alerts.claims import claim_lease
from alerts.delivery import (
    DeliveryError,
    MessageTooLarge,
    OutboxDelivery,
    SmtpDelivery,
    message_size,
)
from alerts.feedback import ReaderLinks, reader_links, with_actions
from alerts.follow_ups import FOLLOW_UP_WINDOW
from alerts.learning import reader_tastes
from alerts.ledger import (
    ALERT,
    DIGEST,
    first_line,
    keep_sent_copy,
    record_sent,
    send_through_ledger,
)
from alerts.render import (
    DigestSection,
    RenderedDigest,
    SourceTrouble,
    build_message,
    render_digest,
)
from alerts.sections import body_cache, count_stories, digest_sections, find_follow_ups_in
from crawler.domain.config import WEEKDAYS
from crawler.domain.items import EMAIL_CHANNEL
from crawler.domain.wording import counted

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from email.message import EmailMessage

    from alerts.channel import Channel
    from alerts.delivery import Delivery
    from alerts.learning import Taste
    from crawler.domain.config import Config, DeliveryConfig, Recipient
    from crawler.storage.store import DeliveryRecord, PendingItem, Store

logger = logging.getLogger(__name__)

# Sends of one delivery, each cut smaller, when the server says it is too large.
FIT_TRIES = 4


@dataclass
class DigestReport:
    """What a run did, per recipient."""

    sent: dict[str, int] = field(default_factory=dict)  # recipient → articles sent
    failed: dict[str, str] = field(default_factory=dict)  # recipient → last error
    attempts: dict[str, int] = field(default_factory=dict)  # recipient → attempts so far
    skipped: dict[str, str] = field(default_factory=dict)  # recipient → why nothing was sent
    retry_at: dict[str, datetime] = field(default_factory=dict)  # throttled: next send
    # recipient → the channels (not email) a throttle held back, for a retry on those
    held: dict[str, list[str]] = field(default_factory=dict)
    # A receiver asked to wait (Retry-After): the retry is not sooner than this.
    not_before: dict[str, datetime] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return len(self.sent)


def make_delivery(config: DeliveryConfig) -> Delivery:
    """SMTP when configured, else the outbox folder of ``.eml`` files."""
    smtp = config.smtp
    if smtp is None:
        return OutboxDelivery(config.outbox)
    return SmtpDelivery(
        smtp.host,
        smtp.port,
        starttls=smtp.starttls,
        ssl=smtp.ssl,
        username=smtp.username,
        password=smtp.password(),
        timeout=smtp.timeout.total_seconds(),
    )


def is_quiet_day(recipient: Recipient, now: datetime) -> bool:
    """True when today, in the recipient's time zone, is one of their quiet days."""
    weekday = WEEKDAYS[now.astimezone(ZoneInfo(recipient.timezone)).weekday()]
    return weekday in recipient.quiet_days


def send_pending_digests(
    store: Store,
    config: Config,
    delivery: Delivery,
    now: datetime | None = None,
    *,
    recipients: Sequence[Recipient] | None = None,
    force: bool = False,
    channels: Mapping[str, Channel] | None = None,
) -> DigestReport:
    """Send each recipient their pending digest on each of their channels; one failing
    recipient or channel stops no other. A digest a channel's throttle holds back
    stays pending, whole; ``report.retry_at`` says when it may go.

    ``force`` sends on quiet days too (a person asked for it now).
    """
    now = now or datetime.now(UTC)
    report = DigestReport()
    for recipient in recipients if recipients is not None else config.all_recipients():
        if not force and is_quiet_day(recipient, now):
            report.skipped[recipient.email] = "quiet day"
            continue
        if EMAIL_CHANNEL in recipient.channels:
            _send_to(store, config, delivery, recipient, recipient.rules, DIGEST, now, report)
        for name in recipient.channels:
            if name != EMAIL_CHANNEL:
                _send_on(
                    store, config, channels, name, recipient, recipient.rules, DIGEST, now, report
                )
    return report


def send_pending_alerts(
    store: Store,
    config: Config,
    delivery: Delivery,
    now: datetime | None = None,
    *,
    recipients: Sequence[Recipient] | None = None,
    channels: Mapping[str, Channel] | None = None,
) -> DigestReport:
    """Send matches of ``alert: immediate`` rules now: one message per recipient and
    channel holding everything pending (the matches of the batching window), and on
    the channels rules name (``Config.channel_recipients``).

    Email sends at most ``alerts.max_per_hour`` alerts per recipient, other channels
    at most their own ``max_per_minute``/``max_per_hour``. What a throttle holds back
    stays pending; ``report.retry_at`` says when the next message may go (or the
    digest takes it).
    """
    now = now or datetime.now(UTC)
    report = DigestReport()
    immediate = set(config.rule_names(alert="immediate"))
    if recipients is None:
        recipients = [*config.all_recipients(), *config.channel_recipients()]
    on_channels: list[tuple[Recipient, list[str], str]] = []
    for recipient in recipients:
        rules = [rule for rule in recipient.rules if rule in immediate]
        if not recipient.alerts or not rules:
            continue
        for name in recipient.channels:
            if name != EMAIL_CHANNEL:
                on_channels.append((recipient, rules, name))
                continue
            sent, oldest = store.count_sent(recipient.email, ALERT, now - timedelta(hours=1), name)
            if sent >= config.alerts.max_per_hour:
                _hold(report, recipient.email, (oldest or now) + timedelta(hours=1))
            else:
                _send_to(store, config, delivery, recipient, rules, ALERT, now, report)
    for recipient, rules, name in _longest_waiting_first(store, config, on_channels, now):
        _send_on(store, config, channels, name, recipient, rules, ALERT, now, report)
    return report


def _longest_waiting_first(
    store: Store,
    config: Config,
    on_channels: list[tuple[Recipient, list[str], str]],
    now: datetime,
) -> list[tuple[Recipient, list[str], str]]:
    """(recipient, rules, channel) with, on a throttled channel, the readers served
    longest ago first: a throttle lets only so many messages go, and in the file's
    order the first readers, busy on a busy day, would take every one of them."""
    throttled = [c.name for c in config.channels if c.max_per_minute or c.max_per_hour]
    last = store.last_sent_on_channels(throttled, now - timedelta(hours=1))
    never = datetime.min.replace(tzinfo=UTC)
    return sorted(on_channels, key=lambda entry: last.get((entry[0].email, entry[2]), never))


def _hold(
    report: DigestReport, recipient: str, until: datetime, channel: str | None = None
) -> None:
    """Note a throttled recipient and the earliest time one of their messages may go."""
    report.skipped[recipient] = "throttled"
    report.retry_at[recipient] = min(report.retry_at.get(recipient, until), until)
    if channel is not None:
        report.held.setdefault(recipient, []).append(channel)


def _send_on(
    store: Store,
    config: Config,
    channels: Mapping[str, Channel] | None,
    name: str,
    recipient: Recipient,
    rules: Sequence[str],
    kind: str,
    now: datetime,
    report: DigestReport,
) -> None:
    """One recipient's deliveries on one channel (not email); its failure is reported
    for a retry and holds back no other channel or recipient, and so does its throttle."""
    channel = (channels if channels is not None else _channels_of(config)).get(name)
    if channel is None:
        return  # not usable (no URL): make_channels said why
    try:
        result = send_on_channel(store, config, channel, recipient, rules, kind, now)
    except ChannelError as error:
        report.failed[recipient.email] = str(error)
        report.attempts[recipient.email] = max(
            report.attempts.get(recipient.email, 0), error.attempts
        )
        if error.retry_after:
            report.not_before[recipient.email] = now + timedelta(seconds=error.retry_after)
        return
    except OperationalError as error:
        logger.error(
            "%s for %s on %s interrupted by a database error, will retry: %s",
            kind, recipient.email, name, first_line(error),
        )  # fmt: skip
        report.failed[recipient.email] = f"database error: {first_line(error)}"
        report.attempts[recipient.email] = report.attempts.get(recipient.email, 0) + 1
        return
    if result.sent:
        report.sent[recipient.email] = report.sent.get(recipient.email, 0) + result.sent
    if result.held_until is not None:
        _hold(report, recipient.email, result.held_until, name)


# The channels of the configuration in use, built once for it (a reload brings a new
# configuration, hence new channels). The configuration is held, so it is that one.
_built: list[tuple[Config, dict[str, Channel]]] = []
_built_lock = threading.Lock()


def _channels_of(config: Config) -> dict[str, Channel]:
    with _built_lock:
        if not _built or _built[0][0] is not config:
            _built[:] = [(config, make_channels(config))]
        return _built[0][1]


def preview_digests(
    store: Store, config: Config, now: datetime | None = None
) -> dict[str, RenderedDigest]:
    """What each recipient would get now, without creating or sending anything."""
    now = now or datetime.now(UTC)
    previews = {}
    for recipient in config.all_recipients():
        items = [
            *(
                item
                for record in store.unsent_deliveries(recipient.email)
                for item in store.items_of(record)
            ),
            *store.pending_items(recipient.email, recipient.rules),
        ]
        if items:
            tastes = reader_tastes(
                store, recipient.email, recipient.rules, config.feedback.learn_after, now
            )
            trouble = sources_in_trouble(store, config) if recipient.sources_in_trouble else ()
            previews[recipient.email] = render_items(
                items, config, recipient, now, tastes=tastes, trouble=trouble
            )
    return previews


def render_items(
    items: Sequence[PendingItem],
    config: Config,
    recipient: Recipient,
    now: datetime,
    kind: str = DIGEST,
    *,
    max_stories: int | None = None,
    tastes: Mapping[str, Taste] | None = None,
    trouble: Sequence[SourceTrouble] = (),
) -> RenderedDigest:
    """Render ``items``: one section per rule in the configured order, one entry per
    story, at most ``max_stories`` per section (default: the recipient's
    ``max_stories``, else ``digest.max_stories``), ordered by ``tastes`` where given."""
    sections = digest_sections(
        items, config, recipient, now, max_stories=max_stories, tastes=tastes
    )
    return _render(sections, items, config, recipient, now, kind, trouble=trouble)


def _render(
    sections: Sequence[DigestSection],
    items: Sequence[PendingItem],
    config: Config,
    recipient: Recipient,
    now: datetime,
    kind: str,
    links: ReaderLinks | None = None,
    trouble: Sequence[SourceTrouble] = (),
    view_url: str | None = None,
) -> RenderedDigest:
    cut = any(section.more for section in sections)
    return render_digest(
        sections,
        timezone=recipient.timezone,
        subject_template=config.alerts.subject if kind == ALERT else config.digest.subject,
        generated_at=now,
        template_dirs=[config.digest.templates] if config.digest.templates else [],
        unsubscribe=config.digest.unsubscribe,
        # A cut digest still stands for every story it delivers.
        count=count_stories(items) if cut else None,
        reader_url=links.reader_page() if links is not None else None,
        trouble=trouble,
        view_url=view_url,
    )


def _send_to(
    store: Store,
    config: Config,
    delivery: Delivery,
    recipient: Recipient,
    rules: Sequence[str],
    kind: str,
    now: datetime,
    report: DigestReport,
) -> None:
    """Send what ``recipient`` has waiting by email, through the ledger
    (``send_through_ledger``: unsent deliveries first, then one new delivery)."""
    smtp = config.delivery.smtp
    try:
        send_through_ledger(
            store,
            config,
            recipient.email,
            EMAIL_CHANNEL,
            rules,
            kind,
            lease=claim_lease(smtp.timeout if smtp is not None else None),
            send=lambda record, run: _send(
                store, config, delivery, recipient, record, run, now, report
            ),
            now=now,
        )
    except DeliveryError as error:
        report.failed[recipient.email] = str(error)
    except OperationalError as error:
        # The database went away mid-run (locked, restarted): nothing was marked sent
        # that was not sent; the run is retried with backoff like a failed send.
        logger.error(
            "%s for %s interrupted by a database error, will retry: %s",
            kind,
            recipient.email,
            first_line(error),
        )
        report.failed[recipient.email] = f"database error: {first_line(error)}"
        report.attempts[recipient.email] = report.attempts.get(recipient.email, 0) + 1


def _send(
    store: Store,
    config: Config,
    delivery: Delivery,
    recipient: Recipient,
    record: DeliveryRecord,
    run: str,
    now: datetime,
    report: DigestReport,
) -> int:
    """Send one claimed delivery and return its articles; mark it sent, or count the
    failure (which releases the claim). Anything else that stops it releases the
    claim too."""
    try:
        # Without bodies: the digest reads one per story (to score it), once however
        # often the message is cut, not one per copy.
        items = store.items_of(record, with_bodies=False)
        bodies = body_cache(store)
        follow_ups = find_follow_ups_in(
            items,
            store.sent_stories(record.recipient, record.channel, now - FOLLOW_UP_WINDOW),
            bodies,
        )
        budget = _budget(config, delivery)
        links = reader_links(store, config, record.recipient)
        # As of the delivery's creation: every retry ranks the message the same.
        tastes = reader_tastes(
            store, record.recipient, recipient.rules, config.feedback.learn_after, record.created_at
        )
        trouble = (
            sources_in_trouble(store, config)
            if record.kind == DIGEST and recipient.sources_in_trouble
            else ()
        )
        for _ in range(FIT_TRIES):
            message = fitting_message(
                items,
                config,
                recipient,
                record,
                now,
                budget,
                bodies=bodies,
                links=links,
                follow_ups=follow_ups,
                tastes=tastes,
                trouble=trouble,
            )
            try:
                delivery.send(message)
                break
            except MessageTooLarge as error:
                # The server's SIZE, or its 552, says less than our budget: cut more.
                budget = min(budget, error.limit or error.size // 2)
                logger.warning(
                    "%s %s to %s: %s; cutting it to %d bytes",
                    record.kind,
                    record.message_id,
                    record.recipient,
                    error,
                    budget,
                )
        else:
            raise MessageTooLarge(
                f"{record.kind} {record.message_id} does not fit the "
                f"server's size limit even cut down",
                size=0,
                limit=budget,
            )
    except DeliveryError as error:
        store.record_send_failure(record.id, str(error))
        report.attempts[record.recipient] = record.attempts + 1
        logger.error(
            "%s %s to %s not sent (attempt %d), will retry: %s",
            record.kind,
            record.message_id,
            record.recipient,
            record.attempts + 1,
            error,
        )
        raise
    except BaseException:
        with contextlib.suppress(Exception):  # the database may be what failed
            store.release_delivery(record.id, run)
        raise
    record_sent(store, record, now, size=message_size(message))
    keep_sent_copy(store, record, message, now)
    report.sent[record.recipient] = report.sent.get(record.recipient, 0) + len(record.article_ids)
    logger.info(
        "%s %s sent to %s with %s",
        record.kind,
        record.message_id,
        record.recipient,
        counted(len(record.article_ids), "article"),
    )
    return len(record.article_ids)


def sources_in_trouble(store: Store, config: Config) -> tuple[SourceTrouble, ...]:
    """The enabled sources in a bad health state (README, "Source health"), worst
    news first: what a digest's "Sources in trouble" lists."""
    enabled = {source.name for source in config.sources if source.enabled and source.tell_operators}
    return tuple(
        SourceTrouble(
            record.source,
            record.health.state.value,
            record.health.reason,
            record.health.since,
        )
        for record in store.health_records()
        if record.source in enabled and record.health.state.bad
    )


def _budget(config: Config, delivery: Delivery) -> int:
    """Bytes one message may take: ``digest.max_bytes``, or less if the server says so."""
    limit = getattr(delivery, "size_limit", None)
    return min(config.digest.max_bytes, limit) if limit else config.digest.max_bytes


def fitting_message(
    items: Sequence[PendingItem],
    config: Config,
    recipient: Recipient,
    record: DeliveryRecord,
    now: datetime,
    budget: int,
    *,
    bodies: Callable[[Sequence[int]], Mapping[int, str]] | None = None,
    links: ReaderLinks | None = None,
    follow_ups: Mapping[int, datetime] | None = None,
    tastes: Mapping[str, Taste] | None = None,
    trouble: Sequence[SourceTrouble] = (),
) -> EmailMessage:
    """The delivery's message, at most ``budget`` bytes when it can be: sections are
    cut to the recipient's ``max_stories``, then to fewer until the message fits
    (each cut story is counted in its section's "N more"). One log line says when
    a digest was cut, and why. With ``links``, every entry and section carries the
    reader's answer links, and the message the RFC 8058 one-click unsubscribe;
    ``tastes`` order sections by what the reader's votes taught; ``trouble`` ends the
    digest with the sources in a bad state."""
    chosen = recipient.max_stories or config.digest.max_stories
    cap = chosen
    while True:
        sections = digest_sections(
            items,
            config,
            recipient,
            now,
            max_stories=cap,
            bodies=bodies,
            follow_ups=follow_ups,
            tastes=tastes,
        )
        sections = with_actions(sections, links)
        view_url = links.view_page(record.id) if links is not None else None
        message = build_message(
            _render(sections, items, config, recipient, now, record.kind, links, trouble, view_url),
            sender=config.digest.sender,
            recipient=record.recipient,
            message_id=record.message_id,
            date=now,
            unsubscribe=config.digest.unsubscribe,
            one_click=links.one_click(_rules_of(items, recipient)) if links is not None else None,
        )
        size = message_size(message)
        if size <= budget or cap == 1:
            break
        # Entries are of a size: scale the cap to the budget, with a margin.
        cap = max(1, min(cap - 1, int(cap * budget / size * 0.9)))
    hidden = sum(section.more for section in sections)
    if hidden:
        shown = sum(len(section.entries) for section in sections)
        why = (
            (
                f"recipients[].max_stories is {cap}"
                if recipient.max_stories not in (None, config.digest.max_stories)
                else f"digest.max_stories is {cap}"
            )
            if cap == chosen
            else f"{cap} per rule fit the budget of {budget:,} bytes"
        )
        logger.warning(
            "%s %s to %s cut: %s shown, %d more only counted (%s); %d bytes",
            record.kind,
            record.message_id,
            record.recipient,
            counted(shown, "story", "stories"),
            hidden,
            why,
            size,
        )
    if size > budget:
        logger.warning(
            "%s %s to %s is %d bytes, over the budget of %d even with one story per rule",
            record.kind,
            record.message_id,
            record.recipient,
            size,
            budget,
        )
    return message


def _rules_of(items: Sequence[PendingItem], recipient: Recipient) -> list[str]:
    """The reader's rules that a message's items matched: what its one-click
    unsubscribe leaves (a story shown under another rule still came from these)."""
    matched = {rule for item in items for rule, _terms in item.rules}
    return [rule for rule in recipient.rules if rule in matched]
