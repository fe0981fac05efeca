"""The long-lived service: one reactor, one scheduler, one CrawlerRunner, for life.

Scrapy's asyncio reactor is installed first and runs until the process ends; the
APScheduler ``AsyncIOScheduler`` runs on the same event loop, and every job is an
``async def`` that awaits a crawl or the digest. Nothing is restarted between
polls. Blocking work goes to the database thread, the CPU pool, or (for the
digest, which waits on SMTP) a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from scrapy.crawler import CrawlerRunner
from scrapy.utils.defer import deferred_from_coro, deferred_to_future
from scrapy.utils.reactor import install_reactor

from alerts.digest import make_delivery, send_pending_alerts, send_pending_digests
from alerts.rules import KeywordRule, RuleMatcher
from crawler.config import cron_trigger
from crawler.context import CrawlContext
from crawler.ingest import ResendPolicy
from crawler.poll import backoff_delay, poll_source
from crawler.workers import CpuPool, DatabaseThread
from spiders.settings import ASYNCIO_REACTOR, scrapy_settings

if TYPE_CHECKING:
    from alerts.digest import DigestReport
    from crawler.config import Config
    from crawler.store import Store
    from spiders.base import PollOutcome

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Extraction and feed parsing import these once in the forkserver, not per task.
PRELOADED_MODULES = ("spiders.extract", "spiders.feedparse")
# How long stop() waits for running jobs (a digest waiting on SMTP) to finish.
SHUTDOWN_GRACE_SECONDS = 60


def purge_old_articles(
    store: Store, config: Config, now: datetime | None = None
) -> tuple[int, int]:
    """Purge bodies and old rows as ``retention`` says; returns (purged, deleted)."""
    now = now or datetime.now(UTC)
    purged, deleted = store.purge(
        bodies_before=now - config.retention.bodies,
        rows_before=now - config.retention.fingerprints,
    )
    if purged or deleted:
        logger.info("retention: %d article bodies purged, %d old articles deleted",
                    purged, deleted)
    return purged, deleted


def install_asyncio_reactor() -> None:
    """Install Scrapy's asyncio reactor; must run before anything imports the reactor."""
    install_reactor(ASYNCIO_REACTOR)


