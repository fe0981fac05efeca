"""Whether newswatch can trust what it sees of a source: one health state per
source, from the source's own history (README, "Source health").

Pure functions over what storage keeps: the source's recent polls (``PollRecord``),
the times its articles were published (its *rhythm*) and first seen, and the
quality of its recent pages. ``assess`` returns the worst state that holds, in the
order ``moved`` > ``blocked`` > ``failing`` > ``degraded`` > ``quiet`` > ``ok``, with
its reason, its evidence and since when.

- **moved**: the last poll found the source URL permanently redirected (301/308)
  or gone (410).
- **blocked**: the last ``BLOCKED_POLLS`` polls were refused in a way that says
  "not you" (401, 403, 429, 503, a bot-challenge page, robots.txt), or the last
  poll's new pages were all challenge pages.
- **failing**: ``FAILING_POLLS`` failed polls in a row, of the last one's class
  (DNS, connect, TLS, timeout, HTTP status, unparseable feed).
- **degraded**: of the source's last ``RECENT_PAGES`` new pages, the share without
  a body (under ``THIN_BODY_CHARS`` characters), a title or a publish time is at
  least ``DEGRADED_SHARE`` and ``DEGRADED_JUMP`` above the share among its pages of
  the ``BASELINE`` before (its page template changed).
- **quiet**: no new article for longer than the source's rhythm allows: the
  number of articles its rhythm expects in the silence (per hour of the week,
  from the last ``RHYTHM_WEEKS`` weeks of publish times) reaches
  ``QUIET_EXPECTED``: the chance of such a silence by luck is e^-4.6, 1 %. A
  source that is silent every weekend expects nothing on Sunday. Before the
  source has ``RHYTHM_MIN_WEEKS`` weeks and ``RHYTHM_MIN_ARTICLES`` articles of
  history, its poll interval sets the bar: ``QUIET_POLLS`` polls without news, and
  never less than ``QUIET_MIN``.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from crawler.domain.failures import BLOCKING_STATUSES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "BLOCKING_STATUSES",
    "Health",
    "PageQuality",
    "PollRecord",
    "Rhythm",
    "State",
    "assess",
]


class State(StrEnum):
    OK = "ok"
    QUIET = "quiet"
    FAILING = "failing"
    BLOCKED = "blocked"
    DEGRADED = "degraded"
    MOVED = "moved"

    @property
    def bad(self) -> bool:
        return self is not State.OK


MOVED_STATUSES = frozenset({301, 308, 410})
BLOCKED_POLLS = 2
FAILING_POLLS = 3
RECENT_PAGES = 10
BASELINE = 50
THIN_BODY_CHARS = 200
DEGRADED_SHARE = 0.5
DEGRADED_JUMP = 0.3
MIN_RECENT_PAGES = 5
RHYTHM_WEEKS = 8
RHYTHM_MIN_WEEKS = 2
RHYTHM_MIN_ARTICLES = 20
QUIET_EXPECTED = 4.6
QUIET_POLLS = 48
QUIET_MIN = timedelta(days=3)
HOURS_A_WEEK = 7 * 24
# A source whose last poll succeeded and whose next is this many intervals late (and
# at least STALL_MIN) has stopped being polled: quiet, and said so.
STALL_POLLS = 4
STALL_MIN = timedelta(hours=1)
# The poll log's retention: longer than any state's window (20 polls are read), short
# enough to stay small with thousands of sources polled every few minutes.
POLL_HISTORY = timedelta(days=7)


@dataclass(frozen=True)
class PollRecord:
    """One finished poll, as the health of its source reads it."""

    at: datetime
    error: str | None = None
    # dns, connect, tls, timeout, http, unparseable, challenge, robots, other
    error_class: str | None = None
    status: int | None = None
    new_urls: int = 0
    stored: int = 0
    challenges: int = 0  # new pages that were bot-challenge pages
    sample_url: str | None = None  # a page or URL that shows the problem
    moved_to: str | None = None  # where a permanent redirect of the source URL led

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def refused(self) -> bool:
        """Refused in a way that says "not you": blocked, not broken."""
        return self.failed and (
            self.error_class in {"challenge", "robots"} or self.status in BLOCKING_STATUSES
        )


@dataclass(frozen=True)
class PageQuality:
    """One new page of the source as extraction left it."""

    url: str
    body_chars: int
    has_title: bool
    has_date: bool

    @property
    def poor(self) -> bool:
        return self.body_chars < THIN_BODY_CHARS or not self.has_title or not self.has_date


@dataclass(frozen=True)
class Health:
    """A source's state, why, the evidence, and since when."""

    state: State
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    since: datetime | None = None


