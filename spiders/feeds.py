"""The feed spider: RSS, Atom or JSON Feed, given directly or discovered on a homepage.

A ``feed:`` source polls its feed; a ``site:`` source finds the feed that the
homepage announces (``<link rel="alternate">``) once, remembers it, and polls it
from then on, looking again only when the remembered feed stops working.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import urljoin

from parsel import Selector
from scrapy.http import Response, TextResponse

from crawler.domain.failures import FailureClass
from crawler.domain.items import ArticleLink
from crawler.domain.urls import is_web_url, redact_url
from crawler.domain.websub import HubLinks, advertised_hub, link_header_targets
from crawler.domain.wording import counted
from spiders.base import SourceSpider
from spiders.feedparse import FeedError, parse_feed

logger = logging.getLogger(__name__)

FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
)


def discover_feeds(html: str, base_url: str) -> list[str]:
    """Feed URLs a page announces with ``<link rel="alternate">``, best type first."""
    page = Selector(text=html)
    found: list[tuple[int, str]] = []
    for link in page.xpath("//link[@href]"):
        rel = (link.attrib.get("rel") or "").lower().split()
        kind = (link.attrib.get("type") or "").lower().split(";")[0].strip()
        if "alternate" not in rel or kind not in FEED_TYPES:
            continue
        url = urljoin(base_url, link.attrib["href"].strip())
        if is_web_url(url):
            found.append((FEED_TYPES.index(kind), url))
    ordered = [url for _rank, url in sorted(found, key=lambda pair: pair[0])]
    return list(dict.fromkeys(ordered))


class FeedSpider(SourceSpider):
    """Polls a feed (or a homepage's announced feed) and follows its entries."""

    kind = "feed"

    def first_request(self) -> Any:
        if self.source.kind == "feed":
            return self.index_request(self.source.url, self.parse_feed, conditional=True)
        if self.state.discovered_url:
            return self.index_request(
                self.state.discovered_url,
                self.parse_feed,
                conditional=True,
                rediscover_on_failure=True,
                feed_url=self.state.discovered_url,
            )
        return self.homepage_request()

    def homepage_request(self) -> Any:
        return self.index_request(
            self.source.url, self.parse_homepage, conditional=False, what="homepage"
        )

    async def parse_homepage(self, response: Response) -> AsyncIterator[Any]:
        feeds = (
            discover_feeds(response.text, response.url)
            if isinstance(response, TextResponse)
            else []
        )
        if not feeds:
            self.fail(
                response.url,
                'no feed announced on the page (<link rel="alternate">)',
                "homepage",
                kind=FailureClass.UNPARSEABLE,
            )
            return
        logger.info("source %s: discovered feed %s", self.source.name, redact_url(feeds[0]))
        yield self.index_request(feeds[0], self.parse_feed, conditional=False, feed_url=feeds[0])

    async def parse_feed(self, response: Response) -> AsyncIterator[Any]:
        if not self.index_changed(response, discovered_url=response.meta.get("feed_url")):
            return
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        try:
            feed = await self.context.parse(parse_feed, response.body, response.url, content_type)
        except FeedError as error:
            self.outcome.state = None
            # A feed URL that now answers with an HTML page: the feeds that page
            # announces are where the feed went (said in the error, so in the alert).
            feeds = (
                discover_feeds(response.text, response.url)
                if isinstance(response, TextResponse) and "html" in content_type.lower()
                else []
            )
            advertised = f"; the page announces: {', '.join(feeds[:3])}" if feeds else ""
            self.fail(response.url, f"{error}{advertised}", kind=FailureClass.UNPARSEABLE)
            return
        if feed.problem and not feed.entries:
            self.outcome.state = None
            self.fail(
                response.url,
                f"malformed feed with no readable entries: {feed.problem}",
                kind=FailureClass.UNPARSEABLE,
            )
            return
        if feed.problem:
            self.outcome.warnings.append(feed.problem)
            logger.warning(
                "source %s: feed %s is malformed (%s); read %s",
                self.source.name,
                redact_url(response.url),
                feed.problem,
                counted(len(feed.entries), "entry", "entries"),
            )
        self.outcome.websub = advertised_hub(
            link_header_targets(
                [value.decode("latin-1") for value in response.headers.getlist("Link")],
                response.url,
            ),
            HubLinks(feed.hub, feed.self_url),
        )
        if self.outcome.state is not None:
            self.outcome.state = replace(
                self.outcome.state,
                ttl=feed.ttl.total_seconds() if feed.ttl else None,
                update_period=feed.update_period.total_seconds() if feed.update_period else None,
            )
        links = [ArticleLink(e.url, e.title, e.published, e.updated) for e in feed.entries]
        async for request in self.follow(links):
            yield request

    def index_failed(self, failure: Any) -> Any:
        request = failure.request
        if request.meta.get("rediscover_on_failure"):
            logger.warning(
                "source %s: remembered feed %s failed; looking for the feed again",
                self.source.name,
                redact_url(request.url),
            )
            return [self.homepage_request()]
        return super().index_failed(failure)
