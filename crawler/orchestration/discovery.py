"""What `newswatch sources add URL` can poll at an address: the address itself when
it is a feed; else the feeds a site or section page announces (``<link
rel="alternate">``), the feeds its links point to, the common feed paths, and the
news sitemaps its robots.txt names; each tried once (a trial poll: fetched and
parsed with the service's own parsers), ranked, with what a poll would find there
(entries, three sample headlines with their dates).

Ranking: a working feed before a sitemap; among feeds, the one whose newest entry is
newest, then the one with more entries, then the order found (announced first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from crawler.domain.urls import canonicalize_url
from crawler.orchestration.fetching import fetch_once
from spiders.feedparse import FeedError, parse_feed
from spiders.feeds import discover_feeds
from spiders.sitemaps import SitemapError, parse_sitemap

if TYPE_CHECKING:
    from collections.abc import Iterable

    from spiders.feedparse import ParsedFeed

__all__ = ["Candidate", "discover_sources"]

# Where sites commonly keep a feed they do not announce.
COMMON_FEED_PATHS = ("/feed", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml")
# Feed links taken from a page's <a href> (by their URL or text), at most.
MAX_LINKED_FEEDS = 5
MAX_CANDIDATES = 12
SAMPLES = 3
_FEED_LINK = re.compile(r"<a\b[^<>]*?href=[\"']([^\"'<>]+)[\"'][^<>]*>([^<]{0,80})", re.IGNORECASE)
_FEEDISH = re.compile(r"\b(rss|atom|feed)\b|\.xml$|/feeds?/", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    """A source ``sources add`` can offer: its kind (feed or sitemap), URL, title, and
    what a trial poll found there."""

    kind: str
    url: str
    title: str
    entries: int
    newest: datetime | None
    samples: tuple[tuple[str, datetime | None], ...] = field(default=())
    how: str = ""  # how it was found: the address itself, announced, linked, …

    def rank(self) -> tuple[int, float, int]:
        newest = self.newest.timestamp() if self.newest else 0.0
        return (0 if self.kind == "feed" else 1, -newest, -self.entries)


def discover_sources(url: str, agent: str, timeout: float) -> list[Candidate]:
    """Every source found at ``url`` that a trial poll could read, best first."""
    fetched = fetch_once(url, agent, timeout)
    if fetched.status >= 400:
        raise OSError(f"{url} answered HTTP {fetched.status}")
    itself = _feed(fetched.body, fetched.url, fetched.content_type, "the address itself")
    if itself is not None:
        return [itself]
    tried: dict[str, str] = {}
    text = fetched.body.decode("utf-8", errors="replace")
    for found in discover_feeds(text, fetched.url):
        tried.setdefault(found, "announced by the page")
    for found in _linked_feeds(text, fetched.url):
        tried.setdefault(found, "linked from the page")
    root = f"{urlsplit(fetched.url).scheme}://{urlsplit(fetched.url).netloc}"
    for path in COMMON_FEED_PATHS:
        tried.setdefault(root + path, "a common feed path")
    candidates: list[Candidate] = []
    seen: set[str] = set()
    for candidate_url, how in list(tried.items())[:MAX_CANDIDATES]:
        feed = _try_feed(candidate_url, agent, timeout, how)
        if feed is not None and canonicalize_url(feed.url) not in seen:
            seen.add(canonicalize_url(feed.url))
            candidates.append(feed)
    candidates.extend(_news_sitemaps(root, agent, timeout))
    # sorted() is stable: equals keep the order found (announced first).
    return sorted(candidates, key=Candidate.rank)


def _linked_feeds(html: str, base: str) -> list[str]:
    links = []
    for href, label in _FEED_LINK.findall(html[:2_000_000]):
        if _FEEDISH.search(href) or _FEEDISH.search(label):
            absolute = urljoin(base, href.strip())
            if absolute.startswith(("http://", "https://")):
                links.append(absolute)
    return list(dict.fromkeys(links))[:MAX_LINKED_FEEDS]


def _try_feed(url: str, agent: str, timeout: float, how: str) -> Candidate | None:
    try:
        fetched = fetch_once(url, agent, timeout)
    except (OSError, ValueError):
        return None
    if fetched.status >= 400:
        return None
    return _feed(fetched.body, fetched.url, fetched.content_type, how)


def _feed(body: bytes, url: str, content_type: str, how: str) -> Candidate | None:
    """The trial poll of a feed: parsed as the service parses it; None for anything
    that is not a feed with at least one entry."""
    try:
        feed: ParsedFeed = parse_feed(body, url, content_type)
    except FeedError:
        return None
    if not feed.entries:
        return None
    dated = [entry.published for entry in feed.entries if entry.published]
    newest_first = sorted(
        feed.entries,
        key=lambda entry: entry.published or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    return Candidate(
        kind="feed",
        url=url,
        title=feed.title or "",
        entries=len(feed.entries),
        newest=max(dated) if dated else None,
        samples=tuple(
            (entry.title or entry.url, entry.published) for entry in newest_first[:SAMPLES]
        ),
        how=how,
    )


def _news_sitemaps(root: str, agent: str, timeout: float) -> list[Candidate]:
    """The sitemaps robots.txt names that read as news sitemaps (entries with a
    publication date or title)."""
    try:
        robots = fetch_once(f"{root}/robots.txt", agent, timeout)
    except (OSError, ValueError):
        return []
    if robots.status >= 400:
        return []
    named = [
        line.split(":", 1)[1].strip()
        for line in robots.body.decode("utf-8", errors="replace").splitlines()
        if line.lower().startswith("sitemap:")
    ]
    found = []
    for sitemap_url in named[:MAX_LINKED_FEEDS]:
        try:
            fetched = fetch_once(sitemap_url, agent, timeout)
            sitemap = parse_sitemap(fetched.body)
        except (OSError, ValueError, SitemapError):
            continue
        news = [entry for entry in sitemap.entries if entry.published or entry.title]
        if sitemap.is_index or not news:
            continue
        news.sort(key=lambda e: e.published or datetime.min.replace(tzinfo=UTC), reverse=True)
        found.append(
            Candidate(
                kind="sitemap",
                url=fetched.url,
                title="news sitemap",
                entries=len(news),
                newest=news[0].published,
                samples=tuple(
                    (entry.title or entry.url, entry.published) for entry in news[:SAMPLES]
                ),
                how="named by robots.txt",
            )
        )
    return found


def _samples(
    headlines: Iterable[tuple[str, datetime | None]],
) -> tuple[tuple[str, datetime | None], ...]:
    """The first ``SAMPLES`` (headline, publish time) pairs, newest first as given."""
    return tuple(headline for _, headline in zip(range(SAMPLES), headlines, strict=False))