@dataclass(frozen=True)
class Rhythm:
    """How many articles a source publishes in each hour of the week (168 rates, in
    articles an hour, Monday 00:00 UTC first), from how many weeks and articles.

    The rates are an ``array`` of 32-bit floats (0.7 KB), not a tuple of floats
    (5.4 KB): the scheduler keeps one rhythm per source, 10,000 of them."""

    rates: array[float]
    weeks: float
    articles: int

    @classmethod
    def from_times(cls, published: Iterable[datetime], now: datetime) -> Rhythm:
        """The rhythm of the publish times within ``RHYTHM_WEEKS`` before ``now``
        (future ones ignored), each hour's count smoothed with its neighbours."""
        start = now - timedelta(weeks=RHYTHM_WEEKS)
        counts = [0] * HOURS_A_WEEK
        first: datetime | None = None
        articles = 0
        for time in published:
            time = _aware(time)
            if not start <= time <= now:
                continue
            counts[_hour_of_week(time)] += 1
            articles += 1
            first = time if first is None or time < first else first
        weeks = (now - first) / timedelta(weeks=1) if first is not None else 0.0
        span = max(weeks, 1.0)  # one busy day is not a week's rate times seven
        rates = array(
            "f",
            (
                (counts[h - 1] + 2 * counts[h] + counts[(h + 1) % HOURS_A_WEEK]) / 4 / span
                for h in range(HOURS_A_WEEK)
            ),
        )
        return cls(rates=rates, weeks=weeks, articles=articles)

    @property
    def enough(self) -> bool:
        return self.weeks >= RHYTHM_MIN_WEEKS and self.articles >= RHYTHM_MIN_ARTICLES

    def expected(self, start: datetime, end: datetime) -> float:
        """Articles the rhythm expects between ``start`` and ``end``."""
        start, end = _aware(start), _aware(end)
        if end <= start:
            return 0.0
        total = 0.0
        weeks = (end - start) // timedelta(weeks=1)
        if weeks:  # whole weeks at once: a long silence costs no more to weigh
            total += weeks * sum(self.rates)
            start += timedelta(weeks=weeks)
        time = start
        while time < end:
            hour_end = time.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            step = min(hour_end, end) - time
            total += self.rates[_hour_of_week(time)] * (step / timedelta(hours=1))
            time += step
        return total

    def expected_on(self, day: date) -> float:
        """Articles the rhythm expects on the UTC ``day`` (its weekday's 24 hours)."""
        start = day.weekday() * 24
        return sum(self.rates[start : start + 24])

    def typical_gap(self) -> timedelta | None:
        """The mean time between articles (None without any)."""
        per_week = sum(self.rates)
        return timedelta(weeks=1) / per_week if per_week else None


def _hour_of_week(time: datetime) -> int:
    utc = time.astimezone(UTC)
    return utc.weekday() * 24 + utc.hour


def _aware(time: datetime) -> datetime:
    return time if time.tzinfo is not None else time.replace(tzinfo=UTC)


