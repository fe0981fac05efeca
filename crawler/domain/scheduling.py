"""When each source is polled next (README, "Adaptive polling"): pure functions over
the source's learned rhythm (``crawler.domain.health.Rhythm``), its bounds, what its
server last asked for, and the daily request budget shared by all sources.

Why the square root. Articles arrive about as a Poisson process of rate λ; polled at
rate r, an article waits 1/(2r) on average. Spending a fixed number of polls a day
so that the total wait over all articles is least gives r ∝ √λ (a Lagrange
multiplier: minimise Σ λᵢ/(2rᵢ) subject to Σ rᵢ = B). That holds across sources
and across the hours of one source's week alike, so a source is polled at

    r(h) = k · √λ(h) / every        (polls an hour, clamped to its bounds)

where λ(h) is the rate its rhythm expects for hour ``h`` of the week and ``k`` is
one number for all the sources sharing the budget (``pool_scale``): a source that
publishes 1/k² articles an hour is polled at its ``every``, a busier one more often,
a quieter one less. ``every`` thus keeps its meaning as the source's *share*: two
sources of the same rhythm are polled in the ratio of their ``every``, and with all
rhythms equal the schedule is exactly the fixed one. ``k`` is chosen so that the
sources together make the requests a day that fixed intervals would make (or
``polling.requests_per_day``); it is computed when rhythms are refreshed, not per poll.

Miniflux's ``entry_frequency`` scheduler sets 1/r ∝ 1/(weekly entries): linear in λ,
which polls a wire far more than the square root would and a blog far less, and
ignores the hour of the week; ``bench/freshness.py`` compares the two at the same
number of requests.

A source with an hourly rhythm (``Rhythm.enough``) is planned hour by hour; one with
at least 2 weeks and ``SPARSE_MIN_ARTICLES`` articles at its mean rate (a weekly blog);
one still learning, or with ``adaptive: false``, is polled at its ``every``, as before.
Server hints (``Cache-Control: max-age``, ``Retry-After``, a feed's ``<ttl>`` and
``sy:updatePeriod``/``sy:updateFrequency``) are honoured by an adaptive plan where they
ask for a longer wait, never beyond ``max_interval``. A fixed plan (``adaptive: false``,
or still learning) honours ``Retry-After`` alone: the user chose its interval, and
WordPress says ``sy:updatePeriod hourly`` by default, which would quietly make a
source set to ``every: 10m`` hourly.
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import numpy as np

from crawler.domain.health import HOURS_A_WEEK, RHYTHM_MIN_WEEKS

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from crawler.domain.health import Rhythm

__all__ = [
    "NextPoll",
    "PollBounds",
    "PollPlan",
    "ServerHints",
    "backoff_reason",
    "max_age_from",
    "next_poll",
    "polled_every",
    "pool_scale",
    "safety_net_reason",
    "ttl_from",
    "update_period_from",
    "wait_of",
]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# An hour in which the source never published in 8 weeks is not an hour in which
# it cannot: each hour's rate is taken as at least this share of its mean rate, so
# that a weekday-only source is still looked at over the weekend.
PRIOR_SHARE = 0.1
# Fewer articles than this in the rhythm's weeks: still learning, polled at ``every``.
SPARSE_MIN_ARTICLES = 3
# A burst: at least BURST_MIN_ARTICLES published in the last BURST_WINDOW and
# BURST_FACTOR times what the rhythm expects there. The observed rate then stands
# for the rhythm's over the next BURST_WINDOW (news days are not in the rhythm).
BURST_WINDOW = timedelta(hours=1)
BURST_MIN_ARTICLES = 3
BURST_FACTOR = 3.0
# What the reasons say (NextPoll.asked_by_server, NextPoll.backoff read them back
# after a restart: the reason is what is kept of a source's next poll).
RETRY_AFTER = "Retry-After"
BACKOFF = "backoff: "
# Longer waits a server asks for are taken as this long: always past max_interval and
# max_backoff, which cap them further, and far from a timedelta's or datetime's end.
LONGEST_WAIT = timedelta(days=365)
# pool_scale stops once the budget is met within this share.
POOL_TOLERANCE = 1e-3
POOL_ROUNDS = 30


class SourcePolling(Protocol):
    """What ``PollBounds.from_config`` reads of a source (``SourceConfig``; the
    config package sits above this module, so it is named by shape, not import)."""

    @property
    def every(self) -> timedelta: ...
    @property
    def adaptive(self) -> bool | None: ...
    @property
    def min_interval(self) -> timedelta | None: ...
    @property
    def max_interval(self) -> timedelta | None: ...


class GlobalPolling(Protocol):
    """What ``PollBounds.from_config`` reads of ``polling:`` (``PollingConfig``)."""

    @property
    def adaptive(self) -> bool: ...
    @property
    def min_interval(self) -> timedelta: ...
    @property
    def max_interval(self) -> timedelta: ...


@dataclass(frozen=True)
class PollBounds:
    """How a source may be polled: ``every`` is its share of the budget (its mean
    interval; its fixed interval when not adaptive), never more often than
    ``min_interval`` nor more rarely than ``max_interval`` (each widened to include
    ``every``: a source set to poll every minute keeps doing so)."""

    every: timedelta
    min_interval: timedelta = timedelta(minutes=5)
    max_interval: timedelta = timedelta(hours=6)
    adaptive: bool = True

    @classmethod
    def from_config(cls, source: SourcePolling, polling: GlobalPolling) -> PollBounds:
        """The source's bounds, its own settings over ``polling``'s."""
        return cls(
            every=source.every,
            min_interval=source.min_interval or polling.min_interval,
            max_interval=source.max_interval or polling.max_interval,
            adaptive=polling.adaptive if source.adaptive is None else source.adaptive,
        )

    @property
    def floor(self) -> timedelta:
        return min(self.min_interval, self.every)

    @property
    def ceiling(self) -> timedelta:
        return max(self.max_interval, self.every)

    @property
    def polls_a_day(self) -> float:
        """What a fixed interval of ``every`` makes: the source's daily budget."""
        return DAY / self.every


