"""A channel's throttle: at most ``max_per_minute`` and ``max_per_hour`` messages on
one channel, counted over every recipient, from the ledger's sent deliveries.

A throttled channel sends nothing now and says when it may: what waits stays
pending in the ledger, never dropped, and the next message holds all of it. Within
a process the check and the send are one step under the channel's lock, so runs in
several threads (an alert run beside a digest run) never go over the limit between
them; a second process (a `newswatch digest` beside the service) may, by a message.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from crawler.domain.config import Config
    from crawler.storage.store import Store

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def channel_lock(channel: str) -> threading.Lock:
    """The lock held while a message on ``channel`` is checked against the throttle
    and sent."""
    with _locks_lock:
        return _locks.setdefault(channel, threading.Lock())


def next_send_at(store: Store, config: Config, channel: str, now: datetime) -> datetime | None:
    """None when a message may go on ``channel`` now; else the earliest time one may
    (when the oldest message of a full window leaves it)."""
    settings = next((c for c in config.channels if c.name == channel), None)
    if settings is None:
        return None
    waits = []
    for limit, span in ((settings.max_per_minute, MINUTE), (settings.max_per_hour, HOUR)):
        if limit is None:
            continue
        count, oldest = store.count_sent_on_channel(channel, now - span)
        if count >= limit:
            waits.append((oldest or now) + span)
    return max(waits, default=None)
