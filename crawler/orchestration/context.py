"""What a crawl needs from the service, handed to spiders and pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from alerts.rules import MatchDocument
from crawler.domain.items import IngestResult
from crawler.orchestration.ingest import ResendPolicy, ingest_batch
from crawler.orchestration.workers import BatchWriter
from spiders.hostgate import HostGate
from spiders.prepare import extract_with_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from alerts.rules import RuleMatcher
    from crawler.domain.dedup import BodyKeys
    from crawler.domain.items import ArticleItem, ExtractedArticle, RuleMatch
    from crawler.orchestration.ingest import StoryAssigner
    from crawler.orchestration.workers import CpuPool, DatabaseThread
    from crawler.storage.store import Store

T = TypeVar("T")

# How long a fetched robots.txt is used before it is fetched again (RFC 9309: a
# crawler should not use a cached copy for more than 24 hours).
ROBOTS_TXT_MAX_AGE = timedelta(hours=24)


@dataclass
class CrawlContext:
    """The store, the rules and the worker pools of one running newswatch.

    Spiders ask it which URLs are new and run parsers through it; the pipeline
    saves through it. It keeps every blocking call off the reactor thread.
    """

    store: Store
    # Compiled on first use (on the database thread, where matching runs): a poll that
    # finds nothing new, such as a cron `newswatch crawl`, never pays for it.
    make_matcher: Callable[[], RuleMatcher]
    database: DatabaseThread
    cpu: CpuPool
    stories: StoryAssigner | None = None
    resend: ResendPolicy = ResendPolicy.HEADLINE
    # Run on the database thread before each batch is stored: brings the story index
    # up to date with the articles other processes (scale-out workers, a `crawl` next
    # to `run`) stored meanwhile, so their copies of a story join it.
    before_save: Callable[[], None] | None = None
    # Per-host concurrency and delay across all the polls of this process (each poll
    # is its own crawl, whose download slots see only its own requests).
    hosts: HostGate = field(default_factory=HostGate)
    _writer: BatchWriter[ArticleItem, IngestResult] = field(init=False, repr=False)
    _robots: dict[str, tuple[bytes, datetime]] = field(default_factory=dict, init=False, repr=False)
    _matcher: RuleMatcher | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._writer = BatchWriter(self._match_and_save, self.database)

    @property
    def matcher(self) -> RuleMatcher:
        if self._matcher is None:
            self._matcher = self.make_matcher()
        return self._matcher

    @matcher.setter
    def matcher(self, matcher: RuleMatcher) -> None:
        self._matcher = matcher

    async def urls_to_fetch(self, links: Sequence[tuple[str, datetime | None]]) -> list[str]:
        """The canonical URLs, in order, not stored yet or updated since fetched."""
        return await self.database.run(self.store.urls_to_fetch, links)

    async def parse(self, function: Callable[..., T], *args: Any) -> T:
        """Run a pure parsing function in the CPU pool."""
        return await self.cpu.run(function, *args)

    async def extract(
        self, body: bytes, url: str, content_type: str | None
    ) -> tuple[ExtractedArticle, BodyKeys]:
        """Extract an article page and compute its dedup keys, in one CPU-pool task
        (the body is normalised once, in the worker, not on the database thread)."""
        params = self.stories.params if self.stories is not None else None
        return await self.cpu.run(extract_with_keys, body, url, content_type, params)

    async def robots_txt(self, origin: str) -> bytes | None:
        """The robots.txt of ``origin`` (``scheme://host:port``) fetched within the last
        day, from memory or the database (shared by later processes), else None."""
        now = datetime.now(UTC)
        cached = self._robots.get(origin)
        if cached is None:
            cached = await self.database.run(self.store.robots_txt, origin)
            if cached is not None:
                self._robots[origin] = cached
        if cached is None or cached[1] <= now - ROBOTS_TXT_MAX_AGE:
            return None
        return cached[0]

    async def remember_robots_txt(self, origin: str, body: bytes) -> None:
        """Keep a robots.txt just fetched, for the polls of the next day."""
        now = datetime.now(UTC)
        self._robots[origin] = (body, now)
        await self.database.run(self.store.save_robots_txt, origin, body, now)

    async def save(self, item: ArticleItem) -> IngestResult:
        """Match the rules, deduplicate and store the article with its matches.

        Articles from all running crawls are written in batches, one transaction each.
        """
        return await self._writer.submit(item)

    async def drain(self) -> None:
        """Write every article submitted so far (before the database thread stops)."""
        await self._writer.drain()

    def _match_and_save(self, items: list[ArticleItem]) -> list[IngestResult]:
        if self.before_save is not None:
            self.before_save()
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