def assess(
    polls: Sequence[PollRecord],
    pages: Sequence[PageQuality],
    rhythm: Rhythm,
    *,
    last_new: datetime | None,
    watched_since: datetime,
    every: timedelta,
    now: datetime,
    previous: Health | None = None,
    quiet_after: timedelta | None = None,
) -> Health:
    """The source's health at ``now``: ``polls`` newest first, ``pages`` its newest
    pages first, ``last_new`` when it last brought a new article (None: never, then
    ``watched_since``, when it was added), ``every`` its poll interval;
    ``quiet_after`` (the source's own setting) replaces the rhythm's bar. ``since``
    carries over from ``previous`` while the state stays the same."""
    health = (
        _moved(polls)
        or _blocked(polls)
        or _failing(polls)
        or _degraded(pages)
        or _quiet(
            rhythm,
            last_new or watched_since,
            every,
            now,
            never=last_new is None,
            quiet_after=quiet_after,
            # A failed last poll is retried on the backoff, not on the interval.
            polled=polls[0].at if polls and not polls[0].failed else None,
        )
        or Health(State.OK, "ok", _rhythm_evidence(rhythm))
    )
    since = previous.since if previous is not None and previous.state is health.state else None
    return Health(health.state, health.reason, health.evidence, since or now)


def _moved(polls: Sequence[PollRecord]) -> Health | None:
    if not polls:
        return None
    last = polls[0]
    if last.status == 410:
        return Health(
            State.MOVED,
            "gone: the source URL answers 410",
            {"status": 410, "url": last.sample_url},
        )
    if last.moved_to:
        return Health(
            State.MOVED,
            f"moved permanently to {last.moved_to}: update the configuration",
            {"moved_to": last.moved_to},
        )
    return None


def _blocked(polls: Sequence[PollRecord]) -> Health | None:
    if not polls:
        return None
    last = polls[0]
    if not last.failed and last.challenges and last.challenges >= last.new_urls:
        return Health(
            State.BLOCKED,
            f"every new page was a bot challenge ({last.challenges})",
            {"challenges": last.challenges, "url": last.sample_url},
        )
    run = _leading(polls, lambda poll: poll.refused)
    if len(run) < BLOCKED_POLLS:
        return None
    statuses = sorted({poll.status for poll in run if poll.status is not None})
    what = (
        "a bot challenge"
        if last.error_class == "challenge"
        else "robots.txt disallows it"
        if last.error_class == "robots"
        else f"HTTP {last.status}"
    )
    return Health(
        State.BLOCKED,
        f"refused by the site ({what}) {len(run)} polls in a row",
        {
            "polls": len(run),
            "statuses": statuses,
            "error": last.error,
            "url": last.sample_url,
            "first_at": run[-1].at.isoformat(),
        },
    )


def _failing(polls: Sequence[PollRecord]) -> Health | None:
    run = _leading(polls, lambda poll: poll.failed)
    if len(run) < FAILING_POLLS:
        return None
    last = run[0]
    kind = last.error_class or "other"
    return Health(
        State.FAILING,
        f"{len(run)} failed polls in a row ({_FAILURE_NAMES.get(kind, kind)})",
        {
            "polls": len(run),
            "class": kind,
            "status": last.status,
            "error": last.error,
            "first_at": run[-1].at.isoformat(),
        },
    )


_FAILURE_NAMES = {
    "dns": "DNS: the name does not resolve",
    "connect": "cannot connect",
    "tls": "TLS handshake failed",
    "timeout": "timed out",
    "http": "HTTP error status",
    "unparseable": "the feed cannot be parsed",
    "challenge": "bot challenge",
    "robots": "robots.txt disallows it",
    "other": "other error",
}


def _leading(polls: Sequence[PollRecord], holds: Callable[[PollRecord], bool]) -> list[PollRecord]:
    """The newest polls for which ``holds`` is true, up to the first that is not."""
    run = []
    for poll in polls:
        if not holds(poll):
            break
        run.append(poll)
    return run


def _degraded(pages: Sequence[PageQuality]) -> Health | None:
    recent = pages[:RECENT_PAGES]
    baseline = pages[RECENT_PAGES : RECENT_PAGES + BASELINE]
    # Without a baseline of its own there is no change to see: a new source whose
    # pages were always thin is not "degraded".
    if len(recent) < MIN_RECENT_PAGES or len(baseline) < MIN_RECENT_PAGES:
        return None
    now_share = _poor_share(recent)
    before = _poor_share(baseline)
    if now_share < DEGRADED_SHARE or now_share - before < DEGRADED_JUMP:
        return None
    poor = [page for page in recent if page.poor]
    return Health(
        State.DEGRADED,
        f"{len(poor)} of the last {len(recent)} pages have no body, title or date "
        f"(before: {before:.0%} of {len(baseline)}): did the page template change?",
        {
            "recent_poor": len(poor),
            "recent": len(recent),
            "baseline_share": round(before, 3),
            "baseline": len(baseline),
            "no_body": sum(page.body_chars < THIN_BODY_CHARS for page in recent),
            "no_title": sum(not page.has_title for page in recent),
            "no_date": sum(not page.has_date for page in recent),
            "url": poor[0].url,
        },
    )


