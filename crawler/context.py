"""What a crawl needs from the service, handed to spiders and pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from alerts.rules import MatchDocument
from crawler.ingest import IngestResult, ResendPolicy, ingest_batch
from crawler.workers import BatchWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from alerts.rules import RuleMatch, RuleMatcher
    from crawler.ingest import StoryAssigner
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
    _writer: BatchWriter[ArticleItem, IngestResult] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._writer = BatchWriter(self._match_and_save, self.database)

    async def urls_to_fetch(self, links: Sequence[tuple[str, datetime | None]]) -> list[str]:
        """The canonical URLs, in order, not stored yet or updated since fetched."""
        return await self.database.run(self.store.urls_to_fetch, links)

    async def parse(self, function: Callable[..., T], *args: Any) -> T:
        """Run a pure parsing function in the CPU pool."""
        return await self.cpu.run(function, *args)

    async def save(self, item: ArticleItem) -> IngestResult:
        """Match the rules, deduplicate and store the article with its matches.

        Articles from all running crawls are written in batches, one transaction each.
        """
        return await self._writer.submit(item)

    async def drain(self) -> None:
        """Write every article submitted so far (before the database thread stops)."""
        await self._writer.drain()

    def _match_and_save(self, items: list[ArticleItem]) -> list[IngestResult]:
        batch = [(item, self._matches(item)) for item in items]
        return ingest_batch(self.store, batch, stories=self.stories, resend=self.resend)

    def _matches(self, item: ArticleItem) -> list[RuleMatch]:
        article = item.article
        document = MatchDocument(
            title=article.title,
            body=article.text,
            author=", ".join(article.authors),
            source=item.source,
            url=article.url,
            language=article.language,
        )
        return self.matcher.match(document)
