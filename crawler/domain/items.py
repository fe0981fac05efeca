"""The records several stages share: what the spiders extract and yield, what a poll
did, what ingest made of an article, and which rules it matched."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from crawler.domain.failures import is_blocking

if TYPE_CHECKING:
    from crawler.domain.dedup import BodyKeys
    from crawler.domain.failures import FailureClass
    from crawler.domain.websub import HubLinks


# The channel every recipient has: email (SMTP or the outbox). Other channels are
# named in the configuration (`channels[].name`); the delivery ledger is kept per
# (recipient, channel).
EMAIL_CHANNEL = "email"


@dataclass(frozen=True, slots=True)
class ExtractedArticle:
    """What extraction reads from one article page.

    ``url`` is the canonical URL (the page's own same-site ``rel=canonical`` or
    ``og:url`` when present, else the fetched URL, canonicalised). ``published`` and
    ``updated`` are timezone-aware and in UTC, or None when the page does not say.
    """

    url: str
    title: str
    text: str
    published: datetime | None = None
    updated: datetime | None = None
    authors: tuple[str, ...] = ()
    language: str | None = None
    image: str | None = None
    description: str | None = None
    section: str | None = None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ArticleLink:
    """A link to an article found in an index, with what the index says about it."""

    url: str
    title: str | None = None
    published: datetime | None = None
    updated: datetime | None = None  # when the index says the page last changed


@dataclass(frozen=True, slots=True)
class FetchState:
    """What is remembered of a source's last good poll, to ask for changes only.

    ``etag`` and ``last_modified`` go back to the server as ``If-None-Match`` and
    ``If-Modified-Since``; ``content_hash`` catches an unchanged body from servers
    that send no validators; ``discovered_url`` is the feed found on a homepage.

    The rest, in seconds, is how long the server asked us to stay away (None: it
    did not say), for the next poll's time (crawler/domain/scheduling.py):
    ``Retry-After`` and ``Cache-Control: max-age`` of the index response, and a
    feed's ``<ttl>`` and ``sy:updatePeriod``/``sy:updateFrequency``.
    """

    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    discovered_url: str | None = None
    retry_after: float | None = None
    max_age: float | None = None
    ttl: float | None = None
    update_period: float | None = None


@dataclass(frozen=True, slots=True)
class ArticleItem:
    """An extracted article together with the source that led to it."""

    source: str
    fetched_url: str
    article: ExtractedArticle
    feed_published: datetime | None = None
    feed_title: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # The body's dedup keys, computed next to extraction in a CPU worker (None: ingest
    # computes them itself).
    keys: BodyKeys | None = None


@dataclass(frozen=True, slots=True)
class ChallengeSeen:
    """A bot-challenge page a poll met (crawler.domain.challenges): its URL, the
    wall's vendor, the status it came with and the marker that gave it away."""

    url: str
    vendor: str
    status: int
    evidence: str


@dataclass
class PollOutcome:
    """What one poll of one source did, read by the poll orchestrator afterwards.

    A failed poll has ``error`` (the reason users read), ``error_class`` (what kind
    of failure, crawler.domain.failures) and, when the server answered,
    ``status``. Bot-challenge pages are counted in ``challenges`` (an
    article page's also in ``page_errors``: not stored, fetched again next poll)
    and the first is kept as evidence in ``challenge``.
    """

    source: str
    entries: int = 0
    new_urls: int = 0
    stored: int = 0
    copies: int = 0  # other outlets' word-for-word copies, stored in a known story
    duplicates: int = 0
    revised: int = 0
    skipped: int = 0  # pages that are no article (binary, not text): not retried
    page_errors: int = 0
    not_modified: bool = False  # the server answered 304
    unchanged: bool = False  # same body as last time (server without validators)
    deferred: bool = False  # more new links than max_articles: the rest come next poll
    error: str | None = None
    error_class: FailureClass | None = None
    status: int | None = None  # the HTTP status of the failed fetch, if one came
    challenges: int = 0  # responses that were a bot wall's challenge page
    challenge: ChallengeSeen | None = None  # the first of them
    retry_after: float | None = None  # seconds the server asked us to stay away
    failures: int = 0  # failed polls in a row, this one included (set by the poll)
    state: FetchState | None = None  # to remember for the next conditional poll
    warnings: list[str] = field(default_factory=list)
    # Where a permanent redirect (301/308) of the source URL led: the source moved
    # (crawler/domain/health.py).
    moved_to: str | None = None
    # Set by the poll: the source's health state changed after it (operators are due).
    health_changed: bool = False
    # Set when the feed was read: the WebSub hub and topic it advertises (both None
    # when it advertises none); None when it was not read (304, unchanged, failed).
    websub: HubLinks | None = None

    @property
    def blocked(self) -> bool:
        """The source refused this poll: a bot challenge or a blocking status
        (401/403/429/503) instead of its index."""
        return self.error is not None and is_blocking(self.error_class, self.status)

    @property
    def settled(self) -> int:
        """New links dealt with for good: stored, known, revised, skipped or failed."""
        return (
            self.stored
            + self.copies
            + self.duplicates
            + self.revised
            + self.skipped
            + self.page_errors
        )


class Outcome(StrEnum):
    NEW = "new"
    COPY = "copy"  # another outlet's word-for-word copy, stored in the story of the first
    DUPLICATE = "duplicate"
    REVISED = "revised"


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: Outcome
    article_id: int | None
    story_id: int | None = None


@dataclass(frozen=True)
class RuleMatch:
    """A rule that matched, with its terms that hit, as written in the rule.

    Keywords come in config order, query terms in query order; a prefix keeps
    its `*`. A stemmed term is followed by the article's words it matched
    through their stem ("election", "elections"), so the digest highlights them.
    """

    rule: str
    terms: tuple[str, ...]
