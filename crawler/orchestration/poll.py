"""One poll of one source, top to bottom: state → crawl → remember how it went.

The spider fetches the source's index conditionally, asks which article URLs are
new, fetches and extracts those pages; the pipeline matches and stores each
article. This function wraps that in what the service needs to know afterwards,
and never raises: a failing source is logged and recorded, and the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.utils.defer import deferred_to_future

from crawler.domain.items import FetchState, PollOutcome
from crawler.domain.urls import redact_text
from crawler.orchestration.health import record_poll_health
from spiders.kinds import SPIDERS

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from scrapy.crawler import CrawlerRunner

    from crawler.domain.config import SourceConfig
    from crawler.orchestration.context import CrawlContext

logger = logging.getLogger(__name__)


async def poll_source(
    runner: CrawlerRunner, context: CrawlContext, source: SourceConfig
) -> PollOutcome:
    """Poll ``source`` once; return what it found and stored."""
    started = time.monotonic()
    state = await context.database.run(context.store.fetch_state, source.name)
    crawler = runner.create_crawler(SPIDERS[source.kind])
    try:
        await deferred_to_future(runner.crawl(crawler, source=source, state=state, context=context))
        outcome: PollOutcome = crawler.spider.outcome  # type: ignore[union-attr]
    except Exception as error:  # one source's crash must not take the service down
        logger.exception("source %s: crawl of %s crashed", source.name, source.url)
        outcome = PollOutcome(source=source.name, error=redact_text(f"crawl crashed: {error!r}"))
    outcome.failures = await context.database.run(
        context.store.record_poll,
        source.name,
        error=outcome.error,
        state=state_to_remember(outcome),
    )
    try:
        change = await context.database.run(
            record_poll_health, context.store, source, outcome, datetime.now(UTC)
        )
        outcome.health_changed = change is not None and change.changed
    except Exception as error:  # the poll is recorded; its health can wait for the next
        logger.error(
            "source %s: its health could not be assessed: %s",
            source.name,
            redact_text(str(error)),
        )
    logger.info(
        "source %s: %s in %.1fs", source.name, describe(outcome), time.monotonic() - started
    )
    return outcome


def poll_turn(
    runner: CrawlerRunner, context: CrawlContext, source: SourceConfig
) -> AbstractAsyncContextManager[None]:
    """The source's turn at its host, to hold around a poll: no more polls of one host
    crawl at once than the host takes requests at once (``domains.<host>.concurrency``
    or ``concurrent_requests_per_domain``), the others waiting in turn. Taken before
    one of the service's poll slots, so that sources crowding one host wait for that
    host, not for a slot another host's poll could use (spiders.hostgate)."""
    host = urlsplit(source.url).hostname or ""
    settings = runner.settings
    configured = settings.getdict("DOWNLOAD_SLOTS").get(host, {})
    default = settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")
    return context.hosts.poll_turn(host, int(configured.get("concurrency", default)))


async def stop_crawls(runner: CrawlerRunner, deadline: float) -> None:
    """Stop every running crawl gracefully (pages in flight finish and are stored),
    waiting until ``deadline`` (the event loop's time) at most. A stop that reaches a
    crawl still starting is lost (its crawl would never report back), so each is
    stopped once its engine runs."""
    loop = asyncio.get_running_loop()
    stopped: set[int] = set()
    while runner.crawlers and loop.time() < deadline:
        for crawler in list(runner.crawlers):
            engine = getattr(crawler, "_engine", None)
            if id(crawler) not in stopped and engine is not None and engine.running:
                stopped.add(id(crawler))
                await deferred_to_future(crawler.stop())
        await asyncio.sleep(0.1)


def state_to_remember(outcome: PollOutcome) -> FetchState | None:
    """What the next poll may take for granted; None keeps what is remembered.

    Validators are remembered only after a clean poll: if an article page failed
    or links were left for later, the next poll must read the index again, even
    if the server says it has not changed, or those articles would be lost.
    """
    if outcome.state is None:
        return None
    if (
        outcome.error is None
        and outcome.page_errors == 0
        and not outcome.deferred
        and finished_every_page(outcome)
    ):
        return outcome.state
    # The discovered feed and the server's hints hold whatever became of the pages.
    return replace(outcome.state, etag=None, last_modified=None, content_hash=None)


def finished_every_page(outcome: PollOutcome) -> bool:
    """Every new link was fetched and settled (a crawl stopped by a shutdown was not)."""
    return outcome.settled >= outcome.new_urls


def describe(outcome: PollOutcome) -> str:
    """One line for the log and the CLI."""
    if outcome.error:
        return f"FAILED: {outcome.error}"
    if outcome.not_modified:
        return "not modified (304)"
    if outcome.unchanged:
        return "unchanged"
    parts = [f"{outcome.entries} links", f"{outcome.new_urls} new", f"{outcome.stored} stored"]
    if outcome.copies:
        parts.append(_count(outcome.copies, "copy of a known story", "copies of known stories"))
    if outcome.duplicates:
        parts.append(_count(outcome.duplicates, "already stored", "already stored"))
    if outcome.revised:
        parts.append(f"{outcome.revised} revised")
    parts.append(_count(outcome.page_errors, "page error", "page errors"))
    if outcome.challenges:
        parts.append(_count(outcome.challenges, "bot challenge", "bot challenges"))
    return ", ".join(parts)


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def backoff_delay(
    every: timedelta, failures: int, cap: timedelta, retry_after: float | None = None
) -> timedelta:
    """How long to wait before polling a failing source again.

    The interval doubles with each failure in a row (2×, 4×, 8× ``every``, …) up to
    ``cap``; a server's Retry-After is honoured when it asks for longer, up to ``cap``.
    """
    if failures <= 0:
        return every
    longest = max(cap, every)
    delay = every * (2 ** min(failures, 16))
    if retry_after is not None:
        # Capped as seconds first: a Retry-After of 10**12 s is past what a timedelta holds.
        delay = max(delay, timedelta(seconds=min(retry_after, longest.total_seconds())))
    return min(delay, longest)
