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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError

from alerts.claims import claim_lease, is_abandoned, sending_run
from alerts.delivery import DeliveryError, OutboxDelivery, SmtpDelivery
from alerts.render import (
    DigestEntry,
    DigestSection,
    RenderedDigest,
    build_message,
    make_snippet,
    render_digest,
)
from crawler.config import WEEKDAYS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alerts.delivery import Delivery
    from crawler.config import Config, DeliveryConfig, Recipient
    from crawler.store import DeliveryRecord, PendingItem, Store

logger = logging.getLogger(__name__)

DIGEST = "digest"
ALERT = "alert"


@dataclass
class DigestReport:
    """What a run did, per recipient."""

    sent: dict[str, int] = field(default_factory=dict)  # recipient → articles sent
    failed: dict[str, str] = field(default_factory=dict)  # recipient → last error
    attempts: dict[str, int] = field(default_factory=dict)  # recipient → attempts so far
    skipped: dict[str, str] = field(default_factory=dict)  # recipient → why nothing was sent
    retry_at: dict[str, datetime] = field(default_factory=dict)  # throttled alerts

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
) -> DigestReport:
    """Send each recipient their pending digest; one failing recipient stops no other.

    ``force`` sends on quiet days too (a person asked for it now).
    """
    now = now or datetime.now(UTC)
    report = DigestReport()
    for recipient in recipients if recipients is not None else config.all_recipients():
        if not force and is_quiet_day(recipient, now):
            report.skipped[recipient.email] = "quiet day"
            continue
        _send_to(store, config, delivery, recipient, recipient.rules, DIGEST, now, report)
    return report


def send_pending_alerts(
    store: Store,
    config: Config,
    delivery: Delivery,
    now: datetime | None = None,
    *,
    recipients: Sequence[Recipient] | None = None,
) -> DigestReport:
    """Send matches of ``alert: immediate`` rules now, at most ``max_per_hour`` each.

    A throttled recipient's items stay pending; ``report.retry_at`` says when the
    next alert may go (or the digest takes them).
    """
    now = now or datetime.now(UTC)
    report = DigestReport()
    immediate = set(config.rule_names(alert="immediate"))
    for recipient in recipients if recipients is not None else config.all_recipients():
        rules = [rule for rule in recipient.rules if rule in immediate]
        if not recipient.alerts or not rules:
            continue
        sent, oldest = store.count_sent(recipient.email, ALERT, now - timedelta(hours=1))
        if sent >= config.alerts.max_per_hour:
            report.skipped[recipient.email] = "throttled"
            report.retry_at[recipient.email] = (oldest or now) + timedelta(hours=1)
            continue
        _send_to(store, config, delivery, recipient, rules, ALERT, now, report)
    return report


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
            previews[recipient.email] = render_items(items, config, recipient, now)
    return previews


def render_items(
    items: Sequence[PendingItem],
    config: Config,
    recipient: Recipient,
    now: datetime,
    kind: str = DIGEST,
) -> RenderedDigest:
    """Render ``items``: one section per rule in the configured order, one entry per story."""
    return render_digest(
        group_by_rule(items, config.rule_names()),
        timezone=recipient.timezone,
        subject_template=config.alerts.subject if kind == ALERT else config.digest.subject,
        generated_at=now,
        template_dirs=[config.digest.templates] if config.digest.templates else [],
        unsubscribe=config.digest.unsubscribe,
    )


def group_by_rule(items: Sequence[PendingItem], rule_order: Sequence[str]) -> list[DigestSection]:
    """Sections in ``rule_order`` (rules no longer configured last); in each, one
    entry per story, newest story first."""
    by_rule: dict[str, list[PendingItem]] = {}
    for item in items:
        for rule, _terms in item.rules:
            by_rule.setdefault(rule, []).append(item)
    order = {name: position for position, name in enumerate(rule_order)}
    return [
        DigestSection(rule=rule, entries=_story_entries(rule, rule_items))
        for rule, rule_items in sorted(by_rule.items(), key=lambda kv: order.get(kv[0], len(order)))
    ]


