"""What a crawl needs from the service, handed to spiders and pipelines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from alerts.rules import RuleMatcher
    from crawler.store import Store
    from crawler.workers import CpuPool, DatabaseThread
    from spiders.items import ArticleItem

T = TypeVar("T")


@dataclass
class CrawlContext:
    """The store, the rules and the worker pools of one running newswatch.

    Spiders ask it which URLs are new and run parsers through it; the pipeline
    saves through it. It keeps every blocking call off the reactor thread.
    """

    store: Store
    matcher: RuleMatcher
    database: DatabaseThread
    cpu: CpuPool

    async def new_urls(self, urls: Sequence[str]) -> list[str]:
        """The canonical URLs, in order, that are not stored yet."""
        return await self.database.run(self.store.new_urls, urls)

    async def parse(self, function: Callable[..., T], *args: Any) -> T:
        """Run a pure parsing function in the CPU pool."""
        return await self.cpu.run(function, *args)

    async def save(self, item: ArticleItem) -> int | None:
        """Match the rules and store the article with its matches; None if known."""
        return await self.database.run(self._match_and_save, item)

    def _match_and_save(self, item: ArticleItem) -> int | None:
        article = item.article
        matches = self.matcher.match(article.title, article.text)
        return self.store.save_article(item.source, article, matches)
