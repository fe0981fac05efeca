"""The scale-out roles: ``newswatch run --role scheduler`` and ``newswatch worker``.

Both are the all-in-one ``NewswatchService`` (one reactor, the database thread, the
CPU pool, the web UI) with one part changed:

- ``SchedulerService`` runs the same jobs, but only while it holds the PostgreSQL
  advisory lock (crawler/storage/cluster.py ``LeaderLock``), and its poll jobs enqueue the
  poll in Redis instead of crawling. Digests, alerts, retention and the catch-up of
  missed digests run as in the all-in-one mode, on the active scheduler only.
- ``WorkerService`` runs no schedule of polls: its one long-lived crawl
  (spiders/cluster.py ``ClusterSpider``) takes poll jobs and requests from Redis,
  stores through the same ``CrawlContext`` as the all-in-one mode, and records each
  poll when its last link is settled, with poll.state_to_remember's rule: the
  validators are remembered only when every new link settled.

Adaptive polling (crawler/orchestration/polling.py) is split along the same line.
The worker that records a poll also plans the source's next one, with the
all-in-one mode's ``AdaptivePolling`` (each worker reads every source's rhythm at
start and every ``RHYTHM_REFRESH``: the plans share one ``k``, so no source's plan
can be made from its own history alone), and keeps it on the source's row. The
active scheduler plans nothing: every ``PLANNED_POLLS_SECONDS`` it reads, in one
query, the next polls recorded since its last look and moves its poll jobs there,
backoffs and ``Retry-After`` included; on taking over it resumes each source's
recorded schedule (``AdaptivePolling.load_planned`` and ``first_poll``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from scrapy.crawler import CrawlerRunner
from sqlalchemy.exc import IntegrityError

from crawler.domain.scheduling import PollBounds
from crawler.orchestration.health import record_poll_health
from crawler.orchestration.poll import describe, state_to_remember
from crawler.orchestration.polling import POLL_JOB, RHYTHM_REFRESH
from crawler.orchestration.service import CONFIG_CHECK_SECONDS, NewswatchService
from crawler.storage.cluster import (
    HEARTBEAT_SECONDS,
    ClusterKeys,
    LeaderLock,
    Membership,
    PollJob,
    PollLedger,
    PollQueue,
    connect_redis,
    new_worker_id,
)
from spiders.cluster import ClusterSpider, OpenedPoll
from spiders.settings import cluster_settings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

    from crawler.domain.config import Config, SourceConfig
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)

# A worker starts another poll only while the shared queue holds fewer requests than
# this many per request slot of its own: the queue stays short, and polls finish
# before new ones start (articles are queued before index pages).
INTAKE_QUEUE_FACTOR = 2
# How often an idle worker looks for a poll job.
INTAKE_WAIT_SECONDS = 0.25
# How often the active scheduler reads the next polls its workers recorded: a poll
# job is moved at most this long after its source's poll ended.
PLANNED_POLLS_SECONDS = 2.0
# Each look also reads what was recorded this long before the previous one: a worker
# records a poll and then, a moment later, its next one, and hosts' clocks differ a
# little (a look reads only rows whose ``last_polled_at`` is after its start).
PLANNED_POLLS_OVERLAP = timedelta(seconds=30)
PLANNED_POLLS_JOB = "planned-polls"


def shortest_interval(source: SourceConfig, config: Config) -> timedelta:
    """The soonest ``source`` may be polled again after a poll: its ``every``, or
    less when adaptive polling may poll it more often (its floor)."""
    bounds = PollBounds.from_config(source, config.polling)
    return bounds.floor if bounds.adaptive else source.every


def required_redis(config: Config) -> str:
    """The Redis URL (config.check_scale_out made sure there is one)."""
    if config.redis is None:
        raise ValueError("scale-out needs `redis:` in the configuration")
    return config.redis


async def reload_retrying(reload: Callable[[], Awaitable[bool]]) -> bool:
    """Run a configuration reload, again if another process added the same new
    source to the database at the same moment (every process reloads the file)."""
    for attempt in range(3):
        try:
            return await reload()
        except IntegrityError:
            if attempt == 2:
                raise
            await asyncio.sleep(random.uniform(0.1, 0.5))  # noqa: S311 - jitter
    return False


class SchedulerService(NewswatchService):
    """A scheduler process: active while it holds the lock, on standby otherwise."""

    # Its poll jobs follow the next polls the workers record (follow_planned_polls);
    # a reload does not re-time them.
    plans_polls = False

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        cpu_workers: int | None = None,
        config_path: Path | None = None,
    ) -> None:
        super().__init__(config, store, cpu_workers=cpu_workers, config_path=config_path)
        self.keys = ClusterKeys(config.cluster.queue_prefix)
        self.redis = connect_redis(required_redis(config))
        self.polls = PollQueue(self.redis, self.keys)
        self.lock = LeaderLock(
            config.database, config.cluster.queue_prefix, config.cluster.failover
        )
        self.node = new_worker_id(socket.gethostname(), os.getpid())
        self.active = False
        self._election: asyncio.Task[None] | None = None
        # Where follow_planned_polls reads from next (None: every source's row).
        self._planned_since: datetime | None = None

    def start_scheduler(self) -> None:
        """Start paused, with no jobs; the election loop starts them on taking the lock."""
        self.scheduler = AsyncIOScheduler(event_loop=asyncio.get_event_loop(), timezone=UTC)
        self.scheduler.start(paused=True)
        self._election = asyncio.get_event_loop().create_task(self._elect())
        logger.info(
            "newswatch scheduler %s started: standing by until it holds the "
            "scheduler lock (failover bound %s)",
            self.node,
            self.config.cluster.failover,
        )

    async def _elect(self) -> None:
        while True:
            try:
                leader = await asyncio.to_thread(self.lock.check)
                if leader:
                    self.redis.set(
                        self.keys.leader,
                        self.node,
                        px=int(self.config.cluster.failover.total_seconds() * 1000),
                    )
                if leader and not self.active:
                    await self._take_over()
                elif not leader and self.active:
                    self._step_down()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scheduler election failed; trying again")
                if self.active:
                    self._step_down()
            await asyncio.sleep(self.lock.interval)

    async def _take_over(self) -> None:
        """Become the active scheduler: jobs from now on, missed digests once."""
        if self.scheduler is None:
            return
        self.active = True
        logger.info("scheduler %s is now the active scheduler", self.node)
        await self.reload_if_changed()
        # Each source resumes the schedule its workers recorded (what the scheduler
        # before this one queued is not queued again at once).
        await self.context.database.run(self.polling.load_planned)
        scheduler = self.scheduler
        scheduler.remove_all_jobs()
        added = datetime.now(UTC)
        self.schedule_jobs(scheduler, added)
        if scheduler.get_job("rhythms") is not None:
            scheduler.remove_job("rhythms")  # the workers plan the polls, not this process
        # The first look reads every row: a backoff recorded long ago still holds.
        self._planned_since = None
        scheduler.add_job(
            self._job(self.follow_planned_polls),
            IntervalTrigger(seconds=PLANNED_POLLS_SECONDS, timezone=UTC),
            id=PLANNED_POLLS_JOB,
            name="follow the planned polls",
            max_instances=1,
            coalesce=True,
        )
        if self.config.rule_names(alert="immediate"):
            # Workers store the matches; the active scheduler sends what is pending.
            scheduler.add_job(
                self._job(self.send_alerts),
                IntervalTrigger(seconds=self.config.alerts.window.total_seconds(), timezone=UTC),
                id="alerts-sweep",
                name="alerts sweep",
                max_instances=1,
                coalesce=True,
            )
        scheduler.resume()
        # Windows before the jobs were added are caught up; the jobs fire the rest.
        scheduler.add_job(
            self._job(self.catch_up_missed_digests),
            args=[added],
            id="catch-up",
            name="catch up missed digests",
        )

    def _step_down(self) -> None:
        """Stop acting at once: no job runs until the lock is held again."""
        self.active = False
        if self.scheduler is not None:
            self.scheduler.pause()
            self.scheduler.remove_all_jobs()
        logger.warning("scheduler %s lost the scheduler lock; standing by", self.node)

    async def reload(self) -> bool:
        return await reload_retrying(super().reload)

    def _job(self, job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
        run = super()._job(job)

        async def fenced(*args: Any) -> None:
            if not self.lock.is_leader():
                logger.info("job %s%s skipped: not the active scheduler", run.__name__, args)
                return
            await run(*args)

        fenced.__name__ = run.__name__
        return fenced

    async def scheduled_poll(self, name: str) -> None:
        """Hand the poll to the workers. When is the job's: ``follow_planned_polls``
        moved it to the next poll planned after the last one (a failing source's
        backoff included); no row is read here."""
        source = self.config.source(name)
        job = self.polls.enqueue(name, shortest_interval(source, self.config))
        if job is not None:
            logger.debug("source %s: poll %s enqueued", name, job.poll)

    async def follow_planned_polls(self) -> None:
        """Move each source's poll job to the next poll the worker that polled it
        recorded: one query for every source polled since the last look."""
        now = datetime.now(UTC)
        planned = await self.context.database.run(
            self.store.polls_planned_since, self._planned_since
        )
        self._planned_since = now - PLANNED_POLLS_OVERLAP
        for name, at, interval in planned:
            self._move_poll_job(name, at if at.tzinfo else at.replace(tzinfo=UTC), interval, now)

    def _move_poll_job(self, name: str, at: datetime, interval: timedelta, now: datetime) -> None:
        scheduler = self.scheduler
        job = scheduler.get_job(POLL_JOB.format(name)) if scheduler is not None else None
        if job is None or at <= now or job.next_run_time == at:
            return  # not polled (any more), already there, or past: its interval polls it
        if interval == self.config.source(name).every:
            # Polled at its every: the job's own interval trigger polls it then, start
            # to start, as the all-in-one mode does (polling.py ``PollTiming.fixed``).
            return
        job.modify(next_run_time=at)
        logger.debug("source %s: next poll at %s (every %s)", name, at, interval)

    async def stop(self) -> None:
        if self._election is not None:
            self._election.cancel()
        await super().stop()
        await asyncio.to_thread(self.lock.release)
        self.redis.close()


class WorkerService(NewswatchService):
    """A worker process: one crawl for life over the shared queue."""

    # It plans each source's next poll after polling it (``_finish``), but has no poll
    # jobs: a reload's changed plans apply from each source's next poll.
    plans_polls = False

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        cpu_workers: int | None = None,
        config_path: Path | None = None,
    ) -> None:
        super().__init__(config, store, cpu_workers=cpu_workers, config_path=config_path)
        self.keys = ClusterKeys(config.cluster.queue_prefix)
        self.redis = connect_redis(required_redis(config))
        self.worker_id = new_worker_id(socket.gethostname(), os.getpid())
        self.polls = PollQueue(self.redis, self.keys)
        self.ledger = PollLedger(self.redis, self.keys)
        self.membership = Membership(self.redis, self.keys, self.worker_id)
        self.runner = CrawlerRunner(cluster_settings(config, self.worker_id))
        self.metrics.instrument(self.runner)
        self._heartbeat: asyncio.Task[None] | None = None

    def start_scheduler(self) -> None:
        """The heartbeat, the configuration watch, and the crawl."""
        loop = asyncio.get_event_loop()
        self.membership.beat()
        self._heartbeat = loop.create_task(self._beat_forever())
        scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        self.scheduler = scheduler
        # The plans this worker's polls are followed by (polling.py), made now and
        # every RHYTHM_REFRESH, as the all-in-one service does.
        scheduler.add_job(
            self._job(self.polling.refresh_soon),
            IntervalTrigger(seconds=RHYTHM_REFRESH.total_seconds(), timezone=UTC),
            id="rhythms",
            name="source rhythms and poll plans",
            next_run_time=datetime.now(UTC),
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
        scheduler.start()
        crawler = self.runner.create_crawler(ClusterSpider)
        done = self.runner.crawl(crawler, worker=self)
        done.addErrback(
            lambda failure: logger.error("worker crawl crashed: %s", failure.getTraceback())
        )
        logger.info(
            "newswatch worker %s running: queue %s on %s, %d requests at once",
            self.worker_id,
            self.keys.requests,
            self.config.redis,
            self.config.cluster.concurrent_requests,
        )

    def _schedule_sources(self, scheduler: AsyncIOScheduler, now: datetime) -> None:
        """Nothing: the active scheduler queues the polls (a reload must not add any)."""

    def _schedule_digests(self, scheduler: AsyncIOScheduler) -> None:
        """Nothing: the active scheduler sends the digests."""

    async def _beat_forever(self) -> None:
        while True:
            try:
                self.membership.beat()
                for worker, count in self.membership.reap().items():
                    logger.warning(
                        "worker %s stopped beating; its %d requests in flight are "
                        "back in the queue",
                        worker,
                        count,
                    )
            except Exception as error:
                logger.warning("worker heartbeat failed: %s", error)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def reload(self) -> bool:
        """As in the all-in-one mode; network settings apply after a restart (the
        crawl lives as long as the worker)."""
        runner = self.runner
        reloaded = await reload_retrying(super().reload)
        if self.runner is not runner:
            self.runner = runner
            logger.warning("network settings changed: they apply when the worker restarts")
        return reloaded

    # -- what the spider asks (spiders/cluster.py ClusterWorker) ---------------------------

    def source(self, name: str) -> SourceConfig | None:
        try:
            return self.config.source(name)
        except KeyError:
            return None

    async def next_poll(self) -> OpenedPoll:
        bound = INTAKE_QUEUE_FACTOR * self.config.cluster.concurrent_requests
        while True:
            if self.redis.zcard(self.keys.requests) < bound:
                job = self.polls.pop()
                if job is not None:
                    opened = await self._open(job.source, job.poll, job.enqueued)
                    if opened is not None:
                        return opened
                    continue
            await asyncio.sleep(INTAKE_WAIT_SECONDS)

    async def _open(self, name: str, poll: str, enqueued: float) -> OpenedPoll | None:
        source = self.source(name)
        if source is None:
            await self.reload_if_changed()
            source = self.source(name)
        if source is None or not source.enabled:
            logger.warning("source %s is not (or no longer) configured here; poll dropped", name)
            return None
        if not self.polls.take_lease(name, poll):
            logger.debug("source %s: the previous poll is still running; this one is skipped", name)
            return None
        state = await self.context.database.run(self.store.fetch_state, name)
        self.ledger.open(PollJob(name, poll, enqueued))
        return OpenedPoll(poll, source, state)

    def settle(
        self,
        poll: str,
        source: str,
        changes: Mapping[str, int],
        fields: Mapping[str, str],
        added: int,
        inflight: str | None,
        fingerprint: str | None,
    ) -> None:
        pending = self.ledger.settle(
            poll,
            changes,
            fields,
            added,
            inflight=(self.membership.inflight_key, inflight) if inflight else None,
            fingerprint=fingerprint,
        )
        if pending == 0:
            task = asyncio.get_event_loop().create_task(self._finish(poll))
            self._running_jobs.add(task)
            task.add_done_callback(self._running_jobs.discard)
        elif pending > 0:
            self.polls.refresh_lease(source, poll)

    async def _finish(self, poll: str) -> None:
        """The poll's last link settled here: record it, as poll.poll_source does."""
        read = self.ledger.read(poll)
        if read is None:
            return
        name, outcome, started = read
        outcome.failures = await self.context.database.run(
            self.store.record_poll, name, error=outcome.error, state=state_to_remember(outcome)
        )
        try:
            source = self.source(name)
            if source is not None and self.scheduler is not None:
                # The next poll, as the all-in-one service plans it, kept on the row
                # where the active scheduler reads it (this process has no poll jobs
                # to move). Right after record_poll: the scheduler's look at the
                # sources polled lately finds both.
                await self.polling.after_poll(self.scheduler, source, outcome)
            if source is not None:
                await self.context.database.run(
                    record_poll_health, self.store, source, outcome, datetime.now(UTC)
                )
        except Exception as error:  # the poll is recorded; its health can wait
            logger.error("source %s: its health could not be assessed: %s", name, error)
        finally:
            self.polls.release_lease(name, poll)
            self.ledger.close(poll)
        self.metrics.poll_finished(outcome)
        logger.info("source %s: %s in %.1fs", name, describe(outcome), time.time() - started)

    async def stop(self) -> None:
        await super().stop()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        moved = self.membership.leave()
        if moved:
            logger.info(
                "worker %s: %d unfinished requests put back in the queue", self.worker_id, moved
            )
        self.redis.close()
