"""Item pipelines: where extracted articles leave the spider for the database."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from crawler.domain.items import Outcome

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.domain.items import ArticleItem
    from spiders.base import SourceSpider

logger = logging.getLogger(__name__)


class ArticlePipeline:
    """Matches the rules against each article and stores both, off the reactor thread."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArticlePipeline:
        return cls(crawler)

    async def process_item(self, item: ArticleItem) -> ArticleItem:
        spider: SourceSpider = self.crawler.spider  # type: ignore[assignment]
        try:
            result = await spider.context.save(item)
        except Exception:
            # Not stored: count it as a page error, so the poll does not remember the
            # index as seen and the article is fetched again next time.
            spider.outcome.page_errors += 1
            logger.exception("source %s: could not store %s", item.source, item.article.url)
            return item
        if result.outcome is Outcome.NEW:
            spider.outcome.stored += 1
            logger.info("source %s: stored %s", item.source, item.article.url)
        elif result.outcome is Outcome.COPY:
            spider.outcome.copies += 1
        elif result.outcome is Outcome.REVISED:
            spider.outcome.revised += 1
        else:
            spider.outcome.duplicates += 1
            logger.debug("source %s: %s already stored", item.source, item.article.url)
        return item