def _poor_share(pages: Sequence[PageQuality]) -> float:
    return sum(page.poor for page in pages) / len(pages)


def quiet_bar(every: timedelta) -> timedelta:
    """Silence that makes a source without enough history quiet."""
    return max(every * QUIET_POLLS, QUIET_MIN)


def stall_after(every: timedelta) -> timedelta:
    """How late a source's next poll may be before its polls count as stopped."""
    return max(every * STALL_POLLS, STALL_MIN)


def _quiet(
    rhythm: Rhythm,
    last_new: datetime,
    every: timedelta,
    now: datetime,
    *,
    never: bool,
    quiet_after: timedelta | None = None,
    polled: datetime | None = None,
) -> Health | None:
    if polled is not None and now - _aware(polled) > stall_after(every):
        return Health(
            State.QUIET,
            f"not polled since {_aware(polled):%Y-%m-%d %H:%M} UTC "
            f"({_duration(now - _aware(polled))}): is the scheduler running?",
            {
                "last_poll": _aware(polled).isoformat(),
                "every_minutes": every / timedelta(minutes=1),
            },
        )
    # Silence is what the polls saw: time nobody polled (the service down) is not.
    seen_until = min(now, _aware(polled)) if polled is not None else now
    silence = seen_until - _aware(last_new)
    heard = "since it was added" if never else f"since {_aware(last_new):%Y-%m-%d %H:%M} UTC"
    if quiet_after is not None:
        if silence < quiet_after:
            return None
        return Health(
            State.QUIET,
            f"no new article {heard} ({_duration(silence)}; its quiet_after is "
            f"{_duration(quiet_after)})",
            {
                "silence_hours": round(silence / timedelta(hours=1), 1),
                "quiet_after_hours": round(quiet_after / timedelta(hours=1), 1),
            },
        )
    if rhythm.enough:
        expected = rhythm.expected(last_new, seen_until)
        if expected < QUIET_EXPECTED:
            return None
        gap = rhythm.typical_gap()
        return Health(
            State.QUIET,
            f"no new article {heard} ({_duration(silence)}); its rhythm expects "
            f"{expected:.1f} in that time",
            {
                "silence_hours": round(silence / timedelta(hours=1), 1),
                "expected_articles": round(expected, 2),
                "typical_gap_hours": round(gap / timedelta(hours=1), 2) if gap else None,
                "history_weeks": round(rhythm.weeks, 1),
                "history_articles": rhythm.articles,
            },
        )
    bar = quiet_bar(every)
    if silence < bar:
        return None
    return Health(
        State.QUIET,
        f"no new article {heard} ({_duration(silence)}; too little history for a "
        f"rhythm, the bar is {_duration(bar)})",
        {
            "silence_hours": round(silence / timedelta(hours=1), 1),
            "bar_hours": round(bar / timedelta(hours=1), 1),
            "history_weeks": round(rhythm.weeks, 1),
            "history_articles": rhythm.articles,
        },
    )


def _rhythm_evidence(rhythm: Rhythm) -> dict[str, Any]:
    """What the source's rhythm says when all is well (the status page, /metrics)."""
    gap = rhythm.typical_gap()
    return {
        "typical_gap_hours": round(gap / timedelta(hours=1), 2) if gap else None,
        "history_weeks": round(rhythm.weeks, 1),
        "history_articles": rhythm.articles,
    }


def _duration(span: timedelta) -> str:
    hours = span / timedelta(hours=1)
    if hours < 48:
        return f"{math.floor(hours)} h"
    return f"{hours / 24:.1f} days"
