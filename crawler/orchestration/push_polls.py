"""When a WebSub push may poll its source (crawler/orchestration/websub.py): a push
is a hint from a hub, or from whoever knows a callback, so it never makes newswatch
poll an origin faster than the origin and the configuration allow.

- Never inside the source's backoff after failed polls, nor inside a server's
  Retry-After: noted after each poll (``poll_finished``); after a restart, read
  from the source's row until its first poll.
- Polls asked for by pushes are at least ``websub.push_gap`` apart per source; a
  push within the gap moves its poll to the gap's end, it is never dropped; a poll
  already due by then serves it.
- A push while the source's poll runs leads to one more poll after it, however
  many came (the poll that runs may have started before the new item was there).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_SUBMITTED

from crawler.domain.websub import push_poll_time
from crawler.orchestration.poll import backoff_delay

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from apscheduler.events import JobEvent
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from crawler.domain.config import Config, SourceConfig
    from crawler.domain.items import PollOutcome
    from crawler.orchestration.workers import DatabaseThread
    from crawler.storage.store import Store

# The service's poll job of a source (crawler/orchestration/service.py).
POLL_JOB = "poll:{}"


class PushPolls:
    """The polls pushes ask for, paced per source."""

    def __init__(
        self,
        config: Callable[[], Config],
        store: Store,
        database: DatabaseThread,
        scheduler: Callable[[], AsyncIOScheduler | None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self._config = config
        self._store = store
        self._database = database
        self._scheduler = scheduler
        self._spawn = spawn
        self._holds: dict[str, datetime] = {}  # no poll before (backoff, Retry-After)
        self._polled: set[str] = set()  # sources polled since the start
        self._last: dict[str, datetime] = {}  # the last poll a push asked for
        self._running: set[str] = set()  # sources whose poll job runs now
        self._again: set[str] = set()  # pushed while polling: one more poll after

    def poll_finished(self, source: SourceConfig, outcome: PollOutcome) -> None:
        """Note until when ``source`` is to be left alone after ``outcome``."""
        now = datetime.now(UTC)
        self._polled.add(source.name)
        asked = outcome.state.retry_after if outcome.state is not None else None
        if outcome.error:
            cap = self._config().max_backoff
            delay = backoff_delay(source.every, outcome.failures, cap, outcome.retry_after)
            self._holds[source.name] = now + delay
        elif asked:
            self._holds[source.name] = now + timedelta(seconds=asked)
        else:
            self._holds.pop(source.name, None)

    async def poll(self, name: str) -> None:
        """Run the poll job of ``name`` for a push, as soon as the source allows."""
        scheduler = self._scheduler()
        job = scheduler.get_job(POLL_JOB.format(name)) if scheduler is not None else None
        source = next((s for s in self._config().sources if s.name == name), None)
        if job is None or source is None:  # removed, disabled, or not polled here
            return
        if name in self._running:
            self._again.add(name)
            return
        hold = self._holds.get(name)
        if name not in self._polled:  # after a start: as the source's row tells
            hold = await self._database.run(self._held_until, source)
        now = datetime.now(UTC)
        at = push_poll_time(
            now,
            not_before=hold,
            last_push_poll=self._last.get(name),
            gap=self._config().websub.push_gap,
        )
        if job.next_run_time is not None and now < job.next_run_time <= at:
            self._last[name] = job.next_run_time  # polled by then anyway
            return
        self._last[name] = at
        job.modify(next_run_time=at)

    def _held_until(self, source: SourceConfig) -> datetime | None:
        """Until when ``source`` backs off, as its row tells (blocks)."""
        row = self._store.source_state(source.name)
        if row is None or row.last_polled_at is None:
            return None
        asked = row.retry_after_seconds
        if row.consecutive_failures:
            cap = self._config().max_backoff
            delay = backoff_delay(source.every, row.consecutive_failures, cap, asked)
            return row.last_polled_at + delay
        return row.last_polled_at + timedelta(seconds=asked) if asked else None

    def job_event(self, event: JobEvent) -> None:
        """Which sources' polls run (a push then waits for the end), and a push
        that came meanwhile gets its one more poll."""
        name = event.job_id.removeprefix(POLL_JOB.format(""))
        if name == event.job_id:
            return
        if event.code == EVENT_JOB_SUBMITTED:
            self._running.add(name)
        else:
            self._running.discard(name)
            if name in self._again:
                self._again.discard(name)
                self._spawn(self.poll(name))
