"""After each poll: the source's health, assessed from its history
(crawler/domain/health.py), kept, and logged when it changes. And the service's
own: whether any source has succeeded lately (``/healthz``, ``/readyz``), and the
one hint at start that every source failing on DNS means no internet."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from crawler.domain.failures import FailureClass
from crawler.domain.health import Health, PollRecord, Rhythm, assess
from crawler.domain.scheduling import polled_every

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from datetime import datetime

    from crawler.domain.config import Config, SourceConfig
    from crawler.domain.items import PollOutcome
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)

STALE_MARGIN = timedelta(minutes=5)
# The service is "up but blind" once no source has succeeded for this many times the
# longest interval of an enabled source, and at least an hour (README, "/healthz").
BLIND_AFTER_INTERVALS = 3
BLIND_AFTER_AT_LEAST = timedelta(hours=1)
OFFLINE_HINT = (
    "every source failed to look up its host name (DNS): no internet? "
    "Try `newswatch demo`, which needs none"
)


@dataclass(frozen=True)
class HealthChange:
    """A source's health before (None: never assessed) and now."""

    source: str
    before: Health | None
    now: Health

    @property
    def changed(self) -> bool:
        before = self.before.state if self.before is not None else None
        return before is not self.now.state and (before is not None or self.now.state.bad)


def poll_record(outcome: PollOutcome, at: datetime) -> PollRecord:
    """What the source's health reads of one poll."""
    return PollRecord(
        at=at,
        error=outcome.error,
        error_class=outcome.error_class or ("other" if outcome.error else None),
        status=outcome.status,
        new_urls=outcome.new_urls,
        stored=outcome.stored + outcome.copies,
        challenges=outcome.challenges,
        sample_url=outcome.challenge.url if outcome.challenge is not None else None,
        moved_to=outcome.moved_to,
    )


def update_health(store: Store, source: SourceConfig, now: datetime) -> HealthChange | None:
    """Assess ``source`` at ``now``, keep the result, log a change of state; None for
    a source not in the database."""
    inputs = store.health_inputs(source.name, now)
    if inputs is None:
        return None
    kept = store.source_health(source.name)
    before = kept[0] if kept is not None else None
    health = assess(
        inputs.polls,
        inputs.pages,
        Rhythm.from_times(inputs.published, now),
        last_new=inputs.last_new,
        watched_since=inputs.watched_since,
        every=polled_every(source.every, inputs.poll_interval),
        now=now,
        previous=before,
        quiet_after=source.quiet_after,
    )
    store.save_health(source.name, health, now)
    change = HealthChange(source.name, before, health)
    if change.changed:
        if health.state.bad:
            logger.warning("source %s is %s: %s", source.name, health.state, health.reason)
        else:
            logger.info("source %s recovered (was %s)", source.name, before and before.state)
    return change


def record_poll_health(
    store: Store, source: SourceConfig, outcome: PollOutcome, at: datetime
) -> HealthChange | None:
    """Log the poll ``outcome`` of ``source`` and assess its health after it."""
    store.log_poll(source.name, poll_record(outcome, at))
    # New articles heard of: stored, and word-for-word copies of a known story.
    return update_health(store, source, at)


def sweep_stale_health(
    store: Store, config: Config, now: datetime, started: datetime | None = None
) -> list[HealthChange]:
    """Assess the enabled sources not assessed for twice their interval (the one
    their last poll set, when longer than ``every``; and five minutes), counted
    from ``started`` at the latest (after a restart, every source gets its first
    poll before it is judged): their polls stopped, or never ran. A
    silence no poll reports is still a silence, and "quiet" is how operators hear
    of it. One source that cannot be assessed does not stop the others."""
    checked = {record.source: record.checked_at for record in store.health_records()}
    planned = store.planned_polls()
    changes = []
    for source in config.sources:
        if not source.enabled:
            continue
        last = max(filter(None, (checked.get(source.name), started)), default=None)
        every = polled_every(source.every, planned.get(source.name, (None, None))[1])
        if last is not None and now - last < 2 * every + STALE_MARGIN:
            continue
        try:
            change = update_health(store, source, now)
        except Exception as error:  # one source's data must not stop the sweep
            logger.error("source %s: its health could not be assessed: %s", source.name, error)
            continue
        if change is not None:
            changes.append(change)
    return changes


@dataclass(frozen=True)
class Readiness:
    """Whether the service sees the news: ``state`` is ``ok`` (a source succeeded
    within ``window``), ``waiting`` (none has since the start, which is less than
    ``window`` ago), ``blind`` (none has for ``window``) or ``no sources``."""

    state: str
    window: timedelta
    last_success: datetime | None
    reason: str = ""

    @property
    def ready(self) -> bool:
        return self.state != "blind"


def blind_after(config: Config) -> timedelta:
    """How long without a successful poll of any source makes the service blind:
    three times the longest ``every`` of the enabled sources, at least an hour."""
    longest = max((source.every for source in config.sources if source.enabled), default=None)
    if longest is None:
        return BLIND_AFTER_AT_LEAST
    return max(BLIND_AFTER_AT_LEAST, BLIND_AFTER_INTERVALS * longest)


def assess_readiness(
    config: Config, last_success: datetime | None, started: datetime, now: datetime
) -> Readiness:
    """The service's readiness from the last successful poll of any enabled source
    (``last_success``) and its start: time before the start is no silence."""
    window = blind_after(config)
    if not any(source.enabled for source in config.sources):
        return Readiness("no sources", window, last_success)
    if last_success is not None and now - last_success <= window:
        return Readiness("ok", window, last_success)
    since = max(started, last_success) if last_success is not None else started
    if now - since <= window:
        return Readiness("waiting", window, last_success)
    return Readiness(
        "blind",
        window,
        last_success,
        f"up, but no source has succeeded for {_hours(now - since)} (blind after {_hours(window)})",
    )


def _hours(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


class OfflineHint:
    """Says once, in the log, what to try when every enabled source's polls since
    the start failed on DNS and none succeeded: most likely there is no internet
    (a first try on a laptop offline, a container without DNS), not a source list
    gone bad. Said at most once per process, never per poll; a success anywhere ends it."""

    def __init__(self, sources: Callable[[], Collection[str]]) -> None:
        self._sources = sources
        self._failed_on_dns: set[str] = set()
        self._done = False
        self._lock = threading.Lock()

    def poll_finished(self, source: str, error_class: str | None, *, failed: bool) -> bool:
        """Note one poll's outcome; True when this poll made the hint be logged."""
        with self._lock:
            if self._done:
                return False
            if not failed:
                self._done = True  # the network works: no hint, ever
                return False
            if error_class != FailureClass.DNS:
                return False
            self._failed_on_dns.add(source)
            enabled = set(self._sources())
            if not enabled or not enabled <= self._failed_on_dns:
                return False
            self._done = True
        logger.warning(OFFLINE_HINT)
        return True
