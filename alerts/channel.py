"""What every delivery channel beside email shares: the message it delivers, the
error it raises, and the reading of an HTTP answer into "delivered", "try again
(after …)" or "give up"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from crawler.domain.http import parse_retry_after as read_retry_after

if TYPE_CHECKING:
    from alerts.render import DigestSection

# HTTP answers that a later try may turn into a success; every other 4xx is final.
TEMPORARY_STATUSES = frozenset({408, 425, 429})
# The longest wait a server's Retry-After may impose before the next try (a day):
# a larger or malformed value is capped, never a reason to give up.
MAX_RETRY_AFTER_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """One delivery to one channel: a digest or an alert, as its rule sections.

    ``idempotency_key`` names the delivery, not the attempt: every retry of the same
    delivery carries the same key. ``more_url``, when known, lists everything the
    message leaves out (the web UI's matches page).
    """

    kind: str  # "digest", "alert" or "test"
    channel: str
    recipient: str
    idempotency_key: str
    subject: str
    sections: tuple[DigestSection, ...]
    created: datetime
    more_url: str | None = None
    # The reader's page of mutes and pauses (alerts/feedback.py), when links are made.
    manage_url: str | None = None

    @property
    def story_count(self) -> int:
        return sum(len(section.entries) + section.more for section in self.sections)


class ChannelError(Exception):
    """A delivery that failed. ``temporary``: a later try may succeed (network errors,
    5xx, 408, 429); otherwise the receiver refused it for good (another 4xx, a bad
    URL). ``retry_after``: seconds the receiver asked us to wait, when it said."""

    def __init__(self, message: str, *, temporary: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.retry_after = retry_after
        self.attempts = 0  # the delivery's failed attempts so far, once the ledger counted


class Channel(Protocol):
    """A configured channel: ``send`` delivers the message or raises ChannelError."""

    name: str

    def send(self, message: ChannelMessage) -> None: ...


def is_temporary_status(status: int) -> bool:
    """Whether an HTTP status is worth another try: 5xx, 408, 425 and 429."""
    return status >= 500 or status in TEMPORARY_STATUSES


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped
    at a day; None when absent or unreadable."""
    seconds = read_retry_after(value, now)
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)
