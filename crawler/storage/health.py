"""What the health of a source is read from (crawler/domain/health.py), and where
it is kept: the log of finished polls, the source's publish times and recent
pages, and its current state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, func, select

from crawler.domain.health import (
    BASELINE,
    RECENT_PAGES,
    RHYTHM_WEEKS,
    Health,
    PageQuality,
    PollRecord,
    Rhythm,
    State,
)
from crawler.storage.engine import StoreBase, _insert_ignoring_conflict
from crawler.storage.models import (
    Article,
    ArticleRevision,
    Source,
    SourceHealthRow,
    SourcePoll,
)

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

# Polls read back per source: more than any state's window needs.
POLLS_READ = 20
MAX_URL_CHARS = 2048  # the URL columns' size
# Rows fetched at a time when every source's rhythm is read.
RHYTHM_BATCH = 10_000


@dataclass(frozen=True)
class HealthInputs:
    """Everything ``assess`` reads of one source: its recent polls and newest pages
    (newest first), the publish times of the rhythm's weeks, when it last brought a
    new article and when it was added."""

    polls: list[PollRecord]
    pages: list[PageQuality]
    published: list[datetime]
    last_new: datetime | None
    watched_since: datetime
    # The interval the scheduler set after the last poll (None: none yet).
    poll_interval: timedelta | None = None


@dataclass(frozen=True)
class HealthRecord:
    """A source's kept health, and what its operators were last told: the state
    (None: nothing yet), when, and how often the state changed since."""

    source: str
    health: Health
    told_state: State | None
    told_at: datetime | None
    changes: int
    checked_at: datetime | None = None


class HealthQueries(StoreBase):
    """The poll log, a source's history as its health reads it, and its state."""

    def log_poll(self, source: str, poll: PollRecord) -> None:
        with self._session.begin() as session:
            session.add(
                SourcePoll(
                    source=source,
                    at=poll.at,
                    error=poll.error[:2000] if poll.error else None,
                    error_class=poll.error_class,
                    status=poll.status,
                    new_urls=poll.new_urls,
                    stored=poll.stored,
                    challenges=poll.challenges,
                    sample_url=poll.sample_url[:MAX_URL_CHARS] if poll.sample_url else None,
                    moved_to=poll.moved_to[:MAX_URL_CHARS] if poll.moved_to else None,
                )
            )

    def health_inputs(self, source: str, now: datetime) -> HealthInputs | None:
        """``source``'s recent polls (newest first), newest pages, publish times of
        the rhythm's weeks, when it last brought a new article and when it was
        added; None for a source not in the database."""
        with self._session() as session:
            row = session.execute(
                select(Source.id, Source.created_at, Source.poll_interval_seconds).where(
                    Source.name == source
                )
            ).first()
            if row is None:
                return None
            source_id, created_at, interval = row
            polls = session.scalars(
                select(SourcePoll)
                .where(SourcePoll.source == source)
                .order_by(SourcePoll.at.desc(), SourcePoll.id.desc())
                .limit(POLLS_READ)
            ).all()
            pages = session.execute(
                select(
                    Article.url,
                    func.length(Article.body),
                    Article.title,
                    Article.published_at.is_not(None),
                )
                .where(Article.source_id == source_id, Article.purged_at.is_(None))
                .order_by(Article.fetched_at.desc(), Article.id.desc())
                .limit(RECENT_PAGES + BASELINE)
            ).all()
            published = session.scalars(
                select(Article.published_at).where(
                    Article.source_id == source_id,
                    Article.published_at >= now - timedelta(weeks=RHYTHM_WEEKS),
                    Article.published_at <= now,
                )
            ).all()
            # When the source last brought a new article: its last poll that stored
            # one (an article's fetched_at also moves when it is revised or fetched
            # again); past the poll log's retention, its newest article.
            last_new = session.scalar(
                select(func.max(SourcePoll.at)).where(
                    SourcePoll.source == source, SourcePoll.stored > 0
                )
            ) or session.scalar(
                select(func.max(Article.fetched_at)).where(Article.source_id == source_id)
            )
        return HealthInputs(
            polls=[
                PollRecord(
                    at=poll.at,
                    error=poll.error,
                    error_class=poll.error_class,
                    status=poll.status,
                    new_urls=poll.new_urls,
                    stored=poll.stored,
                    challenges=poll.challenges,
                    sample_url=poll.sample_url,
                    moved_to=poll.moved_to,
                )
                for poll in polls
            ],
            pages=[
                PageQuality(url, chars or 0, bool((title or "").strip()), bool(dated))
                for url, chars, title, dated in pages
            ],
            published=[time for time in published if time is not None],
            last_new=last_new,
            watched_since=created_at,
            poll_interval=timedelta(seconds=interval) if interval is not None else None,
        )

    def source_rhythms(self, now: datetime) -> dict[str, Rhythm]:
        """Every source's rhythm at ``now`` (sources without articles left out): one
        query over the rhythm's weeks, read in batches and ordered by source, so only
        one source's publish times are held at a time."""
        start = now - timedelta(weeks=RHYTHM_WEEKS)
        query = (
            select(Source.name, Article.published_at)
            .join(Source, Source.id == Article.source_id)
            .where(Article.published_at >= start, Article.published_at <= now)
            .order_by(Article.source_id)
            .execution_options(yield_per=RHYTHM_BATCH)
        )
        with self._session() as session:
            rows = session.execute(query)
            return {
                name: Rhythm.from_times((time for _name, time in group if time), now)
                for name, group in groupby(rows, key=itemgetter(0))
            }

    def published_since(self, source: str, since: datetime) -> list[datetime]:
        """Publish times of ``source``'s articles after ``since`` (none in the future)."""
        with self._session() as session:
            times = session.scalars(
                select(Article.published_at)
                .join(Source, Source.id == Article.source_id)
                .where(Source.name == source, Article.published_at > since)
            ).all()
        return [time for time in times if time is not None]

    def new_articles_per_day(self, source: str, since: datetime) -> dict[date, int]:
        """How many of ``source``'s articles were first seen on each UTC day since
        ``since`` (days without any left out). First seen: the fetch of an article's
        first revision, as a revised article's ``fetched_at`` moves on. Bucketed
        here, not in SQL, so SQLite and PostgreSQL agree on the days."""
        with self._session() as session:
            rows = session.execute(
                select(Article.fetched_at, func.min(ArticleRevision.fetched_at))
                .join(Source, Source.id == Article.source_id)
                .outerjoin(ArticleRevision, ArticleRevision.article_id == Article.id)
                # First seen is never after the last fetch: the index narrows it.
                .where(Source.name == source, Article.fetched_at >= since)
                .group_by(Article.id, Article.fetched_at)
            ).all()
        days: dict[date, int] = {}
        for fetched, first_revision in rows:
            first = min(fetched, first_revision) if first_revision is not None else fetched
            if first >= since:
                day = first.astimezone(UTC).date()
                days[day] = days.get(day, 0) + 1
        return days

    def source_health(self, source: str) -> tuple[Health, str | None] | None:
        """``source``'s stored health and the state its operators were last told of."""
        with self._session() as session:
            row = session.get(SourceHealthRow, source)
            if row is None:
                return None
            return _health(row), row.told_state

    def save_health(self, source: str, health: Health, now: datetime) -> None:
        """Keep ``source``'s health; a change of state is counted for its operators.
        Two processes assessing a new source at once (a worker after its poll, the
        scheduler's sweep) both succeed: the row is inserted once, then updated."""
        with self._session.begin() as session:
            session.execute(
                _insert_ignoring_conflict(
                    session,
                    SourceHealthRow,
                    {
                        "source": source,
                        "state": State.OK.value,
                        "reason": "",
                        "evidence": {},
                        "since": health.since or now,
                        "checked_at": now,
                        "changes": 0,
                    },
                )
            )
            # Inserted above, or there already: one() says so loudly if not.
            row = session.execute(
                select(SourceHealthRow).where(SourceHealthRow.source == source).with_for_update()
            ).scalar_one()
            # A source first assessed was taken to be ok (operators were told nothing).
            if row.state != health.state.value:
                row.changes = (row.changes or 0) + 1
            row.state = health.state.value
            row.reason = health.reason
            row.evidence = dict(health.evidence)
            row.since = health.since or now
            row.checked_at = now

    def mark_told(self, source: str, state: State, now: datetime) -> None:
        """Note that ``source``'s operators were told it is in ``state``."""
        with self._session.begin() as session:
            row = session.get(SourceHealthRow, source)
            if row is not None:
                row.told_state, row.told_at, row.changes = state.value, now, 0

    def health_records(self) -> list[HealthRecord]:
        """Every assessed source's health and what its operators were told, by name."""
        with self._session() as session:
            rows = session.scalars(select(SourceHealthRow).order_by(SourceHealthRow.source))
            return [
                HealthRecord(
                    source=row.source,
                    health=_health(row),
                    told_state=State(row.told_state) if row.told_state else None,
                    told_at=row.told_at,
                    changes=row.changes or 0,
                    checked_at=row.checked_at,
                )
                for row in rows
            ]

    def all_health(self) -> dict[str, Health]:
        """Every assessed source's health, by name."""
        with self._session() as session:
            rows = session.scalars(select(SourceHealthRow)).all()
            return {row.source: _health(row) for row in rows}

    def purge_polls(self, before: datetime) -> int:
        """Retention: the poll log older than ``before``."""
        with self._session.begin() as session:
            result = session.execute(delete(SourcePoll).where(SourcePoll.at < before))
            return cast("CursorResult[Any]", result).rowcount


def _health(row: SourceHealthRow) -> Health:
    return Health(
        state=State(row.state), reason=row.reason, evidence=dict(row.evidence), since=row.since
    )
