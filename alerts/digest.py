"""The digest run: pending matches → one email per recipient → marked delivered.

Exactly-once, as far as SMTP allows: a delivery row with a deterministic
Message-ID and its items are committed *before* sending; the row is marked sent
only after the server accepted the message. A send that fails leaves the row
unsent, and the next run retries that very message (same items, same
Message-ID) before it builds a new one. A crash after the server accepted but
before the commit resends the same Message-ID once: at least once, never two
different digests with the same articles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from alerts.delivery import DeliveryError, OutboxDelivery, SmtpDelivery
from alerts.render import (
    DigestEntry,
    DigestSection,
    RenderedDigest,
    build_message,
    make_snippet,
    render_digest,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alerts.delivery import Delivery
    from crawler.config import Config, DeliveryConfig
    from crawler.store import DeliveryRecord, PendingItem, Store

logger = logging.getLogger(__name__)


@dataclass
class DigestReport:
    """What a digest run did, per recipient."""

    sent: dict[str, int] = field(default_factory=dict)  # recipient → articles sent
    failed: dict[str, str] = field(default_factory=dict)  # recipient → last error

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


def send_pending_digests(
    store: Store, config: Config, delivery: Delivery, now: datetime | None = None
) -> DigestReport:
    """Send every recipient what is pending for them; one failing recipient stops no other."""
    now = now or datetime.now(UTC)
    report = DigestReport()
    rules = [rule.name for rule in config.rules]
    for recipient in config.digest.recipients:
        try:
            for record in store.unsent_deliveries(recipient):
                _send(store, config, delivery, record, now, report)
            pending = store.pending_items(recipient, rules)
            if not pending:
                continue
            record = store.create_delivery(recipient, pending, _domain(config))
            if record is None:
                logger.warning("digest for %s: items were claimed by another run", recipient)
                continue
            _send(store, config, delivery, record, now, report)
        except DeliveryError as error:
            report.failed[recipient] = str(error)
    return report


def preview_digests(store: Store, config: Config, now: datetime | None = None) -> dict[
    str, RenderedDigest
]:
    """What each recipient would get now, without creating or sending anything."""
    now = now or datetime.now(UTC)
    rules = [rule.name for rule in config.rules]
    previews = {}
    for recipient in config.digest.recipients:
        items = [
            *(
                item
                for record in store.unsent_deliveries(recipient)
                for item in store.items_of(record)
            ),
            *store.pending_items(recipient, rules),
        ]
        if items:
            previews[recipient] = render_items(items, config, now)
    return previews


def render_items(items: Sequence[PendingItem], config: Config, now: datetime) -> RenderedDigest:
    """Render the digest of ``items``: one section per rule, in the configured order."""
    return render_digest(
        group_by_rule(items, [rule.name for rule in config.rules]),
        timezone=config.digest.timezone,
        subject_template=config.digest.subject,
        generated_at=now,
        template_dirs=[config.digest.templates] if config.digest.templates else [],
    )


def group_by_rule(items: Sequence[PendingItem], rule_order: Sequence[str]) -> list[DigestSection]:
    """Sections in ``rule_order`` (rules no longer configured last), newest first in each."""
    by_rule: dict[str, list[DigestEntry]] = {}
    for item in items:
        for rule, terms in item.rules:
            article = item.article
            by_rule.setdefault(rule, []).append(
                DigestEntry(
                    title=article.title,
                    url=article.url,
                    source=article.source,
                    published=article.published,
                    snippet_text=make_snippet(article.body, terms),
                    terms=terms,
                )
            )
    order = {name: position for position, name in enumerate(rule_order)}
    oldest = datetime.min.replace(tzinfo=UTC)
    return [
        DigestSection(
            rule=rule,
            entries=tuple(sorted(entries, key=lambda e: e.published or oldest, reverse=True)),
        )
        for rule, entries in sorted(by_rule.items(), key=lambda kv: order.get(kv[0], len(order)))
    ]


def _send(
    store: Store,
    config: Config,
    delivery: Delivery,
    record: DeliveryRecord,
    now: datetime,
    report: DigestReport,
) -> None:
    digest = render_items(store.items_of(record), config, now)
    message = build_message(
        digest,
        sender=config.digest.sender,
        recipient=record.recipient,
        message_id=record.message_id,
        date=now,
    )
    try:
        delivery.send(message)
    except DeliveryError as error:
        store.record_send_failure(record.id, str(error))
        logger.error(
            "digest %s to %s not sent (attempt %d), will retry at the next run: %s",
            record.message_id, record.recipient, record.attempts + 1, error,
        )
        raise
    store.mark_sent(record.id)
    report.sent[record.recipient] = report.sent.get(record.recipient, 0) + len(record.article_ids)
    logger.info(
        "digest %s sent to %s with %d articles",
        record.message_id, record.recipient, len(record.article_ids),
    )


def _domain(config: Config) -> str:
    return config.digest.sender.rpartition("@")[2] or "newswatch.local"
