"""`newswatch sources doctor NAME`: one diagnostic poll of a source, step by step,
each step saying what it saw (README, "Source health").

The steps follow a poll's path with the service's own user agent, robots.txt
reading, feed and sitemap parsers and article extractor: the name resolves; robots
allows the URL; the URL answers (status, redirects, content type, size, a
bot-challenge page); the document parses (entries, the newest one's date; an HTML
page where a feed was expected lists the feeds it advertises); and one article page
extracts (title, body length, publish time, language). Nothing is stored, nothing
counts as a poll. Plain ``urllib`` here, not Scrapy: a one-shot command in its own
process, and each step's failure must be named on its own.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
import urllib.robotparser
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from crawler.domain.challenges import detect_challenge
from crawler.domain.failures import BLOCKING_STATUSES
from crawler.domain.health import THIN_BODY_CHARS
from crawler.domain.listing_guess import guess_listing_links
from crawler.domain.script_pages import looks_script_built
from crawler.domain.wording import counted
from crawler.orchestration.fetching import Fetched, fetch_once
from spiders.access import SiteAccess, SiteAccessError
from spiders.base import basic_authorization
from spiders.extract import extract_article
from spiders.feedparse import FeedError, parse_feed
from spiders.feeds import discover_feeds
from spiders.listing import parse_listing
from spiders.settings import user_agent
from spiders.sitemaps import SitemapError, parse_sitemap

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from crawler.domain.config import Config, SourceConfig

OK = "ok"
WARN = "warn"
FAILED = "failed"
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")


@dataclass(frozen=True)
class Step:
    """One step of the diagnosis: its name, how it went, and what it saw."""

    name: str
    result: str  # ok, warn or failed
    detail: str


def diagnose(source: SourceConfig, config: Config) -> Iterator[Step]:
    """The steps of one diagnostic poll of ``source``, in order; it stops at the
    first step that leaves nothing to look at."""
    url = source.url
    agent = user_agent(config.user_agent_contact)
    timeout = config.download_timeout.total_seconds()
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = sorted(
            {str(info[4][0]) for info in socket.getaddrinfo(host, parts.port or 443)}
        )
    except OSError as error:
        yield Step("DNS", FAILED, f"{host} does not resolve: {error}")
        return
    yield Step("DNS", OK, f"{host} → {', '.join(addresses[:4])}")

    try:
        access = SiteAccess.for_config(config, source)
    except SiteAccessError as error:
        yield Step("Access", FAILED, str(error))
        return
    yield from _robots(url, agent, timeout, obey=config.obey_robots_txt, access=access)
    credentials = source.credentials()
    authorization = basic_authorization(*credentials) if credentials else None
    try:
        fetched = fetch_once(url, agent, timeout, authorization, access)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        kind = "timed out" if isinstance(reason, TimeoutError) else "cannot connect"
        yield Step("Fetch", FAILED, f"{kind}: {reason}")
        return
    yield _fetch_step(url, fetched)
    if fetched.status >= 400 or detect_challenge(fetched.status, fetched.headers, fetched.body):
        return
    sample = yield from _parse(source, fetched)
    if sample:
        yield from _sample_page(sample, agent, timeout, access)


def _robots(
    url: str, agent: str, timeout: float, *, obey: bool, access: SiteAccess
) -> Iterator[Step]:
    robots_url = urljoin(url, "/robots.txt")
    try:
        fetched = fetch_once(robots_url, agent, timeout, access=access)
    except (urllib.error.URLError, OSError, ValueError) as error:
        yield Step("robots.txt", WARN, f"could not be read ({error}); polls go on as allowed")
        return
    if fetched.status >= 400:
        yield Step("robots.txt", OK, f"none ({fetched.status}): everything is allowed")
        return
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(fetched.body.decode("utf-8", errors="replace").splitlines())
    if parser.can_fetch(agent, url):
        yield Step("robots.txt", OK, "allows this URL for newswatch's user agent")
    elif obey:
        yield Step("robots.txt", FAILED, "disallows this URL: polls will not fetch it")
    else:
        yield Step("robots.txt", WARN, "disallows this URL (obey_robots_txt is false)")


def _fetch_step(url: str, fetched: Fetched) -> Step:
    hops = "".join(f" → {status} {target}" for status, target in fetched.redirects)
    size = f"{len(fetched.body):,} bytes"
    kind = fetched.content_type.split(";")[0].strip() or "no Content-Type"
    challenge = detect_challenge(fetched.status, fetched.headers, fetched.body)
    if challenge is not None:
        return Step(
            "Fetch",
            FAILED,
            f"HTTP {fetched.status}{hops}: a bot challenge ({challenge.vendor}, "
            f"{challenge.kind}: {challenge.evidence}); the site blocks newswatch",
        )
    if fetched.status in BLOCKING_STATUSES:
        return Step(
            "Fetch",
            FAILED,
            f"HTTP {fetched.status}{hops}: the site refuses newswatch (blocked), {kind}",
        )
    if fetched.status == 410:
        return Step("Fetch", FAILED, f"HTTP 410{hops}: gone; remove or replace the source")
    if fetched.status >= 400:
        return Step("Fetch", FAILED, f"HTTP {fetched.status}{hops}, {kind}")
    permanent = [target for status, target in fetched.redirects if status in (301, 308)]
    if permanent:
        return Step(
            "Fetch",
            WARN,
            f"HTTP {fetched.status} after a permanent redirect{hops}: update the source's "
            f"URL to {permanent[-1]}; {kind}, {size}",
        )
    return Step("Fetch", OK, f"HTTP {fetched.status}{hops}, {kind}, {size}")


def _parse(source: SourceConfig, fetched: Fetched) -> Generator[Step, None, str | None]:
    """Parse the document as its kind; returns one article URL to try, if any."""
    kind = fetched.content_type.split(";")[0].strip().lower()
    if source.feed is not None or (source.site is not None and kind in FEED_TYPES):
        try:
            feed = parse_feed(fetched.body, fetched.url, fetched.content_type)
        except FeedError as error:
            feeds = _advertised_feeds(fetched) if "html" in kind else []
            hint = f"; the page advertises: {', '.join(feeds)}" if feeds else ""
            yield Step("Parse", FAILED, f"not a feed: {error}{hint}")
            return None
        dates = [entry.published for entry in feed.entries if entry.published]
        newest = f", newest {max(dates):%Y-%m-%d %H:%M} UTC" if dates else ", no dates"
        problem = f" (repaired: {feed.problem})" if feed.problem else ""
        result = OK if feed.entries else WARN
        yield Step(
            "Parse",
            result,
            f"{feed.kind or 'feed'} with {counted(len(feed.entries), 'entry', 'entries')}"
            f"{newest}{problem}",
        )
        return feed.entries[0].url if feed.entries else None
    if source.sitemap is not None:
        try:
            sitemap = parse_sitemap(fetched.body)
        except SitemapError as error:
            yield Step("Parse", FAILED, f"not a sitemap: {error}")
            return None
        what = "sitemap index" if sitemap.is_index else "sitemap"
        yield Step(
            "Parse",
            OK if sitemap.entries else WARN,
            f"{what} with {counted(len(sitemap.entries), 'entry', 'entries')}",
        )
        if sitemap.is_index or not sitemap.entries:
            return None
        return sitemap.entries[0].url
    if source.listing is not None:
        step, sample = _listing_step(source, fetched)
        yield step
        return sample
    feeds = _advertised_feeds(fetched)
    yield Step(
        "Parse",
        OK,
        f"an HTML page; it advertises {counted(len(feeds), 'feed')}"
        + (f": {', '.join(feeds)}" if feeds else ""),
    )
    return None


def _listing_step(source: SourceConfig, fetched: Fetched) -> tuple[Step, str | None]:
    """A listing's page read as a poll reads it (the listing spider's own parser):
    how many article links its selector matches; when none, why: a page built by
    JavaScript, or a selector that no longer fits (and the one the page suggests)."""
    text = fetched.body.decode("utf-8", errors="replace")
    page = parse_listing(text, fetched.url, source.links or "a", source.next)
    if page.links:
        pages = f"; a next page: {page.next_url}" if page.next_url else ""
        count = len({link.url for link in page.links})
        return (
            Step(
                "Parse",
                OK,
                f"an HTML page; {counted(count, 'article link')} match {source.links!r}{pages}",
            ),
            page.links[0].url,
        )
    detail = f"an HTML page; no links match {source.links!r}"
    built = looks_script_built(text)
    if built:
        detail += f": the page looks built by JavaScript ({built}); try render: browser"
    else:
        guesses = guess_listing_links(text, fetched.url)
        if guesses:
            detail += (
                f"; the page's article links look like `links: {guesses[0].selector}` "
                f"({counted(len(guesses[0].links), 'link')})"
            )
    return Step("Parse", FAILED, detail), None


def _advertised_feeds(fetched: Fetched) -> list[str]:
    """The feeds an HTML page announces in ``<link rel="alternate">``, as a poll
    reads them (spiders.feeds.discover_feeds)."""
    text = fetched.body.decode("utf-8", errors="replace")
    return discover_feeds(text, fetched.url)[:5]


def _sample_page(url: str, agent: str, timeout: float, access: SiteAccess) -> Iterator[Step]:
    try:
        fetched = fetch_once(url, agent, timeout, access=access)
    except (urllib.error.URLError, OSError, ValueError) as error:
        yield Step("Article", FAILED, f"{url}: {getattr(error, 'reason', error)}")
        return
    challenge = detect_challenge(fetched.status, fetched.headers, fetched.body)
    if challenge is not None:
        yield Step("Article", FAILED, f"{url}: a bot challenge ({challenge.vendor})")
        return
    if fetched.status >= 400:
        yield Step("Article", FAILED, f"{url}: HTTP {fetched.status}")
        return
    article = extract_article(fetched.body, fetched.url)
    chars = len(article.text)
    published = (
        f"published {article.published:%Y-%m-%d %H:%M %Z}" if article.published else "no date"
    )
    missing = [
        what
        for what, absent in (
            ("title", not article.title),
            ("body", chars < THIN_BODY_CHARS),
            ("date", article.published is None),
        )
        if absent
    ]
    detail = (
        f'{url}: "{article.title[:80]}", {chars:,} characters of body, {published}, '
        f"language {article.language or 'unknown'}"
    )
    if missing:
        detail += f"; missing: {', '.join(missing)}"
    yield Step("Article", WARN if missing else OK, detail)
