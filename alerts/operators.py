"""Telling the people who run newswatch which sources it cannot trust (README,
"Source health"): one message when a source goes bad, one when it recovers, never
more than one per source per ``operators.min_gap``: a source that changes state
faster is summed up in the next message ("changed state 6 times; now blocked").

What is due comes from each source's kept health and what its operators were last
told (``Store.health_records``); a message goes to every address of
``operators.recipients`` (email) and every channel of ``operators.channels``
(webhook: ``kind`` "health"; apprise: one chat message). A source is marked told
once one of them took the message; a message none took is tried again at the next
run. Notices are not articles: they go through no ledger, and a crash between a send
and its record can repeat one.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from alerts.channel import ChannelError, ChannelMessage
from alerts.delivery import DeliveryError
from alerts.render import DigestEntry, DigestSection
from crawler.domain.health import State
from crawler.domain.wording import counted

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import timedelta

    from alerts.channel import Channel
    from alerts.delivery import Delivery
    from crawler.domain.config import Config
    from crawler.domain.health import Health
    from crawler.storage.health import HealthRecord
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)

HEALTH_KIND = "health"
TROUBLE = "trouble"
RECOVERED = "recovered"
FLAPPING = "flapping"


@dataclass(frozen=True)
class Notice:
    """What operators are told of one source."""

    source: str
    kind: str  # trouble, recovered or flapping (back to the state they were told of)
    health: Health
    was: State  # the state they were told of before
    changes: int  # changes of state since

    def headline(self) -> str:
        state = self.health.state.value
        if self.kind == RECOVERED:
            return f"{self.source} recovered: ok again (was {self.was.value})"
        if self.kind == FLAPPING:
            return f"{self.source} changed state {self.changes} times; now {state}"
        return f"{self.source} is {state}"

    def details(self) -> str:
        """The reason, since when, and the evidence, one line."""
        since = self.health.since
        when = f" since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if since else ""
        evidence = "; ".join(
            f"{key.replace('_', ' ')}: {value}"
            for key, value in self.health.evidence.items()
            if value not in (None, "", [])
        )
        flapping = f" ({self.changes} changes of state since last told)" if self.changes > 1 else ""
        return f"{self.health.reason}{when}{flapping}." + (
            f" Evidence: {evidence}." if evidence else ""
        )


def due_notices(records: Sequence[HealthRecord], now: datetime, min_gap: timedelta) -> list[Notice]:
    """The notices due at ``now``: a source whose state differs from the one its
    operators were told of (nothing told: ok), or that changed state twice or more
    and is back to it; at most one per source per ``min_gap``."""
    notices = []
    for record in records:
        told = record.told_state or State.OK
        current = record.health.state
        if record.told_at is not None and now - record.told_at < min_gap:
            continue
        if current is not told:
            kind = RECOVERED if current is State.OK else TROUBLE
        elif record.changes >= 2 and record.told_at is not None:
            # Back to what they were told, after changes they were not told of. Never
            # told anything (operators configured later): the changes are history.
            kind = FLAPPING
        else:
            continue
        notices.append(Notice(record.source, kind, record.health, told, record.changes))
    return notices


def notices_subject(notices: Sequence[Notice]) -> str:
    """E.g. "newswatch: 2 sources in trouble, 1 recovered"."""
    bad = sum(notice.health.state.bad for notice in notices)
    good = len(notices) - bad
    parts = []
    if bad:
        parts.append(f"{counted(bad, 'source')} in trouble")
    if good:
        parts.append(f"{good} recovered")
    return "newswatch: " + ", ".join(parts)


def notices_text(notices: Sequence[Notice]) -> str:
    lines = [notices_subject(notices).removeprefix("newswatch: ").capitalize() + ":", ""]
    for notice in notices:
        lines += [f"- {notice.headline()}", f"  {notice.details()}", ""]
    lines.append('newswatch status shows every source\'s state; README, "Source health".')
    return "\n".join(lines)


def notices_email(
    notices: Sequence[Notice], *, sender: str, recipient: str, now: datetime
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = notices_subject(notices)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message.set_content(notices_text(notices))
    return message


def notices_message(notices: Sequence[Notice], channel: str, now: datetime) -> ChannelMessage:
    """The notices as a channel message: one entry per source."""
    entries = tuple(
        DigestEntry(
            title=notice.headline(),
            url=str(
                notice.health.evidence.get("url") or notice.health.evidence.get("moved_to") or ""
            ),
            source=notice.source,
            published=notice.health.since,
            snippet_text=notice.details(),
            terms=(),
            rule=notice.health.state.value,
        )
        for notice in notices
    )
    return ChannelMessage(
        kind=HEALTH_KIND,
        channel=channel,
        recipient="operators",
        idempotency_key=f"health.{secrets.token_hex(8)}",
        subject=notices_subject(notices),
        sections=(DigestSection(rule="Sources", entries=entries),),
        created=now,
    )


def tell_operators(
    store: Store,
    config: Config,
    delivery: Delivery,
    channels: Mapping[str, Channel],
    now: datetime | None = None,
) -> list[Notice]:
    """Send the notices due now to every operator; returns those sent (marked told)."""
    operators = config.operators
    if not operators.enabled:
        return []
    now = now or datetime.now(UTC)
    configured = {source.name for source in config.sources if source.tell_operators}
    records = [record for record in store.health_records() if record.source in configured]
    notices = due_notices(records, now, operators.min_gap)
    if not notices:
        return []
    took = 0
    for address in operators.recipients:
        message = notices_email(notices, sender=config.digest.sender, recipient=address, now=now)
        try:
            delivery.send(message)
            took += 1
        except DeliveryError as error:
            logger.error("operators: the notice to %s failed: %s", address, error)
    for name in operators.channels:
        channel = channels.get(name)
        if channel is None:  # make_channels logged why it could not be built
            continue
        try:
            channel.send(notices_message(notices, name, now))
            took += 1
        except ChannelError as error:
            logger.error("operators: the notice on channel %s failed: %s", name, error)
    if not took:
        return []  # tried again at the next run
    for notice in notices:
        store.mark_told(notice.source, notice.health.state, now)
    logger.info("operators told: %s", "; ".join(notice.headline() for notice in notices))
    return notices
