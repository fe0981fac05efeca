"""The records the store hands back: plain frozen dataclasses, no ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from crawler.domain.items import EMAIL_CHANNEL

if TYPE_CHECKING:
    from crawler.domain.items import ExtractedArticle


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """An extracted article ready to store, with its keys for deduplication."""

    source: str
    article: ExtractedArticle
    aliases: tuple[str, ...] = ()  # other canonical URLs it was reached under
    content_hash: str | None = None
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class KnownArticle:
    """What deduplication needs to know of an article already stored."""

    id: int
    url: str
    title: str
    body: str
    revision: int
    story_id: int | None
    rules: frozenset[str]
    content_hash: str | None
    found_by_body: bool = False  # none of the URLs asked for is its URL or an alias


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article as the digest and the CLI read it back."""

    id: int
    url: str
    source: str
    title: str
    body: str
    published: datetime | None
    authors: tuple[str, ...]
    language: str | None
    story_id: int | None = None


@dataclass(frozen=True, slots=True)
class PendingItem:
    """A matched article not yet in any digest for one recipient, with its rules."""

    article: StoredArticle
    rules: tuple[tuple[str, tuple[str, ...]], ...]  # (rule, terms that hit)
    revision: int = 1  # above 1: an update of an article the reader may have had

    @property
    def is_update(self) -> bool:
        return self.revision > 1


@dataclass(frozen=True, slots=True)
class SentStory:
    """A story a recipient was sent: its key (story id, or minus the article id),
    when it was first sent, and one copy's body."""

    story: int
    sent_at: datetime
    body: str


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A delivered article as a private feed shows it: the story it was delivered
    as (``story``: the story id, or minus the article id for an article on its own),
    its rules with the terms that hit, the newest revision delivered and when."""

    article: StoredArticle
    rules: tuple[tuple[str, tuple[str, ...]], ...]
    story: int
    revision: int
    delivered: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A digest email that was created; ``sent_at`` is None until it was accepted."""

    id: int
    recipient: str
    kind: str
    message_id: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    article_ids: tuple[int, ...]
    claimed_by: str | None = None  # the run sending it now, until claimed_until
    claimed_until: datetime | None = None
    channel: str = EMAIL_CHANNEL


@dataclass(frozen=True, slots=True)
class ChannelState:
    """How one channel stands in the delivery ledger (every recipient on it together).

    ``unsent`` deliveries were created and are waiting to be sent (not accepted, not
    refused; ``retrying`` of them failed at least once) and hold ``unsent_articles``
    articles; ``undelivered`` counts the matched articles of its readers' rules that
    are in no delivery on it yet (what ``pending_items`` would hand the next run), per
    reader. ``pending`` is both together: the articles waiting for this channel.
    ``last_error_at`` is when the delivery holding ``last_error`` was refused, or, for
    one still being retried, since when it waits (the ledger keeps no time per try).
    """

    channel: str
    sent: int = 0
    failed: int = 0
    unsent: int = 0
    retrying: int = 0
    unsent_articles: int = 0
    undelivered: int = 0
    last_sent_at: datetime | None = None
    last_failed_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def pending(self) -> int:
        return self.unsent_articles + self.undelivered


@dataclass(frozen=True, slots=True)
class ReaderAnswer:
    """What one of a reader's links asks for (docs/feedback.md): ``action`` is
    ``more`` / ``less`` (votes on a story under a rule), ``mute`` (a story),
    ``pause`` (``rules`` until ``until``) or ``unsubscribe`` (``rules``, for good)."""

    action: str
    recipient: str
    rules: tuple[str, ...] = ()
    story_id: int | None = None
    article_id: int | None = None
    title: str = ""
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class MutedStory:
    story_id: int
    title: str
    muted_at: datetime
    # A follow-up's mute: the title of the muted story it follows.
    follows: str | None = None


@dataclass(frozen=True, slots=True)
class MutedText:
    """A story a reader muted, with the text of its earliest copy still stored (what
    a follow-up of it is found by)."""

    story: int
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class HeldRule:
    """A rule a reader paused (``until`` set) or unsubscribed from."""

    rule: str
    until: datetime | None
    held_at: datetime


@dataclass(frozen=True, slots=True)
class LearningExample:
    """A story a reader voted on under a rule (``label`` "more" or "less"), or one of
    their ordinary stories of the rule (sent, not voted on: "ordinary"), as the
    learning of their taste reads it: headline, the body's opening, outlet."""

    label: str
    title: str
    body: str
    outlet: str
    language: str | None = None
