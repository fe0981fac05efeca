"""The feed spider: read an RSS/Atom feed, fetch each new entry's page, extract it.

The spider only reads and yields. Which URLs are new, and where extracted
articles go, is the business of the ``CrawlContext`` it is given.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import DNSLookupError, TCPTimedOutError, TimeoutError

from crawler.urls import canonicalize_url
from spiders.extract import extract_article
from spiders.feedparse import FeedEntry, FeedError, parse_feed
from spiders.items import ArticleItem

if TYPE_CHECKING:
    from twisted.python.failure import Failure

    from crawler.context import CrawlContext

logger = logging.getLogger(__name__)


@dataclass
class PollOutcome:
    """What one poll of one source did, read by the poll orchestrator afterwards."""

    source: str
    entries: int = 0
    new_urls: int = 0
    stored: int = 0
    duplicates: int = 0
    page_errors: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


class FeedSpider(scrapy.Spider):
    """Polls one feed source: the feed, then every entry page not stored yet."""

    name = "feed"

    def __init__(self, *, source: str, feed_url: str, context: CrawlContext, **kwargs: Any):
        super().__init__(name=f"feed:{source}", **kwargs)
        self.source = source
        self.feed_url = feed_url
        self.context = context
        self.outcome = PollOutcome(source=source)

    async def start(self) -> AsyncIterator[Any]:
        yield scrapy.Request(
            self.feed_url, callback=self.parse_feed, errback=self.feed_failed, dont_filter=True
        )

    async def parse_feed(self, response: Response) -> AsyncIterator[Any]:
        try:
            content_type = response.headers.get("Content-Type", b"").decode("latin-1")
            feed = await self.context.parse(parse_feed, response.body, response.url, content_type)
        except FeedError as error:
            self._fail(response.url, str(error))
            return
        if feed.problem and not feed.entries:
            self._fail(response.url, f"malformed feed with no readable entries: {feed.problem}")
            return
        if feed.problem:
            self.outcome.warnings.append(feed.problem)
            logger.warning(
                "source %s: feed %s is malformed (%s); read %d entries",
                self.source, response.url, feed.problem, len(feed.entries),
            )
        entries = {canonicalize_url(entry.url): entry for entry in feed.entries}
        self.outcome.entries = len(entries)
        new_urls = await self.context.new_urls(list(entries))
        self.outcome.new_urls = len(new_urls)
        for url in new_urls:
            entry = entries[url]
            yield scrapy.Request(
                entry.url,
                callback=self.parse_article,
                errback=self.article_failed,
                cb_kwargs={"entry": entry},
            )

    async def parse_article(self, response: Response, entry: FeedEntry) -> AsyncIterator[Any]:
        if not isinstance(response, TextResponse):
            self.outcome.page_errors += 1
            logger.warning(
                "source %s: article %s skipped: not a text page (%s)", self.source, response.url,
                response.headers.get("Content-Type", b"?").decode("latin-1"),
            )
            return
        article = await self.context.parse(extract_article, response.text, response.url)
        if not article.title and entry.title:
            article = replace(article, title=entry.title)
        if article.published is None and entry.published is not None:
            article = replace(article, published=entry.published)
        yield ArticleItem(
            source=self.source,
            fetched_url=response.url,
            article=article,
            feed_published=entry.published,
            feed_title=entry.title,
        )

    def feed_failed(self, failure: Failure) -> None:
        self._fail(failure.request.url, describe_failure(failure))  # type: ignore[attr-defined]

    def article_failed(self, failure: Failure) -> None:
        self.outcome.page_errors += 1
        logger.warning(
            "source %s: article %s failed: %s",
            self.source, failure.request.url, describe_failure(failure),  # type: ignore[attr-defined]
        )

    def _fail(self, url: str, reason: str) -> None:
        self.outcome.error = reason
        logger.error("source %s: feed %s failed: %s", self.source, url, reason)


def describe_failure(failure: Failure) -> str:
    """A one-line reason for a failed request, for logs and the source's state."""
    if failure.check(HttpError):
        response = failure.value.response
        return f"HTTP {response.status}"
    if failure.check(DNSLookupError):
        return "DNS lookup failed"
    if failure.check(TimeoutError, TCPTimedOutError):
        return "timed out"
    return f"{failure.type.__name__}: {failure.getErrorMessage()}"
