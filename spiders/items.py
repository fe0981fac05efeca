"""The records that flow from the spiders to the pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawler.dedup import BodyKeys


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
    """

    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    discovered_url: str | None = None


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
