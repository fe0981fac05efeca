"""The long-lived service: one reactor, one scheduler, one CrawlerRunner, for life.

Scrapy's asyncio reactor is installed first and runs until the process ends; the
APScheduler ``AsyncIOScheduler`` runs on the same event loop, and every job is an
``async def`` that awaits a crawl or the digest; nothing is restarted between polls.
Blocking work goes to the database thread, the CPU pool or (SMTP) a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

# Imported at the top of the stack, not by the first poll's crawler deep inside the
# reactor: Scrapy names its deprecated TLS classes through inspect.stack(), whose
# cost grows with the depth of the stack (~0.1 s more from inside a poll).
import scrapy.core.downloader.handlers.http11  # noqa: F401
from apscheduler.events import EVENT_JOB_SUBMITTED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from scrapy.crawler import CrawlerRunner

from alerts.rules import RuleMatcher, rules_from_config
from crawler.domain.config import ConfigError, config_warnings, cron_trigger, load_config
from crawler.domain.stories import StoryIndex
from crawler.domain.urls import redact_text
from crawler.domain.wording import counted
from crawler.orchestration.context import CrawlContext
from crawler.orchestration.delivery_retries import schedule_held_digests, schedule_retries
from crawler.orchestration.health import sweep_stale_health
from crawler.orchestration.ingest import ResendPolicy
from crawler.orchestration.metrics import Metrics
from crawler.orchestration.poll import poll_source, poll_turn, stop_crawls
from crawler.orchestration.polling import RHYTHM_REFRESH, AdaptivePolling
from crawler.orchestration.retention import purge_old_articles
from crawler.orchestration.startup import describe_database_error, is_database_unreachable
from crawler.orchestration.story_index import StoryIndexFollower, load_story_index
from crawler.orchestration.websub import WebSubSubscriber
from crawler.orchestration.workers import PRELOADED_MODULES, CpuPool, DatabaseThread
from spiders.rendering import close_browser
from spiders.settings import PollSettings, scrapy_settings

if TYPE_CHECKING:
    from pathlib import Path

    from alerts.delivery import Delivery
    from alerts.digest import DigestReport
    from crawler.domain.config import Config, SourceConfig
    from crawler.domain.items import PollOutcome
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)
T = TypeVar("T")

# How long stop() waits for running jobs (a digest waiting on SMTP) to finish.
SHUTDOWN_GRACE_SECONDS = 20
# Polls crawling at once, per CPU worker and at least; more wait their turn. Each
# crawl holds its pages (~2.5 MB at most) until a worker has parsed them, and the
# workers are what limits a crawl of fast sites. Polls that start together end
# together, and while the next ones fetch their feeds the workers run dry; 6 per
# worker overlap them enough: the benchmark crawls ~6% faster with 12 than with 8 on
# 2 cores, for ~10 MB more. Slow sites hold few pages each and are served by the
# per-site concurrency.
POLLS_PER_CPU_WORKER = 6
MIN_CONCURRENT_POLLS = 12
# How often the configuration file is checked for changes.
CONFIG_CHECK_SECONDS = 2
# Sources whose polls stopped are assessed, and operators told, this often.
HEALTH_CHECK_SECONDS = 60


def _read_config(path: Path) -> tuple[Config, RuleMatcher]:
    """The configuration file, validated, and its rules' matcher (blocks). What in it
    would do nothing is logged, as at the start."""
    config = load_config(path)
    matcher = RuleMatcher(rules_from_config(config))
    for warning in config_warnings(config, path):
        logger.warning("%s", warning)
    return config, matcher


def _mtime(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except OSError:
        return None


def _sizes(config: Config) -> str:
    """``3 sources, 1 rule, 2 recipients``: what a configuration puts to work."""
    return ", ".join(
        (
            counted(sum(s.enabled for s in config.sources), "source"),
            counted(len(config.rules), "rule"),
            counted(len(config.all_recipients()), "recipient"),
        )
    )


class NewswatchService:
    """The running parts of newswatch, shared by the scheduler jobs and one-shot commands."""

    # This process polls and moves its own poll jobs to each source's next poll; a
    # reload re-times those whose plan changed (not so the scale-out roles, roles.py).
    plans_polls = True

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        cpu_workers: int | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.config_path = config_path
        self._config_stamp = _mtime(config_path)
        self._delivery: Delivery | None = None
        rules = rules_from_config(config)
        self.context = CrawlContext(
            store=store,
            make_matcher=functools.partial(RuleMatcher, rules),
            database=DatabaseThread(),
            cpu=CpuPool(cpu_workers, PRELOADED_MODULES, config.workers_idle_close),
            resend=ResendPolicy(config.resend_updates),
            stories=(stories := load_story_index(store, config.story_window)),
            before_save=StoryIndexFollower(store, stories),
        )
        self._scrapy_settings = scrapy_settings(config)
        self.runner: CrawlerRunner = CrawlerRunner(PollSettings(self._scrapy_settings))
        self.metrics = Metrics(
            store, lambda: [s.name for s in self.config.sources if s.enabled], lambda: self.config
        )
        self.metrics.instrument(self.runner)
        self.scheduler: AsyncIOScheduler | None = None
        self.websub = WebSubSubscriber(
            lambda: self.config, self.context, self.metrics, lambda: self.scheduler
        )
        self._running_jobs: set[asyncio.Task[Any]] = set()
        self._poll_slots: asyncio.Semaphore | None = None
        # One digest run per recipient at a time in this process (a catch-up run, a
        # cron tick and a retry wait for each other); across processes the ledger's
        # claims keep any two runs from sending the same message.
        self._digest_runs: dict[str, asyncio.Lock] = {}
        # One alert run at a time: a retry and the window's run never overlap.
        self._alert_run = asyncio.Lock()
        # One operators' notice run at a time: two would both find the same notices due.
        self._operator_run = asyncio.Lock()
        self._reload_run = asyncio.Lock()
        # Time before the start is no source's silence (crawler.orchestration.health).
        self._started = datetime.now(UTC)
        self.polling = AdaptivePolling(store, config, self.context.database)

    @property
    def delivery(self) -> Delivery:
        """SMTP or the outbox, as configured. Made (and the digest stack imported) when
        first needed: a `newswatch crawl` sends nothing."""
        if self._delivery is None:
            from alerts.digest import make_delivery

            self._delivery = make_delivery(self.config.delivery)
        return self._delivery

    async def poll(self, name: str) -> PollOutcome:
        """Poll one source now; a failing source's next poll is pushed back, and new
        articles start the immediate-alert window."""
        source = self.config.source(name)
        if self._poll_slots is None:
            self._poll_slots = asyncio.Semaphore(
                max(MIN_CONCURRENT_POLLS, POLLS_PER_CPU_WORKER * self.context.cpu.workers)
            )
        async with poll_turn(self.runner, self.context, source), self._poll_slots:
            self.metrics.poll_started(name)
            outcome = await poll_source(self.runner, self.context, source)
        self.metrics.poll_finished(outcome)
        self.websub.poll_finished(source, outcome)
        if (outcome.stored or outcome.revised) and self.config.rule_names(alert="immediate"):
            self._schedule_alerts()
        if self.scheduler is not None:  # by its rhythm, or backed off after a failure
            net = self._safety_net(source)
            await self.polling.after_poll(self.scheduler, source, outcome, at_least=net)
        if outcome.health_changed:
            self._tell_operators_soon()
        return outcome

    def _safety_net(self, source: SourceConfig) -> timedelta | None:
        """The interval a source a WebSub hub pushes is polled at (None: not pushed)."""
        return self.websub.poll_interval(source) if self.websub.pushes(source) else None

    def _tell_operators_soon(self) -> None:
        """After a poll (its source's health may have changed): the operators' notice
        run in a second, coalesced with any other due, rather than at the next
        minute's health check."""
        if (
            not self.config.operators.enabled
            or self.scheduler is None
            or self.scheduler.get_job("operators") is not None
        ):
            return
        self.scheduler.add_job(
            self._job(self.tell_operators),
            DateTrigger(datetime.now(UTC) + timedelta(seconds=1), timezone=UTC),
            id="operators",
            name="tell operators",
            misfire_grace_time=None,
            coalesce=True,
        )

    async def tell_operators(self) -> None:
        """Send the operators the notices due (alerts/operators.py); SMTP blocks, so
        in a worker thread."""
        from alerts.channel_sending import make_channels
        from alerts.operators import tell_operators

        operators = self.config.operators
        async with self._operator_run:
            await asyncio.to_thread(
                tell_operators,
                self.store,
                self.config,
                self.delivery,
                make_channels(self.config, only=operators.channels),
            )

    async def poll_all(
        self,
        names: Sequence[str] | None = None,
        on_done: Callable[[PollOutcome], None] | None = None,
    ) -> list[PollOutcome]:
        """Poll the named (default: every enabled) source at once; wait for all.
        ``on_done`` hears of each poll as it finishes (for a progress bar)."""
        chosen = names or [s.name for s in self.config.sources if s.enabled]

        async def poll_one(name: str) -> PollOutcome:
            outcome = await self.poll(name)
            if on_done is not None:
                on_done(outcome)
            return outcome

        return list(await asyncio.gather(*(poll_one(name) for name in chosen)))

    async def purge(self) -> tuple[int, int]:
        """Apply the retention settings (see Store.purge); trim the story index."""
        if isinstance(self.context.stories, StoryIndex):
            await self.context.database.run(self.context.stories.prune, datetime.now(UTC))
        return await self.context.database.run(purge_old_articles, self.store, self.config)

    async def send_digests(
        self, email: str | None = None, channels: Sequence[str] | None = None
    ) -> DigestReport:
        """Send the pending digest of one recipient (default: all), on ``channels`` of
        theirs only if given. SMTP blocks, so the run happens in a worker thread; a
        failed send is retried with backoff."""
        from alerts.digest import send_pending_digests

        recipients = [self.config.recipient(email)] if email else None
        if recipients and channels is not None:
            mine = tuple(name for name in recipients[0].channels if name in channels)
            recipients = [dataclasses.replace(recipients[0], channels=mine)]
        async with self._digest_runs.setdefault(email or "", asyncio.Lock()):
            report = await asyncio.to_thread(
                send_pending_digests,
                self.store,
                self.config,
                self.delivery,
                recipients=recipients,
            )
        logger.info(
            "digest run: %s sent, %s failed",
            counted(report.messages, "message"),
            counted(len(report.failed), "recipient"),
        )
        self.metrics.deliveries_finished(report, "digest")
        if self.scheduler is not None:
            send = self._job(self.send_digests)
            schedule_retries(self.scheduler, report, "digest", self.config, send)
            schedule_held_digests(self.scheduler, report, send)
        return report

    async def send_alerts(self) -> DigestReport:
        """Send what immediate rules matched since the last alert, throttled."""
        from alerts.digest import send_pending_alerts

        async with self._alert_run:
            report = await asyncio.to_thread(
                send_pending_alerts, self.store, self.config, self.delivery
            )
        self.metrics.deliveries_finished(report, "alert")
        if self.scheduler is not None:
            schedule_retries(
                self.scheduler, report, "alert", self.config, self._job(self.send_alerts)
            )
            if report.retry_at:
                self._schedule_alerts(at=min(report.retry_at.values()))
        return report

    async def watch_health(self) -> None:
        """Assess the sources whose polls stopped, then tell the operators what is
        due (alerts/operators.py)."""
        now = datetime.now(UTC)
        try:
            await self.context.database.run(
                sweep_stale_health, self.store, self.config, now, self._started
            )
        except Exception as error:  # the operators still hear what is due
            logger.error("source health: the sweep failed: %s", redact_text(str(error)))
        if self.config.operators.enabled:
            await self.tell_operators()

    def _schedule_alerts(self, at: datetime | None = None) -> None:
        """One alert run at the end of the batching window (coalesced if one is due):
        every match of the window goes out in one message per recipient and channel.
        ``at``: when a throttle lets the held-back alerts go."""
        if self.scheduler is None or self.scheduler.get_job("alerts") is not None:
            return
        self.scheduler.add_job(
            self._job(self.send_alerts),
            DateTrigger(at or datetime.now(UTC) + self.config.alerts.window, timezone=UTC),
            id="alerts",
            name="alerts",
            misfire_grace_time=None,
            coalesce=True,
        )

    def start_scheduler(self) -> None:
        """Schedule the polls, the digests and the housekeeping, then start.

        Digest windows missed while the service was down are sent once now (the
        store remembers each recipient's last digest run); missed polls collapse
        into one at start (paced; a source resumes the schedule it had before).
        """
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_event_loop(), timezone=UTC)
        self.scheduler = scheduler
        scheduler.add_listener(self.metrics.poll_due, EVENT_JOB_SUBMITTED)
        self.polling.load_planned()  # where each source's schedule was before a restart
        self.schedule_jobs(scheduler, datetime.now(UTC))
        scheduler.start()
        self.context.cpu.start_idle_clock()
        scheduler.add_job(
            self._job(self.catch_up_missed_digests), id="catch-up", name="catch up missed digests"
        )
        logger.info("newswatch running: %s", _sizes(self.config))

    def schedule_jobs(self, scheduler: AsyncIOScheduler, now: datetime) -> None:
        """Add the polls, the digests and the housekeeping jobs (not the catch-up)."""
        self._schedule_sources(scheduler, now)
        self._schedule_digests(scheduler)
        self.websub.schedule(scheduler, now)
        scheduler.add_job(
            self._job(self.purge),
            IntervalTrigger(hours=24, timezone=UTC),
            id="retention",
            name="retention",
            next_run_time=now + timedelta(minutes=5),  # not in the busy first minutes
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._job(self.polling.refresh_soon),
            IntervalTrigger(seconds=RHYTHM_REFRESH.total_seconds(), timezone=UTC),
            id="rhythms",
            name="source rhythms and poll plans",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._job(self.watch_health),
            IntervalTrigger(seconds=HEALTH_CHECK_SECONDS, timezone=UTC),
            id="health",
            name="source health and operators",
            next_run_time=now + timedelta(seconds=HEALTH_CHECK_SECONDS),
            max_instances=1,
            coalesce=True,
        )
        if self.config_path is not None:
            scheduler.add_job(
                self._job(self.reload_if_changed),
                IntervalTrigger(seconds=CONFIG_CHECK_SECONDS, timezone=UTC),
                id="config-watch",
                name="config watch",
                max_instances=1,
                coalesce=True,
            )

    def _schedule_sources(self, scheduler: AsyncIOScheduler, now: datetime) -> None:
        """Make the poll jobs match the configured sources: add new ones (polled at
        once, or when planned before a restart), drop removed or disabled ones, give
        changed intervals their new trigger. A job's next run stays as it is (a
        backoff or a server's Retry-After in force is kept): the reload re-times the
        sources whose plan changed (AdaptivePolling.retime)."""
        wanted = {f"poll:{s.name}": s for s in self.config.sources if s.enabled}
        # Looked up here, once: before the scheduler starts, its get_job scans a list.
        jobs = {job.id: job for job in scheduler.get_jobs()}
        poll_job = self._job(self.scheduled_poll)  # one for all: 10,000 cost 6 MB
        for job in jobs.values():
            if job.id.startswith("poll:") and job.id not in wanted:
                job.remove()
                logger.info("source %s: no longer polled", job.id.removeprefix("poll:"))
        for job_id, source in wanted.items():
            seconds = self.websub.poll_interval(source).total_seconds()  # pushed: slower
            trigger = IntervalTrigger(seconds=seconds, timezone=UTC)
            existing = jobs.get(job_id)
            if existing is None:
                scheduler.add_job(
                    poll_job,
                    trigger,
                    args=[source.name],
                    id=job_id,
                    name=f"poll {source.name}",
                    next_run_time=self.polling.first_poll(source, now),
                    max_instances=1,  # a source's crawl never overlaps itself
                    coalesce=True,  # polls missed while busy collapse into one
                    misfire_grace_time=int(source.every.total_seconds()),
                )
            elif existing.trigger.interval != trigger.interval:
                existing.modify(trigger=trigger)

    def _schedule_digests(self, scheduler: AsyncIOScheduler) -> None:
        """One cron job per recipient, in their time zone (replacing any earlier one)."""
        recipients = {f"digest:{r.email}": r for r in self.config.all_recipients()}
        for job in scheduler.get_jobs():
            if job.id.startswith("digest:") and job.id not in recipients:
                job.remove()
        for job_id, recipient in recipients.items():
            scheduler.add_job(
                self._job(self.scheduled_digest),
                cron_trigger(recipient.schedule, recipient.timezone),
                args=[recipient.email],
                id=job_id,
                name=f"digest {recipient.email}",
                max_instances=1,
                coalesce=True,  # several missed windows are one digest
                misfire_grace_time=3600,
                replace_existing=True,
            )

    async def scheduled_poll(self, name: str) -> None:
        """A source's poll interval came: poll it here (the scheduler role enqueues it
        for the workers instead, crawler/orchestration/roles.py)."""
        await self.poll(name)

    async def scheduled_digest(self, email: str) -> None:
        """A recipient's digest window: send, then remember the window as done."""
        started = datetime.now(UTC)
        await self.send_digests(email)
        await self.context.database.run(self.store.record_run, f"digest:{email}", started)

    async def catch_up_missed_digests(self, before: datetime | None = None) -> None:
        """Send once, now, each digest whose window passed while the service was down
        (windows before ``before``, default a moment ago: the digest jobs fire the rest)."""
        now = datetime.now(UTC)
        before = before or now - timedelta(seconds=CONFIG_CHECK_SECONDS)
        for recipient in self.config.all_recipients():
            job_id = f"digest:{recipient.email}"
            last = await self.context.database.run(self.store.last_run, job_id)
            if last is None:  # never ran: the schedule starts from now
                await self.context.database.run(self.store.record_run, job_id, now)
                continue
            due = cron_trigger(recipient.schedule, recipient.timezone).get_next_fire_time(
                None, last + timedelta(seconds=1)
            )
            if due is not None and due < before:
                logger.info(
                    "digest for %s was due at %s while newswatch was down; sending now",
                    recipient.email,
                    due,
                )
                await self.scheduled_digest(recipient.email)

    async def reload_if_changed(self) -> None:
        """Apply the configuration file when it changed on disk."""
        if self.config_path is None:
            return
        try:
            stamp = self.config_path.stat().st_mtime_ns
        except OSError:
            return
        if stamp != self._config_stamp:
            self._config_stamp = stamp
            await self.reload()

    async def reload(self) -> bool:
        """Validate the configuration file again and apply it without a restart.

        New sources start polling, removed ones stop, changed rules (and the sources
        a rule's ``tag:`` entries cover) apply to articles crawled from then on, and
        recipients, schedules and the workers' idle time are updated. A bad file is
        refused with the start's message; the running configuration stays in force.
        """
        if self.config_path is None:
            return False
        async with self._reload_run:  # a SIGHUP and the file watch: one at a time, in order
            try:
                # Read and validated in a thread: 10,000 sources take seconds, which
                # on the event loop would hold up every poll and the scheduler.
                config, matcher = await asyncio.to_thread(_read_config, self.config_path)
            except (ConfigError, ValueError) as error:
                logger.error(
                    "configuration reload refused; the running configuration stays in force:\n%s",
                    error,
                )
                return False
            return await self._apply(config, matcher)

    async def _apply(self, config: Config, matcher: RuleMatcher) -> bool:
        """Put a validated ``config`` in force (``reload``)."""
        await self.context.database.run(self.store.sync_sources, config.sources)
        self.config = config
        self.context.matcher = matcher
        self.context.resend = ResendPolicy(config.resend_updates)
        self.context.cpu.set_idle_close(config.workers_idle_close)
        self._delivery = None  # made again from the new settings when next used
        if scrapy_settings(config) != self._scrapy_settings:
            # Crawls already running finish with the old settings.
            self._scrapy_settings = scrapy_settings(config)
            self.runner = CrawlerRunner(PollSettings(self._scrapy_settings))
            self.metrics.instrument(self.runner)
        if self.scheduler is not None:
            self._schedule_sources(self.scheduler, datetime.now(UTC))
            self._schedule_digests(self.scheduler)
            self.websub.sync_soon()  # removed sources' subscriptions end
        changed = await self.context.database.run(self.polling.replan, config, datetime.now(UTC))
        if self.scheduler is not None and self.plans_polls:
            await self.polling.retime_jobs(self.scheduler, changed, self._safety_net)
        logger.info("configuration reloaded: %s", _sizes(config))
        return True

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
            except Exception as error:
                if is_database_unreachable(error):
                    # A restart or an outage: one line, and the job runs at its next time.
                    logger.error(
                        "job %s%s: %s; it runs again at its next time",
                        name,
                        args,
                        describe_database_error(self.config.database, error),
                    )
                else:
                    logger.exception("job %s%s failed", name, args)
            finally:
                self._running_jobs.discard(task)

        run.__name__ = name
        return run

    async def stop(self) -> None:
        """Scheduler first (no new jobs), then running crawls, then the worker pools.

        Running crawls are stopped gracefully (pages in flight are finished and
        stored) before the scheduler is shut down, so their jobs end normally.
        """
        logger.info("stopping: %s running", counted(len(self.runner.crawlers), "crawl"))
        if self.scheduler is not None:
            self.scheduler.pause()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE_SECONDS
        await stop_crawls(self.runner, deadline)
        # Let jobs whose crawl just ended record their outcome before the pools close.
        if self._running_jobs:
            await asyncio.wait(list(self._running_jobs), timeout=max(deadline - loop.time(), 1.0))
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        await self.context.drain()
        await close_browser()
        await asyncio.to_thread(self.context.database.shutdown)
        await asyncio.to_thread(self.context.cpu.shutdown)
        self.store.close()
        logger.info("newswatch stopped")