@dataclass(frozen=True)
class ServerHints:
    """What the source's server said at the last poll about how often to come back
    (None: not said). Only a longer wait than the policy's is honoured."""

    retry_after: timedelta | None = None  # Retry-After (429, 503, or any status)
    max_age: timedelta | None = None  # Cache-Control: max-age of the feed
    ttl: timedelta | None = None  # RSS <ttl>
    update_period: timedelta | None = None  # sy:updatePeriod / sy:updateFrequency


@dataclass(frozen=True)
class NextPoll:
    """When the source is polled next, and why (``newswatch status``)."""

    at: datetime
    interval: timedelta
    reason: str

    @property
    def asked_by_server(self) -> bool:
        """The wait is one a server's ``Retry-After`` asked for: politeness, kept
        across a restart and a reload."""
        return RETRY_AFTER in self.reason

    @property
    def backoff(self) -> bool:
        """The wait is a backoff after failed polls (``backoff_reason``)."""
        return self.reason.startswith(BACKOFF)


def backoff_reason(why: str, delay: timedelta) -> str:
    """The reason of a backoff: ``backoff: 3 failed polls in a row → every 2h``."""
    return f"{BACKOFF}{why} → every {format_interval(delay)}"


def safety_net_reason(interval: timedelta) -> str:
    """The reason of a source a WebSub hub pushes, polled only as a safety net."""
    return f"WebSub push; safety-net poll every {format_interval(interval)}"


def wait_of(seconds: float | None) -> timedelta | None:
    """A wait a server asked for, in seconds, as a span of at most ``LONGEST_WAIT``
    (None: not asked). A ``Retry-After`` of 10**12 seconds or a date in the year 9999
    is read as a long wait, capped by the bounds later, never as an overflow."""
    if not seconds or seconds <= 0 or math.isnan(seconds):
        return None
    return timedelta(seconds=min(seconds, LONGEST_WAIT.total_seconds()))


