"""When a failed or held-back delivery is sent again: scheduler jobs the service adds
after a digest or alert run (crawler/orchestration/service.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.date import DateTrigger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from apscheduler.schedulers.base import BaseScheduler

    from alerts.digest import DigestReport
    from crawler.domain.config import Config

logger = logging.getLogger(__name__)


def schedule_held_digests(
    scheduler: BaseScheduler, report: DigestReport, send: Callable[..., Awaitable[Any]]
) -> None:
    """A digest a channel's throttle held back goes on that channel when it may send
    (the reader's other channels had theirs): ``send(email, channels)`` then."""
    for email, channels in report.held.items():
        scheduler.add_job(
            send,
            DateTrigger(report.retry_at[email], timezone=UTC),
            args=[email, channels],
            id=f"held:digest:{email}",
            name=f"held digest {email}",
            replace_existing=True,
            misfire_grace_time=None,
        )


def schedule_retries(
    scheduler: BaseScheduler,
    report: DigestReport,
    kind: str,
    config: Config,
    send: Callable[..., Awaitable[Any]],
) -> None:
    """A failed send is tried again after 1, 2, 4, … minutes (capped), a few times;
    then its items wait, still pending, for the next scheduled run. ``send`` is the
    run to repeat: with no arguments for an alert, the recipient's email for a
    digest."""
    retry = config.delivery_retry
    for email, attempts in report.attempts.items():
        if attempts >= retry.attempts:
            logger.error(
                "%s to %s failed %d times; it stays pending until the next scheduled run",
                kind,
                email,
                attempts,
            )
            continue
        # In seconds: first_delay × 2**49 is past what a timedelta holds.
        delay = timedelta(
            seconds=min(
                retry.first_delay.total_seconds() * 2.0 ** (attempts - 1),
                retry.max_delay.total_seconds(),
            )
        )
        if (wait := report.not_before.get(email)) is not None:
            delay = max(delay, wait - datetime.now(UTC))  # the receiver's Retry-After
        scheduler.add_job(
            send,
            DateTrigger(datetime.now(UTC) + delay, timezone=UTC),
            args=[] if kind == "alert" else [email],
            id=f"retry:{kind}:{email}",
            name=f"retry {kind} {email}",
            replace_existing=True,
            misfire_grace_time=None,
        )