def _story_entries(rule: str, items: Sequence[PendingItem]) -> tuple[DigestEntry, ...]:
    oldest = datetime.max.replace(tzinfo=UTC)
    stories: dict[int, list[PendingItem]] = {}
    for item in items:
        story = item.article.story_id if item.article.story_id is not None else -item.article.id
        stories.setdefault(story, []).append(item)
    entries = []
    for copies in stories.values():
        # The earliest copy is the main link (usually the wire original).
        copies.sort(key=lambda i: (i.article.published or oldest, i.article.id))
        main = copies[0]
        terms = dict(main.rules).get(rule, ())
        others = tuple(dict.fromkeys(
            c.article.source for c in copies[1:] if c.article.source != main.article.source
        ))
        entries.append(DigestEntry(
            title=main.article.title,
            url=main.article.url,
            source=main.article.source,
            published=main.article.published,
            snippet_text=make_snippet(main.article.body, terms),
            terms=terms,
            also_reported_by=others,
            updated=main.is_update,
        ))
    earliest = datetime.min.replace(tzinfo=UTC)
    entries.sort(key=lambda e: e.published or earliest, reverse=True)
    return tuple(entries)


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
    """Send what ``recipient`` has waiting: unsent deliveries first (the same
    messages again), then one new delivery of their pending items.

    Each delivery is claimed before it is sent; one another live run holds is left
    to that run, so two overlapping runs (a catch-up and a cron tick, a `newswatch
    digest` beside the service) never send the same message.
    """
    smtp = config.delivery.smtp
    lease = claim_lease(smtp.timeout if smtp is not None else None)
    try:
        with sending_run() as run:
            for record in store.unsent_deliveries(recipient.email):
                if not _claim(store, record, run, lease):
                    logger.info("%s %s to %s is being sent by another run (%s); "
                                "leaving it to that one", record.kind, record.message_id,
                                record.recipient, record.claimed_by)
                    continue
                _send(store, config, delivery, recipient, record, run, now, report)
            pending = store.pending_items(recipient.email, rules)
            if not pending:
                return
            record = store.create_delivery(recipient.email, pending, _domain(config), kind,
                                           claim=(run, datetime.now(UTC) + lease))
            if record is None:
                logger.warning("%s for %s: items were claimed by another run", kind,
                               recipient.email)
                return
            _send(store, config, delivery, recipient, record, run, now, report)
    except DeliveryError as error:
        report.failed[recipient.email] = str(error)
    except OperationalError as error:
        # The database went away mid-run (locked, restarted): nothing was marked sent
        # that was not sent; the run is retried with backoff like a failed send.
        logger.error("%s for %s interrupted by a database error, will retry: %s",
                     kind, recipient.email, error)
        report.failed[recipient.email] = f"database error: {error}"
        report.attempts[recipient.email] = report.attempts.get(recipient.email, 0) + 1


def _claim(store: Store, record: DeliveryRecord, run: str, lease: timedelta) -> bool:
    """Claim an unsent delivery for ``run``: free, expired, or held by a dead run."""
    now = datetime.now(UTC)
    held_by = record.claimed_by
    abandoned = held_by if held_by is not None and is_abandoned(held_by) else None
    if abandoned is not None:
        logger.info("%s %s to %s was being sent by a run that is gone (%s); taking it over",
                    record.kind, record.message_id, record.recipient, abandoned)
    return store.claim_delivery(record.id, run, now + lease, now=now, replacing=abandoned)


def _send(
    store: Store,
    config: Config,
    delivery: Delivery,
    recipient: Recipient,
    record: DeliveryRecord,
    run: str,
    now: datetime,
    report: DigestReport,
) -> None:
    """Send one claimed delivery; mark it sent, or count the failure (which releases
    the claim). Anything else that stops it releases the claim too."""
    try:
        digest = render_items(store.items_of(record), config, recipient, now, record.kind)
        message = build_message(
            digest,
            sender=config.digest.sender,
            recipient=record.recipient,
            message_id=record.message_id,
            date=now,
            unsubscribe=config.digest.unsubscribe,
        )
        delivery.send(message)
    except DeliveryError as error:
        store.record_send_failure(record.id, str(error))
        report.attempts[record.recipient] = record.attempts + 1
        logger.error(
            "%s %s to %s not sent (attempt %d), will retry: %s",
            record.kind, record.message_id, record.recipient, record.attempts + 1, error,
        )
        raise
    except BaseException:
        with contextlib.suppress(Exception):  # the database may be what failed
            store.release_delivery(record.id, run)
        raise
    store.mark_sent(record.id, at=now)
    report.sent[record.recipient] = report.sent.get(record.recipient, 0) + len(record.article_ids)
    logger.info(
        "%s %s sent to %s with %d articles",
        record.kind, record.message_id, record.recipient, len(record.article_ids),
    )


def _domain(config: Config) -> str:
    return config.digest.sender.rpartition("@")[2] or "newswatch.local"