@dataclass(frozen=True)
class PollPlan:
    """A source's poll rate for each hour of the week (polls an hour, within its
    bounds), built once per rhythm and budget and kept until either changes."""

    bounds: PollBounds
    expected: Sequence[float]  # articles an hour, for each hour of the week
    scale: float  # polls an hour per √(articles an hour): k / every
    adaptive: bool  # False: polled at ``every`` (not adaptive, or too little history)
    learning: str = ""  # why not adaptive, when it is for lack of history

    @classmethod
    def build(cls, rhythm: Rhythm, bounds: PollBounds, scale: float | None) -> PollPlan:
        """The plan for ``rhythm`` under the pool's ``scale`` (``pool_scale``); None
        (no pool) spends the source's own ``every`` budget over its week."""
        if not bounds.adaptive:
            return cls(bounds, (), 0.0, adaptive=False)
        expected = _profile(rhythm)
        if expected is None:
            return cls(bounds, (), 0.0, adaptive=False, learning=_learning(rhythm))
        if scale is None:
            scale = pool_scale([(rhythm, bounds)])
        return cls(bounds, expected, scale / _hours(bounds.every), adaptive=True)

    def rate(self, articles_an_hour: float) -> float:
        """Polls an hour for a source expected to publish ``articles_an_hour``."""
        unclamped = self.scale * math.sqrt(articles_an_hour)
        return min(max(unclamped, 1 / _hours(self.bounds.ceiling)), 1 / _hours(self.bounds.floor))

    def polls_a_week(self) -> float:
        if not self.adaptive:
            return _hours(timedelta(weeks=1)) / _hours(self.bounds.every)
        return sum(self.rate(rate) for rate in self.expected)


def _profile(rhythm: Rhythm) -> array[float] | None:
    """The articles an hour to plan on for each hour of the week: the rhythm's own
    (each at least ``PRIOR_SHARE`` of its mean) once it is ``enough``; its mean rate
    in every hour for a source too sparse for an hourly shape (a weekly blog never
    has 20 articles in 8 weeks, but 2 weeks tell its rate); None: still learning."""
    mean = sum(rhythm.rates) / len(rhythm.rates)
    if rhythm.enough:  # as compact as the rhythm's (a plan is kept per source)
        return array("f", (max(rate, PRIOR_SHARE * mean) for rate in rhythm.rates))
    if rhythm.weeks >= RHYTHM_MIN_WEEKS and rhythm.articles >= SPARSE_MIN_ARTICLES:
        return array("f", (mean,)) * len(rhythm.rates)
    return None


def _learning(rhythm: Rhythm) -> str:
    return (
        f"learning its rhythm: {rhythm.articles} articles in {rhythm.weeks:.1f} weeks, "
        f"adaptive from {SPARSE_MIN_ARTICLES} in {RHYTHM_MIN_WEEKS}"
    )


