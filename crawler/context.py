"""What a crawl needs from the service, handed to spiders and pipelines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from crawler.ingest import ResendPolicy, ingest_article

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from alerts.rules import RuleMatcher
    from crawler.ingest import IngestResult, StoryAssigner
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
    stories: StoryAssigner | None = None
    resend: ResendPolicy = ResendPolicy.HEADLINE

    async def urls_to_fetch(self, links: Sequence[tuple[str, datetime | None]]) -> list[str]:
        """The canonical URLs, in order, not stored yet or updated since fetched."""
        return await self.database.run(self.store.urls_to_fetch, links)

    async def parse(self, function: Callable[..., T], *args: Any) -> T:
        """Run a pure parsing function in the CPU pool."""
        return await self.cpu.run(function, *args)

    async def save(self, item: ArticleItem) -> IngestResult:
        """Match the rules, deduplicate and store the article with its matches."""
        return await self.database.run(self._match_and_save, item)

    def _match_and_save(self, item: ArticleItem) -> IngestResult:
        article = item.article
        matches = self.matcher.match(article.title, article.text)
        return ingest_article(
            self.store, item, matches, stories=self.stories, resend=self.resend
        )