class NewswatchService:
    """The running parts of newswatch, shared by the scheduler jobs and one-shot commands."""

    def __init__(self, config: Config, store: Store, *, cpu_workers: int | None = None) -> None:
        self.config = config
        self.store = store
        self.delivery = make_delivery(config.delivery)
        rules = [KeywordRule(r.name, tuple(r.keywords), tuple(r.exclude)) for r in config.rules]
        self.context = CrawlContext(
            store=store,
            matcher=RuleMatcher(rules),
            database=DatabaseThread(),
            cpu=CpuPool(cpu_workers, preload=PRELOADED_MODULES),
            resend=ResendPolicy(config.resend_updates),
        )
        self.runner: CrawlerRunner = CrawlerRunner(scrapy_settings(config))
        self.scheduler: AsyncIOScheduler | None = None
        self._running_jobs: set[asyncio.Task[Any]] = set()

    async def poll(self, name: str) -> PollOutcome:
        """Poll one source now; a failing source's next poll is pushed back, and new
        articles start the immediate-alert window."""
        source = self.config.source(name)
        outcome = await poll_source(self.runner, self.context, source)
        if (outcome.stored or outcome.revised) and self.config.rule_names(alert="immediate"):
            self._schedule_alerts()
        if outcome.error and self.scheduler is not None:
            delay = backoff_delay(
                source.every, outcome.failures, self.config.max_backoff, outcome.retry_after
            )
            self.scheduler.modify_job(f"poll:{name}", next_run_time=datetime.now(UTC) + delay)
            logger.warning("source %s: %d failed polls in a row; next poll in %s",
                           name, outcome.failures, delay)
        return outcome

    async def poll_all(self, names: Sequence[str] | None = None) -> list[PollOutcome]:
        """Poll the named (default: every enabled) source at once; wait for all."""
        chosen = names or [s.name for s in self.config.sources if s.enabled]
        return list(await asyncio.gather(*(self.poll(name) for name in chosen)))

    async def purge(self) -> tuple[int, int]:
        """Apply the retention settings (see Store.purge)."""
        return await self.context.database.run(purge_old_articles, self.store, self.config)

    async def send_digests(self, email: str | None = None) -> DigestReport:
        """Send the pending digest of one recipient (default: all). SMTP blocks, so
        the run happens in a worker thread; a failed send is retried with backoff."""
        recipients = [self.config.recipient(email)] if email else None
        report = await asyncio.to_thread(
            send_pending_digests, self.store, self.config, self.delivery,
            recipients=recipients,
        )
        logger.info("digest run: %d messages sent, %d recipients failed",
                    report.messages, len(report.failed))
        self._schedule_retries(report, "digest")
        return report

    async def send_alerts(self) -> DigestReport:
        """Send what immediate rules matched since the last alert, throttled."""
        report = await asyncio.to_thread(
            send_pending_alerts, self.store, self.config, self.delivery
        )
        self._schedule_retries(report, "alert")
        if report.retry_at and self.scheduler is not None:
            self._schedule_alerts(at=min(report.retry_at.values()))
        return report

    def _schedule_alerts(self, at: datetime | None = None) -> None:
        """One alert run at the end of the batching window (coalesced if one is due)."""
        if self.scheduler is None or self.scheduler.get_job("alerts") is not None:
            return
        self.scheduler.add_job(
            self._job(self.send_alerts),
            DateTrigger(at or datetime.now(UTC) + self.config.alerts.window, timezone=UTC),
            id="alerts", name="alerts", misfire_grace_time=None, coalesce=True,
        )

    def _schedule_retries(self, report: DigestReport, kind: str) -> None:
        """A failed send is tried again after 1, 2, 4, … minutes (capped), a few
        times; then its items wait, still pending, for the next scheduled run."""
        if self.scheduler is None:
            return
        retry = self.config.delivery_retry
        for email, attempts in report.attempts.items():
            if attempts >= retry.attempts:
                logger.error("%s to %s failed %d times; it stays pending until the next "
                             "scheduled run", kind, email, attempts)
                continue
            delay = min(retry.first_delay * 2 ** (attempts - 1), retry.max_delay)
            job = self.send_alerts if kind == "alert" else self.send_digests
            self.scheduler.add_job(
                self._job(job), DateTrigger(datetime.now(UTC) + delay, timezone=UTC),
                args=[] if kind == "alert" else [email],
                id=f"retry:{kind}:{email}", name=f"retry {kind} {email}",
                replace_existing=True, misfire_grace_time=None,
            )

    def start_scheduler(self) -> None:
        """Schedule every source on its interval and the digest on its cron, then start."""
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_event_loop(), timezone=UTC)
        now = datetime.now(UTC)
        for source in self.config.sources:
            if not source.enabled:
                continue
            scheduler.add_job(
                self._job(self.poll),
                IntervalTrigger(seconds=source.every.total_seconds(), timezone=UTC),
                args=[source.name],
                id=f"poll:{source.name}",
                name=f"poll {source.name}",
                next_run_time=now,  # poll at start, then on the interval
                max_instances=1,  # a source's crawl never overlaps itself
                coalesce=True,  # polls missed while busy collapse into one
                misfire_grace_time=int(source.every.total_seconds()),
            )
        for recipient in self.config.all_recipients():
            scheduler.add_job(
                self._job(self.send_digests),
                cron_trigger(recipient.schedule, recipient.timezone),
                args=[recipient.email],
                id=f"digest:{recipient.email}",
                name=f"digest {recipient.email}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
            )
        scheduler.add_job(
            self._job(self.purge),
            IntervalTrigger(hours=24, timezone=UTC),
            id="retention",
            name="retention",
            next_run_time=now + timedelta(minutes=5),  # not in the busy first minutes
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        self.scheduler = scheduler
        logger.info(
            "newswatch running: %d sources, %d rules, %d recipients",
            sum(s.enabled for s in self.config.sources), len(self.config.rules),
            len(self.config.all_recipients()),
        )

    def _job(self, job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
        """Wrap a scheduler job: log a crash and keep the schedule going; track it for stop."""
        name = getattr(job, "__name__", "job")

        async def run(*args: Any) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running_jobs.add(task)
            try:
                await job(*args)
            except asyncio.CancelledError:
                logger.info("job %s%s cancelled by shutdown", name, args)
            except Exception:
                logger.exception("job %s%s failed", name, args)
            finally:
                self._running_jobs.discard(task)  # type: ignore[arg-type]

        run.__name__ = name
        return run

    async def stop(self) -> None:
        """Scheduler first (no new jobs), then running crawls, then the worker pools.

        Running crawls are stopped gracefully (pages in flight are finished and
        stored) before the scheduler is shut down, so their jobs end normally.
        """
        if self.scheduler is not None:
            self.scheduler.pause()
        await deferred_to_future(self.runner.stop())
        # Let jobs whose crawl just ended record their outcome before the pools close.
        if self._running_jobs:
            await asyncio.wait(list(self._running_jobs), timeout=SHUTDOWN_GRACE_SECONDS)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        await self.context.drain()
        await asyncio.to_thread(self.context.database.shutdown)
        await asyncio.to_thread(self.context.cpu.shutdown)
        self.store.close()
        logger.info("newswatch stopped")


def run_service(service_factory: Callable[[], NewswatchService]) -> int:
    """Run until SIGINT/SIGTERM; stop cleanly and return the exit code."""
    from twisted.internet import reactor

    service = service_factory()
    reactor.callWhenRunning(service.start_scheduler)  # type: ignore[attr-defined]
    # Twisted's own SIGINT/SIGTERM handlers stop the reactor; "before shutdown"
    # triggers run first and the reactor waits for the Deferred they return.
    reactor.addSystemEventTrigger(  # type: ignore[attr-defined]
        "before", "shutdown", lambda: deferred_from_coro(service.stop())
    )
    reactor.run()  # type: ignore[attr-defined]
    return 0


def run_once(
    service_factory: Callable[[], NewswatchService],
    step: Callable[[NewswatchService], Awaitable[T]],
) -> T:
    """Run one ``step`` on the reactor (for one-shot commands), stop cleanly, return its result."""
    from twisted.internet import reactor

    service = service_factory()
    result: dict[str, Any] = {}

    async def main() -> None:
        try:
            result["value"] = await step(service)
        except BaseException as error:
            result["error"] = error
        finally:
            await service.stop()
            reactor.stop()  # type: ignore[attr-defined]

    reactor.callWhenRunning(lambda: deferred_from_coro(main()))  # type: ignore[attr-defined]
    reactor.run(installSignalHandlers=True)  # type: ignore[attr-defined]
    if "error" in result:
        raise result["error"]
    return result["value"]
