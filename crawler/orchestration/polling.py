"""Adaptive polling in the running service (README, "Adaptive polling"): each
source's plan, its next poll after every poll, and what is kept of both.

The policy is pure (crawler/domain/scheduling.py); this module feeds it. Rhythms
are read for every source at once (one query, crawler/storage/health.py
``source_rhythms``) when the service starts and every ``RHYTHM_REFRESH`` (in a
thread of its own: seconds for 10,000 sources), never per poll; the pool's ``k``
and each source's ``PollPlan`` are made from them then, and again when the polling
settings change on a reload (the jobs of the sources whose plan changed are moved
then). After a poll, only the
source's publish times of the last hour are read (for a burst), and its next poll,
interval and reason are kept on its row: ``newswatch status``, the status page and
``/metrics`` show them, the health of the source is judged by that interval, and a
restart resumes each source's schedule from it.

A failed poll keeps its backoff (crawler/orchestration/poll.py ``backoff_delay``);
its reason is kept the same way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crawler.domain.health import Rhythm
from crawler.domain.scheduling import (
    BURST_WINDOW,
    NextPoll,
    PollBounds,
    PollPlan,
    ServerHints,
    backoff_reason,
    format_interval,
    next_poll,
    pool_scale,
    safety_net_reason,
    wait_of,
)
from crawler.domain.urls import redact_text
from crawler.domain.wording import counted
from crawler.orchestration.poll import backoff_delay

if TYPE_CHECKING:
    from collections.abc import Callable

    from apscheduler.schedulers.base import BaseScheduler

    from crawler.domain.config import Config, SourceConfig
    from crawler.domain.items import FetchState, PollOutcome
    from crawler.orchestration.workers import DatabaseThread
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)

# How often every source's rhythm is read again (a rhythm spans 8 weeks: an hour
# more of history changes it little).
RHYTHM_REFRESH = timedelta(hours=1)
POLL_JOB = "poll:{}"
# Polls started at once (new sources, or overdue after a restart), at most so many a
# second: about half of what this service polls a second when every feed answers 304
# (bench/sources.py), leaving the rest to the polls that fall due meanwhile.
START_POLLS_PER_SECOND = 20.0


@dataclass(frozen=True)
class PollTiming:
    """A source's next poll, and whether its job's own interval trigger already
    polls it then (a source polled at its ``every``: fixed intervals start to start,
    as they always did)."""

    upcoming: NextPoll
    fixed: bool


def hints_of(state: FetchState | None) -> ServerHints | None:
    """What the server asked at the poll that left ``state`` (None: nothing known)."""
    if state is None:
        return None
    return ServerHints(
        retry_after=wait_of(state.retry_after),
        max_age=wait_of(state.max_age),
        ttl=wait_of(state.ttl),
        update_period=wait_of(state.update_period),
    )


@dataclass(frozen=True)
class _Plans:
    """Every source's rhythm, the pool's ``k`` and plans made from them, and the
    settings they were made for."""

    rhythms: dict[str, Rhythm]
    scale: float
    plans: dict[str, PollPlan]
    settings: tuple[Any, ...]


def _make_plans(config: Config, rhythms: dict[str, Rhythm], now: datetime) -> _Plans:
    """The pool's ``k`` and each enabled source's plan under ``config`` (pure)."""
    polling = config.polling
    bounds = {s.name: PollBounds.from_config(s, polling) for s in config.sources if s.enabled}
    learning = Rhythm.from_times((), now)
    chosen = {name: rhythms.get(name, learning) for name in bounds}
    scale = pool_scale([(chosen[name], bounds[name]) for name in bounds], polling.requests_per_day)
    plans = {name: PollPlan.build(chosen[name], bounds[name], scale) for name in bounds}
    return _Plans(rhythms, scale, plans, _polling_settings(config))


def _polling_settings(config: Config) -> tuple[Any, ...]:
    """What the plans are made of besides rhythms: a reload that changes none of it
    keeps them."""
    return (
        config.polling,
        tuple(
            (s.name, s.every, s.adaptive, s.min_interval, s.max_interval)
            for s in config.sources
            if s.enabled
        ),
    )


class AdaptivePolling:
    """The sources' plans and the pool's ``k``, and each source's next poll.

    The methods that read or write the store block, and share the plans: the
    service runs them on its database thread (one call at a time); ``after_poll``
    and ``refresh_soon`` are the ones it awaits."""

    def __init__(self, store: Store, config: Config, database: DatabaseThread) -> None:
        self.store = store
        self.config = config
        self.database = database
        self.scale = 1.0
        self._rhythms: dict[str, Rhythm] = {}
        self._plans: dict[str, PollPlan] = {}
        self._planned_for: tuple[Any, ...] | None = None
        self.refreshed_at: datetime | None = None
        # Each source's next poll as kept before a restart (``load_planned``).
        self._resume: dict[str, NextPoll] = {}
        self._next_start = datetime.min.replace(tzinfo=UTC)  # first_poll's pace

    # -- plans -------------------------------------------------------------------------

    def refresh(self, now: datetime) -> None:
        """Read every source's rhythm again, then make the plans (blocks)."""
        self._rhythms = self.store.source_rhythms(now)
        self.refreshed_at = now
        self._make_plans(now)
        self._log_plans()

    def _take(self, made: _Plans, config: Config, now: datetime) -> None:
        """Swap in the rhythms and the plans ``made`` from ``config`` in a thread of
        their own (``refresh_soon``). Run on the database thread, so that no poll
        sees half of them; a reload that came meanwhile has its plans made again."""
        self._rhythms = made.rhythms
        self.refreshed_at = now
        if config is self.config:
            self.scale, self._plans, self._planned_for = made.scale, made.plans, made.settings
        else:
            self._make_plans(now)
        self._log_plans()

    def _log_plans(self) -> None:
        logger.info(
            "adaptive polling: %s read, %d planned by their rhythm (k = %.3g)",
            counted(len(self._rhythms), "source's rhythm", "sources' rhythms"),
            sum(plan.adaptive for plan in self._plans.values()),
            self.scale,
        )

    def replan(self, config: Config, now: datetime) -> set[str]:
        """Take ``config``; make the plans again if its polling settings changed (the
        budget, bounds, a source's ``every``, sources added or removed). Returns the
        sources, of those already configured before, whose plan changed: their jobs
        are to be re-timed (``retime``); new sources get theirs from ``first_poll``."""
        before, self.config = self.config, config
        if self.refreshed_at is None:  # no plans yet: what a plan would be made of
            polling = before.polling
            old = {s.name: PollBounds.from_config(s, polling) for s in before.sources if s.enabled}
            return {
                s.name
                for s in config.sources
                if s.enabled
                and s.name in old
                and old[s.name] != PollBounds.from_config(s, config.polling)
            }
        if _polling_settings(config) == self._planned_for:
            return set()
        plans = self._plans
        self._make_plans(now)
        return {name for name, plan in self._plans.items() if plans.get(name, plan) != plan}

    def _make_plans(self, now: datetime) -> None:
        made = _make_plans(self.config, self._rhythms, now)
        self.scale, self._plans, self._planned_for = made.scale, made.plans, made.settings

    def plan(self, source: SourceConfig, now: datetime) -> PollPlan:
        """``source``'s plan; one still learning if it has none yet."""
        plan = self._plans.get(source.name)
        if plan is None:
            bounds = PollBounds.from_config(source, self.config.polling)
            plan = PollPlan.build(Rhythm.from_times((), now), bounds, self.scale)
        return plan

    # -- after a poll --------------------------------------------------------------------

    def next_poll_after(
        self,
        source: SourceConfig,
        outcome: PollOutcome,
        now: datetime,
        at_least: timedelta | None = None,
    ) -> PollTiming:
        """When ``source`` is polled next after ``outcome`` (finished at ``now``), not
        sooner than ``at_least`` (a source a WebSub hub pushes is polled only as a
        safety net), kept on its row (blocks): the row says what the job really does,
        which the source's health judges its polls by. The plans are made at the
        first poll if the start-up refresh has not run yet."""
        if self.refreshed_at is None:
            self.refresh(now)
        if outcome.error:
            upcoming = self._backoff(source, outcome, now)
            fixed = False
        else:
            plan = self.plan(source, now)
            recent = (
                self.store.published_since(source.name, now - BURST_WINDOW) if plan.adaptive else []
            )
            upcoming = next_poll(plan, now, hints=hints_of(outcome.state), recent=recent)
            fixed = not plan.adaptive and upcoming.interval == source.every
        if at_least is not None and at_least > upcoming.interval:
            upcoming = NextPoll(now + at_least, at_least, safety_net_reason(at_least))
            fixed = False
        self.store.record_next_poll(source.name, upcoming.at, upcoming.interval, upcoming.reason)
        return PollTiming(upcoming, fixed)

    def _backoff(self, source: SourceConfig, outcome: PollOutcome, now: datetime) -> NextPoll:
        cap = self.config.max_backoff
        delay = backoff_delay(source.every, outcome.failures, cap, outcome.retry_after)
        asked = wait_of(outcome.retry_after)
        if asked is not None and delay == min(asked, max(cap, source.every)):
            why = f"Retry-After {format_interval(asked)}"
        else:
            polls = "poll" if outcome.failures == 1 else "polls"
            why = f"{outcome.failures} failed {polls} in a row"
        return NextPoll(now + delay, delay, backoff_reason(why, delay))

    async def after_poll(
        self,
        scheduler: BaseScheduler,
        source: SourceConfig,
        outcome: PollOutcome,
        at_least: timedelta | None = None,
    ) -> NextPoll | None:
        """Set ``source``'s poll job to its next poll after ``outcome``, not sooner than
        ``at_least`` from now (a source a WebSub hub pushes is polled only as a safety
        net). If that cannot be worked out (the database), its job's interval polls
        it at its ``every``."""
        now = datetime.now(UTC)
        try:
            timing = await self.database.run(self.next_poll_after, source, outcome, now, at_least)
        except Exception as error:
            logger.error(
                "source %s: its next poll could not be planned (%s); polled at its every",
                source.name,
                redact_text(str(error)),
            )
            return None
        upcoming = timing.upcoming
        job = scheduler.get_job(POLL_JOB.format(source.name))
        if job is not None and not timing.fixed:
            job.modify(next_run_time=upcoming.at)
        if outcome.error:
            logger.warning(
                "source %s: %s in a row; next poll in %s",
                source.name,
                counted(outcome.failures, "failed poll"),
                format_interval(upcoming.interval),
            )
        else:
            logger.debug(
                "source %s: next poll at %s (%s)", source.name, upcoming.at, upcoming.reason
            )
        return upcoming

    async def refresh_soon(self) -> None:
        """The scheduled refresh of every source's rhythm. The first, at the start, on
        the database thread: the first polls wait for their plans. The later ones
        read the rhythms and make the plans in a thread of their own, on a
        connection of their own: 10,000 sources' rhythms take seconds to read
        (docs/performance.md), and the polls' writes go on meanwhile (SQLite in
        WAL mode and PostgreSQL let one reader and a writer run at once); only the
        swap is on the database thread."""
        now = datetime.now(UTC)
        if self.refreshed_at is None:
            await self.database.run(self.refresh, now)
            return
        config = self.config

        def read_and_plan() -> _Plans:
            return _make_plans(config, self.store.source_rhythms(now), now)

        made = await asyncio.to_thread(read_and_plan)
        await self.database.run(self._take, made, config, now)

    # -- after a restart -------------------------------------------------------------

    def load_planned(self) -> None:
        """Read each source's next poll as kept before a restart (blocks)."""
        self._resume = {name: NextPoll(*kept) for name, kept in self.store.planned_polls().items()}

    def first_poll(self, source: SourceConfig, now: datetime) -> datetime:
        """When a source's job first runs: a restart resumes the schedule the source
        had before it (a restart is no reason to poll; a fixed source keeps its phase,
        never later than its ``every`` from now). A server's ``Retry-After`` is kept
        (politeness); a backoff after failed polls is not waited out past ``every``
        from now (a restart often follows a fix). A new source, and one whose poll
        passed while the service was down, is polled at once, but at most
        ``START_POLLS_PER_SECOND`` of them a second: 10,000 sources due at start would
        otherwise queue 10,000 crawls behind the poll slots, and the polls due after
        them would start minutes late."""
        kept = self._resume.pop(source.name, None)
        if kept is not None and kept.at > now:
            if kept.asked_by_server:
                return kept.at
            if kept.backoff or not PollBounds.from_config(source, self.config.polling).adaptive:
                return min(kept.at, now + source.every)
            return kept.at
        return self._paced(now)

    def _paced(self, now: datetime) -> datetime:
        """Now, or the next free start when polls started at once would exceed
        ``START_POLLS_PER_SECOND``."""
        start = max(now, self._next_start)
        self._next_start = start + timedelta(seconds=1 / START_POLLS_PER_SECOND)
        return start

    # -- after a reload ---------------------------------------------------------------

    def retime(
        self,
        names: set[str],
        now: datetime,
        safety_net: Callable[[SourceConfig], timedelta | None] = lambda source: None,
    ) -> dict[str, NextPoll]:
        """The next poll of each of ``names`` under its new plan (``replan``), counted
        from its last poll (from now if never polled), kept on the rows (blocks). A
        poll that would already be due is paced from now, as at a start. A source
        backing off, or kept away by its server's ``Retry-After``, keeps the time it
        has. ``safety_net``: the slowest interval of a source a hub pushes."""
        planned = self.store.planned_polls()
        last = self.store.last_polls()
        retimed: dict[str, NextPoll] = {}
        for name in sorted(names):
            source = self.config.source(name)
            kept = planned.get(name)
            if kept is not None and kept[0] > now:
                held = NextPoll(*kept)
                if held.backoff or held.asked_by_server:
                    continue
            polled, state = last.get(name, (None, None))
            start = polled if polled is not None else now
            # No burst is looked for: the burst reads the store per source, and the
            # poll after this one sees it.
            upcoming = next_poll(self.plan(source, now), start, hints=hints_of(state))
            floor = safety_net(source)
            if floor is not None and floor > upcoming.interval:
                upcoming = NextPoll(start + floor, floor, safety_net_reason(floor))
            at = upcoming.at if upcoming.at > now else self._paced(now)
            retimed[name] = NextPoll(at, upcoming.interval, upcoming.reason)
        self.store.record_next_polls(
            {name: (poll.at, poll.interval, poll.reason) for name, poll in retimed.items()}
        )
        return retimed

    async def retime_jobs(
        self,
        scheduler: BaseScheduler,
        names: set[str],
        safety_net: Callable[[SourceConfig], timedelta | None],
    ) -> None:
        """Move the jobs of ``names`` (their plan changed on a reload) to their next
        poll under the new plan: a job set for 6 h away by the old plan would
        otherwise wait that long."""
        if not names:
            return
        try:
            retimed = await self.database.run(self.retime, names, datetime.now(UTC), safety_net)
        except Exception as error:
            logger.error(
                "the changed sources' polls could not be re-timed (%s); they keep their times",
                redact_text(str(error)),
            )
            return
        for name, upcoming in retimed.items():
            job = scheduler.get_job(POLL_JOB.format(name))
            if job is not None:
                job.modify(next_run_time=upcoming.at)
        logger.info(
            "polling settings changed: %s re-timed",
            counted(len(retimed), "source's next poll", "sources' next polls"),
        )
