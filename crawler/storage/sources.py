"""Sources and polls: the configured sources, what each poll left behind, when
scheduled jobs last ran, and the robots.txt files fetched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update

from crawler.domain.items import FetchState
from crawler.storage.engine import StoreBase, _insert_ignoring_conflict
from crawler.storage.models import Article, RobotsTxt, ScheduleRun, Source, utcnow

if TYPE_CHECKING:
    from crawler.domain.config import SourceConfig


class SourceQueries(StoreBase):
    """The queries on sources, their polls, scheduled runs and robots.txt."""

    # -- sources ---------------------------------------------------------------

    def sync_sources(self, sources: Sequence[SourceConfig]) -> None:
        """Make a row for every configured source; update URLs that changed."""
        with self._session.begin() as session:
            existing = {s.name: s for s in session.scalars(select(Source))}
            for config in sources:
                row = existing.get(config.name)
                if row is None:
                    session.add(
                        Source(
                            name=config.name,
                            kind=config.kind,
                            url=config.url,
                            consecutive_failures=0,
                        )
                    )
                elif (row.url, row.kind) != (config.url, config.kind):
                    row.url, row.kind = config.url, config.kind
                    row.etag = row.last_modified = row.content_hash = row.discovered_url = None
                    # Another server's hints and a plan made for the old URL: gone.
                    row.retry_after_seconds = row.max_age_seconds = None
                    row.ttl_seconds = row.update_period_seconds = None
                    row.next_poll_at = row.poll_interval_seconds = row.poll_reason = None

    def fetch_state(self, source: str) -> FetchState:
        """The validators and discovered feed remembered from the last good poll, and
        what the server last asked about how often to come back."""
        with self._session() as session:
            row = session.execute(
                select(
                    Source.etag,
                    Source.last_modified,
                    Source.content_hash,
                    Source.discovered_url,
                    Source.retry_after_seconds,
                    Source.max_age_seconds,
                    Source.ttl_seconds,
                    Source.update_period_seconds,
                ).where(Source.name == source)
            ).first()
        return FetchState(*row) if row else FetchState()

    def record_poll(
        self,
        source: str,
        *,
        error: str | None,
        state: FetchState | None = None,
        at: datetime | None = None,
    ) -> int:
        """Note a finished poll of ``source``: a success resets the failure count.

        ``state``, when given, replaces what is remembered for the next
        conditional poll (the poll decides when it is safe to remember it).
        Returns the number of failed polls in a row, this one included.
        """
        at = at or utcnow()
        values: dict[str, Any] = {"last_polled_at": at}
        if state is not None:
            values |= {
                "etag": state.etag,
                "last_modified": state.last_modified,
                "content_hash": state.content_hash,
                "discovered_url": state.discovered_url,
                "retry_after_seconds": state.retry_after,
                "max_age_seconds": state.max_age,
                "ttl_seconds": state.ttl,
                "update_period_seconds": state.update_period,
            }
        if error is None:
            values |= {"last_success_at": at, "last_error": None, "consecutive_failures": 0}
        else:
            values |= {
                "last_error": error[:2000],
                "consecutive_failures": Source.consecutive_failures + 1,
            }
        with self._session.begin() as session:
            session.execute(update(Source).where(Source.name == source).values(**values))
            failures = session.scalar(
                select(Source.consecutive_failures).where(Source.name == source)
            )
        return failures or 0

    def record_next_poll(self, source: str, at: datetime, interval: timedelta, reason: str) -> None:
        """Note when ``source`` is polled next, at what interval and why."""
        self.record_next_polls({source: (at, interval, reason)})

    def record_next_polls(self, polls: Mapping[str, tuple[datetime, timedelta, str]]) -> None:
        """Note each source's next poll, interval and reason (one transaction)."""
        if not polls:
            return
        with self._session.begin() as session:
            for source, (at, interval, reason) in polls.items():
                session.execute(
                    update(Source)
                    .where(Source.name == source)
                    .values(
                        next_poll_at=at,
                        poll_interval_seconds=interval.total_seconds(),
                        poll_reason=reason[:300],
                    )
                )

    def planned_polls(self) -> dict[str, tuple[datetime, timedelta, str]]:
        """Each source's next poll, interval and reason as last set (those with one),
        by name."""
        with self._session() as session:
            rows = session.execute(
                select(
                    Source.name,
                    Source.next_poll_at,
                    Source.poll_interval_seconds,
                    Source.poll_reason,
                ).where(Source.next_poll_at.is_not(None), Source.poll_interval_seconds.is_not(None))
            ).all()
        return {
            name: (at, timedelta(seconds=seconds), reason or "")
            for name, at, seconds, reason in rows
            if at is not None and seconds is not None
        }

    def last_polls(self) -> dict[str, tuple[datetime | None, FetchState]]:
        """Each source's last poll time (None: never polled) and what its server last
        asked about how often to come back (``FetchState``), by name."""
        with self._session() as session:
            rows = session.execute(
                select(
                    Source.name,
                    Source.last_polled_at,
                    Source.retry_after_seconds,
                    Source.max_age_seconds,
                    Source.ttl_seconds,
                    Source.update_period_seconds,
                )
            ).all()
        return {
            name: (
                at,
                FetchState(retry_after=retry, max_age=age, ttl=ttl, update_period=period),
            )
            for name, at, retry, age, ttl, period in rows
        }

    def polls_planned_since(self, since: datetime | None) -> list[tuple[str, datetime, timedelta]]:
        """(name, next poll, interval) of each source polled at or after ``since``
        (None: every source) whose next poll is set: the scale-out scheduler's one
        query per tick for the next polls its workers recorded
        (crawler/orchestration/roles.py)."""
        query = select(Source.name, Source.next_poll_at, Source.poll_interval_seconds).where(
            Source.next_poll_at.is_not(None), Source.poll_interval_seconds.is_not(None)
        )
        if since is not None:
            query = query.where(Source.last_polled_at >= since)
        with self._session() as session:
            rows = session.execute(query).all()
        return [
            (name, at, timedelta(seconds=seconds))
            for name, at, seconds in rows
            if at is not None and seconds is not None
        ]

    def source_state(self, source: str) -> Source | None:
        with self._session() as session:
            return session.scalar(select(Source).where(Source.name == source))

    def record_run(self, job_id: str, at: datetime) -> None:
        """Remember that a scheduled job ran (for catching up after downtime)."""
        with self._session.begin() as session:
            row = session.get(ScheduleRun, job_id)
            if row is None:
                session.add(ScheduleRun(job_id=job_id, last_run_at=at))
            elif row.last_run_at < at:
                row.last_run_at = at

    def forget_runs(self) -> None:
        """Forget when scheduled jobs ran (the next start treats them as new)."""
        with self._session.begin() as session:
            session.execute(delete(ScheduleRun))

    def last_run(self, job_id: str) -> datetime | None:
        with self._session() as session:
            row = session.get(ScheduleRun, job_id)
            return row.last_run_at if row else None

    def robots_txt(self, origin: str) -> tuple[bytes, datetime] | None:
        """The robots.txt last fetched from ``origin``, and when."""
        with self._session() as session:
            row = session.get(RobotsTxt, origin)
            return (row.body, row.fetched_at) if row is not None else None

    def save_robots_txt(self, origin: str, body: bytes, at: datetime) -> None:
        """Remember the robots.txt just fetched from ``origin``."""
        with self._session.begin() as session:
            row = session.get(RobotsTxt, origin)
            if row is None:
                session.execute(
                    _insert_ignoring_conflict(
                        session, RobotsTxt, {"origin": origin, "body": body, "fetched_at": at}
                    )
                )
            else:
                row.body, row.fetched_at = body, at

    # -- web UI queries --------------------------------------------------------
    # Read-only, for the status pages (crawler/faces/web/) and /metrics
    # (crawler/orchestration/metrics.py). Rows are plain dicts with the keys each docstring names.

    def source_statuses(self, *, with_article_counts: bool = True) -> list[dict[str, Any]]:
        """Every source row, by name: ``name``, ``kind``, ``url``, ``discovered_url``,
        ``last_polled_at``, ``last_success_at``, ``consecutive_failures``,
        ``last_error``, ``next_poll_at``, ``poll_interval_seconds``, ``poll_reason``
        and, with counts, ``articles`` (stored from it now)."""
        query = select(
            Source.name,
            Source.kind,
            Source.url,
            Source.discovered_url,
            Source.last_polled_at,
            Source.last_success_at,
            Source.consecutive_failures,
            Source.last_error,
            Source.next_poll_at,
            Source.poll_interval_seconds,
            Source.poll_reason,
        )
        if with_article_counts:
            counts = (
                select(Article.source_id, func.count().label("articles"))
                .group_by(Article.source_id)
                .subquery()
            )
            query = query.add_columns(
                func.coalesce(counts.c.articles, 0).label("articles")
            ).outerjoin(counts, counts.c.source_id == Source.id)
        with self._session() as session:
            return [row._asdict() for row in session.execute(query.order_by(Source.name))]

    def last_source_success(self, names: Sequence[str] | None = None) -> datetime | None:
        """When a poll of any of ``names`` (default: any source) last succeeded; None
        when none ever did. What ``/healthz`` and ``/readyz`` read."""
        query = select(func.max(Source.last_success_at))
        if names is not None:
            query = query.where(Source.name.in_(list(names)))
        with self._session() as session:
            value: datetime | None = session.execute(query).scalar_one_or_none()
        return value
