"""What parsing a feed gives: FeedEntry, ParsedFeed, and FeedError when there is no feed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


class FeedError(Exception):
    """The response is not a feed newswatch can read; the message says why."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One item of a feed.

    ``url`` is an absolute http(s) URL, or ``""`` when the entry has no web link
    (such entries are only in ``ParsedFeed.all_entries``). ``published`` is the
    publish time, else the update time, in UTC; ``id`` is the feed's guid/id,
    else the URL, else a hash of the entry's text. ``title``, ``author`` and
    ``summary`` are plain text with whitespace collapsed.
    """

    url: str
    title: str | None
    published: datetime | None
    id: str | None = None
    author: str | None = None
    summary: str | None = None
    updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What a feed holds, in document order; ``entries`` are the ones to crawl."""

    all_entries: tuple[FeedEntry, ...]
    problem: str | None = None  # set when the feed was malformed but partly readable
    title: str | None = None
    link: str | None = None  # the site the feed belongs to
    kind: str | None = None  # "rss" (0.9x, 1.0, 2.0), "atom" or "json"
    encoding: str | None = None  # the charset the body was read in
    # WebSub: the hub the feed names (rel="hub") and its own URL (rel="self").
    hub: str | None = None
    self_url: str | None = None
    # How often the feed says it changes: RSS <ttl>, and RSS 1.0 syndication's
    # sy:updatePeriod / sy:updateFrequency (crawler.domain.scheduling).
    ttl: timedelta | None = None
    update_period: timedelta | None = None

    @property
    def entries(self) -> tuple[FeedEntry, ...]:
        """The entries with an http(s) link: the ones the spider fetches."""
        return tuple(entry for entry in self.all_entries if entry.url)

    @property
    def skipped(self) -> int:
        """How many entries have no http(s) link and so cannot be crawled."""
        return sum(1 for entry in self.all_entries if not entry.url)
