"""What `newswatch sources add URL` can poll at an address: the address itself when
it is a feed; else the feeds a site or section page announces (``<link
rel="alternate">``), the feeds its links point to, the common feed paths, and the
news sitemaps its robots.txt names; and, for a page with a list of stories, a
listing source with the selector of its article links guessed from the page
(crawler/domain/listing_guess.py). Each is tried once (a trial poll: fetched and
parsed with the service's own parsers, the listing's selector run by the listing
spider's own ``parse_listing``), ranked, with what a poll would find there (entries,
three sample headlines with their dates).

Ranking: a working feed before a sitemap, a sitemap before a listing (a guess);
among feeds, the one whose newest entry is newest, then the one with more entries,
then the order found (announced first). When nothing is found, the page may be a
shell that scripts fill in the browser: ``Discovery.script_built`` says why it looks
so (crawler/domain/script_pages.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html import unescape
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from crawler.domain.listing_guess import MIN_LINKS, guess_listing_links
from crawler.domain.script_pages import looks_script_built
from crawler.domain.urls import canonicalize_url, redact_url
from crawler.orchestration.fetching import fetch_once
from spiders.feedparse import FeedError, parse_feed
from spiders.feeds import discover_feeds
from spiders.listing import parse_listing
from spiders.sitemaps import SitemapError, parse_sitemap

if TYPE_CHECKING:
    from collections.abc import Iterable

    from spiders.feedparse import ParsedFeed

__all__ = ["Candidate", "Chromium", "Discovery", "discover_sources"]

logger = logging.getLogger(__name__)

# Where sites commonly keep a feed they do not announce.
COMMON_FEED_PATHS = ("/feed", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml")
# Feed links taken from a page's <a href> (by their URL or text), at most.
MAX_LINKED_FEEDS = 5
MAX_CANDIDATES = 12
SAMPLES = 3
_FEED_LINK = re.compile(r"<a\b[^<>]*?href=[\"']([^\"'<>]+)[\"'][^<>]*>([^<]{0,80})", re.IGNORECASE)
_FEEDISH = re.compile(r"\b(rss|atom|feed)\b|\.xml$|/feeds?/", re.IGNORECASE)
_TITLE = re.compile(r"<title\b[^>]*>([^<]{1,300})", re.IGNORECASE)
KIND_ORDER = {"feed": 0, "sitemap": 1, "listing": 2}


@dataclass(frozen=True)
class Candidate:
    """A source ``sources add`` can offer: its kind (feed, sitemap or listing), URL,
    title, and what a trial poll found there; a listing's selector of article links."""

    kind: str
    url: str
    title: str
    entries: int
    newest: datetime | None
    samples: tuple[tuple[str, datetime | None], ...] = field(default=())
    how: str = ""  # how it was found: the address itself, announced, linked, …
    links: str = ""  # a listing's CSS selector of its article links
    render: str = "http"  # browser: a listing whose links only a browser shows

    def rank(self) -> tuple[int, float, int]:
        newest = self.newest.timestamp() if self.newest else 0.0
        return (KIND_ORDER[self.kind], -newest, -self.entries)


@dataclass(frozen=True)
class Discovery:
    """What ``discover_sources`` found: the candidates, best first; and when the
    address is a page that looks built by scripts in the browser, why it looks so."""

    candidates: list[Candidate]
    script_built: str | None = None
    rendered: bool = False  # the page was rendered in Chromium to look for links


@dataclass(frozen=True)
class Chromium:
    """The browser that may render a page no source was found in."""

    executable: str
    block: frozenset[str]


def discover_sources(
    url: str, agent: str, timeout: float, chromium: Chromium | None = None
) -> Discovery:
    """Every source found at ``url`` that a trial poll could read, best first; with
    ``chromium``, a page that looks built by scripts is rendered, and its article
    links are looked for as a browser shows them (a ``render: browser`` listing)."""
    fetched = fetch_once(url, agent, timeout)
    if fetched.status >= 400:
        raise OSError(f"{url} answered HTTP {fetched.status}")
    itself = _feed(fetched.body, fetched.url, fetched.content_type, "the address itself")
    if itself is not None:
        return Discovery([itself])
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
    listing = _listing(text, fetched.url) if _is_html(fetched.content_type, text) else None
    if listing is not None:
        candidates.append(listing)
    script_built = None if candidates else looks_script_built(text)
    if script_built and chromium is not None:
        rendered = _rendered_listing(fetched.url, agent, timeout, chromium)
        return Discovery([rendered] if rendered else [], script_built, rendered=True)
    # sorted() is stable: equals keep the order found (announced first).
    return Discovery(sorted(candidates, key=Candidate.rank), script_built)


def _rendered_listing(url: str, agent: str, timeout: float, chromium: Chromium) -> Candidate | None:
    """The page as Chromium renders it, as a listing source (None if it has no list
    of article links then either, or the browser could not render it)."""
    from spiders.browser import render_once  # Playwright, only for such a page

    try:
        html = render_once(
            url,
            executable=chromium.executable,
            agent=agent,
            timeout=timeout,
            block=chromium.block,
        )
    except Exception as error:  # Playwright's errors: the page is said to be script-built
        # Playwright's message: one line of what happened, then its call log.
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        logger.warning("%s could not be rendered in Chromium: %s", redact_url(url), reason)
        return None
    listing = _listing(html, url)
    if listing is None:
        return None
    return replace(
        listing,
        render="browser",
        how="its article links guessed from the page as Chromium renders it",
    )


def _is_html(content_type: str, text: str) -> bool:
    return "html" in content_type.lower() or "<html" in text[:4096].lower()


def _listing(html: str, url: str) -> Candidate | None:
    """The page as a listing source: the best guess at its article links' selector,
    tried with the listing spider's own parser (what a poll would follow)."""
    for guess in guess_listing_links(html, url):
        headlines: dict[str, str] = {}
        for link in parse_listing(html, url, guess.selector).links:
            if len(link.title or "") >= len(headlines.get(link.url, "")):
                headlines[link.url] = link.title or ""
        if len(headlines) < MIN_LINKS:
            continue
        title = _TITLE.search(html)
        return Candidate(
            kind="listing",
            url=url,
            title=" ".join(unescape(title.group(1)).split()) if title else "",
            entries=len(headlines),
            newest=None,
            samples=tuple((text or link, None) for link, text in list(headlines.items())[:SAMPLES]),
            how="its article links guessed from the page",
            links=guess.selector,
        )
    return None


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