def pool_scale(
    sources: Iterable[tuple[Rhythm, PollBounds]], requests_per_day: float | None = None
) -> float:
    """The ``k`` that makes the adaptive sources among ``sources`` spend, together,
    ``requests_per_day`` less what the fixed ones (not adaptive, or too little
    history) spend; None: what fixed intervals of their ``every`` would make. One
    source alone gets its own ``every`` budget, spread over its week.

    Found by a few proportional corrections (the total is close to linear in ``k``
    until bounds bite), not a solve per poll: call it when rhythms are refreshed.
    Each correction sums every source's 168 hourly rates as one array (numpy): 10,000
    sources take a fraction of a second, where a loop over ``PollPlan.rate`` took
    seconds per correction."""
    shared: list[tuple[array[float], PollBounds]] = []
    fixed = 0.0
    budget = 0.0
    for rhythm, bounds in sources:
        budget += bounds.polls_a_day
        profile = _profile(rhythm) if bounds.adaptive else None
        if profile is not None:
            shared.append((profile, bounds))
        else:
            fixed += bounds.polls_a_day
    if requests_per_day is not None:
        budget = requests_per_day
    target = (budget - fixed) * 7  # polls a week left to the adaptive sources
    if not shared:
        return 1.0
    if target <= 0:
        return 0.0  # every adaptive source at its ceiling

    # One row per adaptive source: √(articles an hour) for each hour of its week,
    # and its bounds as polls an hour (PollPlan.rate for all of them at once).
    roots = np.sqrt(np.array([rates for rates, _ in shared], dtype=float))
    every = np.array([_hours(bounds.every) for _, bounds in shared])
    lowest = np.array([1 / _hours(bounds.ceiling) for _, bounds in shared])[:, None]
    highest = np.array([1 / _hours(bounds.floor) for _, bounds in shared])[:, None]

    def polls_a_week(k: float) -> float:
        return float(np.clip((k / every)[:, None] * roots, lowest, highest).sum())

    unclamped = float((roots.sum(axis=1) / every).sum())
    k = target / unclamped if unclamped else 1.0
    for _ in range(POOL_ROUNDS):
        made = polls_a_week(k)
        if abs(made / target - 1) <= POOL_TOLERANCE:
            break
        k *= target / made
    return k


def next_poll(
    plan: PollPlan,
    now: datetime,
    *,
    hints: ServerHints | None = None,
    recent: Sequence[datetime] = (),
) -> NextPoll:
    """The next poll after one that ended at ``now``: when the poll rate the plan
    gives the coming hours adds up to one poll (so a source about to wake is polled
    as it wakes), sooner in a burst (``recent``: publish times of its articles seen
    in the last ``BURST_WINDOW``), later where ``hints`` ask for it (only their
    ``Retry-After`` for a plan that is not adaptive)."""
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    if not plan.adaptive:
        interval = plan.bounds.every
        why = "adaptive: false" if not plan.bounds.adaptive else plan.learning
        reason = f"every {format_interval(interval)} ({why})"
    else:
        interval, reason = _adaptive_interval(plan, now, recent)
    if hints is not None and not plan.adaptive:
        # The user's interval stands; only a server's explicit "stay away" (politeness).
        hints = ServerHints(retry_after=hints.retry_after)
    interval, reason = _honour_hints(interval, reason, hints, plan.bounds.ceiling)
    return NextPoll(now + interval, interval, reason)


def _adaptive_interval(
    plan: PollPlan, now: datetime, recent: Sequence[datetime]
) -> tuple[timedelta, str]:
    utc = now.astimezone(UTC)
    position = utc.weekday() * 24 + utc.hour + (utc.minute * 60 + utc.second) / 3600
    burst = _burst_rate(plan, position, now, recent)
    # Walk the coming hours of the week until the poll rate adds up to one poll.
    owed, elapsed, hour = 1.0, 0.0, position
    ceiling = _hours(plan.bounds.ceiling)
    while elapsed < ceiling:
        index = int(hour) % HOURS_A_WEEK
        step = math.floor(hour) + 1 - hour
        articles = plan.expected[index]
        if burst is not None and elapsed < _hours(BURST_WINDOW):
            articles = max(articles, burst)
            step = min(step, _hours(BURST_WINDOW) - elapsed)
        rate = plan.rate(articles)
        if rate * step >= owed:
            elapsed += owed / rate
            break
        owed -= rate * step
        elapsed += step
        hour += step
    interval = min(timedelta(hours=elapsed), plan.bounds.ceiling)
    now_rate = plan.expected[int(position) % HOURS_A_WEEK]
    shown = format_interval(interval)
    if burst is not None and burst > now_rate:
        return interval, f"burst: {len(recent)} new in the last hour → every {shown}"
    bound = (
        " (min_interval)"
        if interval <= plan.bounds.floor
        else " (max_interval)"
        if interval >= plan.bounds.ceiling
        else ""
    )
    return interval, f"adaptive: ~{now_rate:.2g} new/h expected now → every {shown}{bound}"


