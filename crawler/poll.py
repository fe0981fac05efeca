"""One poll of one source, top to bottom: crawl, then record how it went.

The spider reads the feed, asks which entry URLs are new, fetches and extracts
those pages; the pipeline matches and stores each article. This function wraps
that in what the service needs to know afterwards, and never raises: a failing
source is logged and recorded, and the other sources go on.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from scrapy.utils.defer import deferred_to_future

from spiders.feeds import FeedSpider, PollOutcome

if TYPE_CHECKING:
    from scrapy.crawler import CrawlerRunner

    from crawler.config import SourceConfig
    from crawler.context import CrawlContext

logger = logging.getLogger(__name__)


async def poll_source(
    runner: CrawlerRunner, context: CrawlContext, source: SourceConfig
) -> PollOutcome:
    """Poll ``source`` once; return what it found and stored."""
    started = time.monotonic()
    crawler = runner.create_crawler(FeedSpider)
    try:
        await deferred_to_future(
            runner.crawl(crawler, source=source.name, feed_url=source.feed, context=context)
        )
        outcome: PollOutcome = crawler.spider.outcome  # type: ignore[union-attr]
    except Exception as error:  # one source's crash must not take the service down
        logger.exception("source %s: crawl of %s crashed", source.name, source.feed)
        outcome = PollOutcome(source=source.name, error=f"crawl crashed: {error!r}")
    await context.database.run(context.store.record_poll, source.name, error=outcome.error)
    logger.info(
        "source %s: polled in %.1fs: %d entries, %d new, %d stored, %d page errors%s",
        source.name,
        time.monotonic() - started,
        outcome.entries,
        outcome.new_urls,
        outcome.stored,
        outcome.page_errors,
        f", failed: {outcome.error}" if outcome.error else "",
    )
    return outcome
