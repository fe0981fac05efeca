"""What the spiders ask of the process that runs them, as a port.

A spider never reaches up into orchestration: it is handed an object with these
methods (``crawler.orchestration.context.CrawlContext`` in practice, matched
structurally) and calls them. So the spiders know which URLs are new, where the
CPU-heavy work runs and where an article goes, without importing the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from crawler.domain.dedup import BodyKeys
    from crawler.domain.items import ArticleItem, ExtractedArticle, IngestResult

T = TypeVar("T")


class CrawlServices(Protocol):
    """The crawl's services: new-URL lookup, the CPU pool, robots.txt memory, saving."""

    async def urls_to_fetch(self, links: Sequence[tuple[str, datetime | None]]) -> list[str]:
        """The canonical URLs, in order, not stored yet or updated since fetched."""
        ...

    async def parse(self, function: Callable[..., T], *args: Any) -> T:
        """Run a pure parsing function in the CPU pool."""
        ...

    async def extract(
        self, body: bytes, url: str, content_type: str | None
    ) -> tuple[ExtractedArticle, BodyKeys]:
        """Extract an article page and compute its dedup keys off the reactor."""
        ...

    async def robots_txt(self, origin: str) -> bytes | None:
        """The robots.txt of ``origin`` fetched within the last day, else None."""
        ...

    async def remember_robots_txt(self, origin: str, body: bytes) -> None:
        """Keep a robots.txt just fetched."""
        ...

    async def save(self, item: ArticleItem) -> IngestResult:
        """Match, deduplicate and store one article."""
        ...