def _burst_rate(
    plan: PollPlan, position: float, now: datetime, recent: Sequence[datetime]
) -> float | None:
    """Articles an hour seen in the last ``BURST_WINDOW``, when that is a burst."""
    window_start = now - BURST_WINDOW
    seen = sum(1 for time in recent if window_start < _aware(time) <= now)
    if seen < BURST_MIN_ARTICLES:
        return None
    expected = plan.expected[int(position - 0.5) % HOURS_A_WEEK] * _hours(BURST_WINDOW)
    if seen < BURST_FACTOR * expected:
        return None
    return seen / _hours(BURST_WINDOW)


def _honour_hints(
    interval: timedelta, reason: str, hints: ServerHints | None, ceiling: timedelta
) -> tuple[timedelta, str]:
    if hints is None:
        return interval, reason
    asked = [
        (hints.retry_after, RETRY_AFTER),
        (hints.max_age, "Cache-Control max-age"),
        (hints.ttl, "feed ttl"),
        (hints.update_period, "feed sy:updatePeriod"),
    ]
    for wait, name in asked:
        if wait is None or wait <= interval:
            continue
        if wait > ceiling:
            interval = ceiling
            reason = (
                f"{name} {format_interval(wait)}, capped at max_interval {format_interval(ceiling)}"
            )
        else:
            interval = wait
            reason = f"{name} {format_interval(wait)}"
    return interval, reason


def polled_every(every: timedelta, interval: timedelta | None) -> timedelta:
    """The interval a source's health judges its polls by: the one the scheduler
    set after its last poll, when longer than its ``every`` (an adaptive source of a
    quiet rhythm is polled every few hours, and is not stalled for it;
    crawler.domain.health ``assess``)."""
    return max(every, interval) if interval is not None else every


def format_interval(span: timedelta) -> str:
    """``45s``, ``9m``, ``1h30m``, ``2d``: as short as the config's durations."""
    seconds = round(span.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


# -- reading the hints from a response -------------------------------------------------

_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d{1,10})\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\b", re.IGNORECASE)
_PERIODS = {
    "hourly": HOUR,
    "daily": DAY,
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}


def max_age_from(cache_control: str | None) -> timedelta | None:
    """The freshness a ``Cache-Control`` header grants (``max-age``; ``s-maxage``
    when both are given, the larger); None without one or with ``no-cache``."""
    if not cache_control or _NO_CACHE.search(cache_control):
        return None
    ages = [int(found) for found in _MAX_AGE.findall(cache_control)]
    return timedelta(seconds=max(ages)) if ages else None


def ttl_from(text: str | None) -> timedelta | None:
    """An RSS ``<ttl>`` (minutes); None when absent, unreadable or zero."""
    if text is None or not text.strip().isdigit() or len(text.strip()) > 8:
        return None
    minutes = int(text.strip())
    return timedelta(minutes=minutes) if minutes else None


def update_period_from(period: str | None, frequency: str | None = None) -> timedelta | None:
    """RSS 1.0 syndication's ``sy:updatePeriod`` (hourly … yearly; daily when only
    the frequency is given) divided by ``sy:updateFrequency`` (1 when absent or
    unreadable); None when neither is given or the period is unknown."""
    if period is None and frequency is None:
        return None
    span = _PERIODS.get((period or "daily").strip().lower())
    if span is None:
        return None
    text = (frequency or "1").strip()
    times = int(text) if text.isdigit() and len(text) <= 6 else 1
    return span / max(times, 1)


def _hours(span: timedelta) -> float:
    return span / HOUR


def _aware(time: datetime) -> datetime:
    return time if time.tzinfo is not None else time.replace(tzinfo=UTC)
