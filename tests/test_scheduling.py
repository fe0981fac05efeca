"""The adaptive polling policy (crawler/domain/scheduling.py) on synthetic histories:
when each kind of source is polled next, and why; bounds, server hints and the
daily request count."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from crawler.domain.config import Config
from crawler.domain.health import Rhythm
from crawler.domain.scheduling import (
    NextPoll,
    PollBounds,
    PollPlan,
    ServerHints,
    max_age_from,
    next_poll,
    pool_scale,
    ttl_from,
    update_period_from,
)

MONDAY = datetime(2025, 3, 3, tzinfo=UTC)
NOW = MONDAY + timedelta(weeks=8)  # Monday 00:00 UTC, 8 weeks of history behind
EVERY = timedelta(minutes=15)
BOUNDS = PollBounds(every=EVERY)


def _times(per_hour: Callable[[datetime], int]) -> list[datetime]:
    """8 weeks of publish times before NOW, ``per_hour(hour)`` spread over each hour."""
    times, hour = [], NOW - timedelta(weeks=8)
    while hour < NOW:
        count = per_hour(hour)
        times += [hour + timedelta(hours=1) * (n + 0.5) / count for n in range(count)]
        hour += timedelta(hours=1)
    return times


def busy_wire(hour: datetime) -> int:
    """12 an hour 06:00-22:00 every day, 1 an hour at night (~200 a day)."""
    return 12 if 6 <= hour.hour < 22 else 1


def weekday_only(hour: datetime) -> int:
    """2 an hour 08:00-18:00, Monday to Friday; nothing at weekends."""
    return 2 if hour.weekday() < 5 and 8 <= hour.hour < 18 else 0


def weekly_blog(hour: datetime) -> int:
    """One post a week, Wednesdays at 09:00."""
    return 1 if hour.weekday() == 2 and hour.hour == 9 else 0


def daily(hour: datetime) -> int:
    """One an hour, all day, every day: the reference source of these tests."""
    return 1


HISTORIES = {
    "busy wire": busy_wire,
    "weekday only": weekday_only,
    "weekly blog": weekly_blog,
    "daily": daily,
}
RHYTHMS = {name: Rhythm.from_times(_times(f), NOW) for name, f in HISTORIES.items()}
NO_HISTORY = Rhythm.from_times([NOW - timedelta(days=1)], NOW)
# The budget shared as the service shares it: the sources above, each `every: 15m`.
SCALE = pool_scale([(rhythm, BOUNDS) for rhythm in RHYTHMS.values()])


def _plan(name: str, bounds: PollBounds = BOUNDS) -> PollPlan:
    return PollPlan.build(RHYTHMS[name], bounds, SCALE)


def _at(day: int, hour: int) -> datetime:
    """``day`` 0 = Monday, in the week after the history."""
    return NOW + timedelta(days=day, hours=hour)


MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("source", "when", "shortest", "longest", "reason"),
    [
        pytest.param("busy wire", _at(1, 11), 5 * MINUTE, 8 * MINUTE, "adaptive: ~", id="wire-day"),
        pytest.param("busy wire", _at(1, 2), 15 * MINUTE, 45 * MINUTE, "adaptive", id="wire-night"),
        pytest.param(
            "weekday only", _at(1, 11), 5 * MINUTE, 20 * MINUTE, "adaptive", id="weekday-tuesday"
        ),
        pytest.param(
            "weekday only", _at(5, 12), 45 * MINUTE, 6 * 60 * MINUTE, "", id="weekday-saturday"
        ),
        pytest.param(
            "weekly blog", _at(1, 11), 60 * MINUTE, 6 * 60 * MINUTE, "adaptive", id="weekly-blog"
        ),
        pytest.param("daily", _at(1, 11), 10 * MINUTE, 30 * MINUTE, "adaptive", id="daily"),
    ],
)
def test_the_interval_follows_the_rhythm(
    source: str, when: datetime, shortest: timedelta, longest: timedelta, reason: str
) -> None:
    upcoming = next_poll(_plan(source), when)
    assert shortest <= upcoming.interval <= longest, upcoming
    assert upcoming.at == when + upcoming.interval
    assert reason in upcoming.reason


def test_a_busier_source_is_polled_more_often_than_a_quieter_one() -> None:
    when = _at(1, 11)
    intervals = {name: next_poll(_plan(name), when).interval for name in RHYTHMS}
    assert (
        intervals["busy wire"]
        < intervals["weekday only"]
        < intervals["daily"]
        < intervals["weekly blog"]
    )


def test_a_sleeping_source_is_polled_as_it_wakes() -> None:
    """Friday 23:00 the weekday-only source sleeps until Monday 08:00: it is polled
    less than hourly over the weekend (√33 times less often than on a weekday: its
    weekend hours count as a tenth of its mean rate, 33 times less than its working
    hours), and at least every 15 minutes again from its first working hour."""
    plan = _plan("weekday only")
    polls, now = [], _at(4, 23)
    while now < _at(7, 12):
        now = next_poll(plan, now).at
        polls.append(now)
    weekend = [at for at in polls if at < _at(7, 8)]
    monday_morning = [at for at in polls if _at(7, 8) <= at < _at(7, 12)]
    assert len(weekend) <= 57  # under one poll an hour while asleep
    assert len(monday_morning) >= 4 * 60 / 15  # at least every 15 min once awake
    first_awake = next(at for at in polls if at >= _at(7, 8))
    assert first_awake - _at(7, 8) <= BOUNDS.every


def test_a_burst_shortens_the_interval() -> None:
    plan = _plan("daily")
    when = _at(2, 14)
    calm = next_poll(plan, when, recent=[when - timedelta(minutes=30)])
    burst = next_poll(plan, when, recent=[when - timedelta(minutes=m) for m in range(2, 60, 6)])
    assert burst.interval < calm.interval / 2
    assert burst.reason.startswith("burst: 10 new in the last hour")
    assert burst.interval >= BOUNDS.floor


def test_without_enough_history_a_source_polls_at_its_every() -> None:
    upcoming = next_poll(PollPlan.build(NO_HISTORY, BOUNDS, SCALE), _at(1, 11))
    assert upcoming.interval == EVERY
    assert "learning its rhythm: 1 article " in upcoming.reason


def test_adaptive_false_polls_at_its_every() -> None:
    bounds = PollBounds(every=timedelta(minutes=10), adaptive=False)
    upcoming = next_poll(PollPlan.build(RHYTHMS["busy wire"], bounds, SCALE), _at(1, 11))
    assert (upcoming.interval, upcoming.reason) == (
        timedelta(minutes=10),
        "every 10m (adaptive: false)",
    )


@pytest.mark.parametrize(
    ("source", "when", "bounds", "expected"),
    [
        pytest.param(
            "busy wire",
            _at(1, 11),
            PollBounds(EVERY, min_interval=timedelta(minutes=12)),
            timedelta(minutes=12),
            id="floor",
        ),
        pytest.param(
            "weekday only",
            _at(5, 12),
            PollBounds(EVERY, max_interval=timedelta(hours=1)),
            timedelta(hours=1),
            id="ceiling",
        ),
        pytest.param(
            "busy wire",
            _at(1, 11),
            PollBounds(timedelta(minutes=2), min_interval=timedelta(minutes=5)),
            timedelta(minutes=2),
            id="every-below-the-floor-wins",
        ),
    ],
)
def test_bounds_are_honoured(
    source: str, when: datetime, bounds: PollBounds, expected: timedelta
) -> None:
    upcoming = next_poll(PollPlan.build(RHYTHMS[source], bounds, SCALE), when)
    assert upcoming.interval == pytest.approx(expected, abs=timedelta(seconds=1))
    assert "interval)" in upcoming.reason


HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("hints", "interval", "reason"),
    [
        pytest.param(ServerHints(retry_after=2 * HOUR), 2 * HOUR, "Retry-After 2h", id="retry"),
        pytest.param(ServerHints(max_age=HOUR), HOUR, "Cache-Control max-age 1h", id="max-age"),
        pytest.param(ServerHints(ttl=HOUR), HOUR, "feed ttl 1h", id="ttl"),
        pytest.param(
            ServerHints(update_period=3 * HOUR), 3 * HOUR, "feed sy:updatePeriod 3h", id="sy"
        ),
        pytest.param(
            ServerHints(ttl=2 * HOUR, max_age=HOUR), 2 * HOUR, "feed ttl 2h", id="longest-wins"
        ),
        pytest.param(
            ServerHints(retry_after=timedelta(days=2)),
            6 * HOUR,
            "Retry-After 2d, capped at max_interval 6h",
            id="capped",
        ),
    ],
)
def test_server_hints_asking_for_less_are_honoured(
    hints: ServerHints, interval: timedelta, reason: str
) -> None:
    upcoming = next_poll(_plan("busy wire"), _at(1, 11), hints=hints)
    assert (upcoming.interval, upcoming.reason) == (interval, reason)


@pytest.mark.parametrize(
    ("plan", "why"),
    [
        pytest.param(
            PollPlan.build(
                RHYTHMS["busy wire"], PollBounds(timedelta(minutes=10), adaptive=False), SCALE
            ),
            "adaptive: false",
            id="adaptive-false",
        ),
        pytest.param(
            PollPlan.build(NO_HISTORY, PollBounds(timedelta(minutes=10)), SCALE),
            "learning its rhythm",
            id="learning",
        ),
    ],
)
def test_a_fixed_interval_honours_only_retry_after(plan: PollPlan, why: str) -> None:
    """WordPress says ``sy:updatePeriod hourly`` by default: a source the user set to
    ``every: 10m`` stays at 10 minutes. A server's Retry-After is still obeyed."""
    when = _at(1, 11)
    relaxed = ServerHints(max_age=HOUR, ttl=2 * HOUR, update_period=HOUR)
    upcoming = next_poll(plan, when, hints=relaxed)
    assert upcoming.interval == timedelta(minutes=10)
    assert upcoming.reason.startswith("every 10m (")
    assert why in upcoming.reason
    asked = next_poll(plan, when, hints=ServerHints(retry_after=2 * HOUR, update_period=HOUR))
    assert (asked.interval, asked.reason) == (2 * HOUR, "Retry-After 2h")


def test_server_hints_asking_for_more_are_ignored() -> None:
    when = _at(5, 12)
    plain = next_poll(_plan("weekday only"), when)
    hinted = next_poll(
        _plan("weekday only"),
        when,
        hints=ServerHints(max_age=timedelta(minutes=1), ttl=timedelta(minutes=5)),
    )
    assert hinted == plain


def _polls_in_a_week(plan: PollPlan) -> list[NextPoll]:
    polls, now = [], NOW
    while now < NOW + timedelta(weeks=1):
        polls.append(next_poll(plan, now))
        now = polls[-1].at
    return polls


@pytest.mark.parametrize("source", sorted(RHYTHMS))
def test_alone_a_source_keeps_its_daily_request_count(source: str) -> None:
    """Without a pool the source spends its own `every` budget, moved to when it
    publishes: 96 polls a day at 15 min."""
    polls = _polls_in_a_week(PollPlan.build(RHYTHMS[source], BOUNDS, None))
    assert len(polls) / 7 == pytest.approx(96, rel=0.01)
    intervals = [poll.interval for poll in polls]
    if source in {"busy wire", "weekday only"}:  # moved to its busy hours
        assert max(intervals) > 2 * EVERY > EVERY > min(intervals)
    else:  # the same rate all week (the weekly blog is too sparse for an hourly shape)
        assert max(intervals) - min(intervals) < timedelta(seconds=1)


def test_pooled_sources_keep_their_total_daily_request_count() -> None:
    """The pool spends what fixed intervals would: 4 sources × 96 a day, the
    busy wire taking more than its 96 and the weekly blog less."""
    counts = {name: len(_polls_in_a_week(_plan(name))) / 7 for name in RHYTHMS}
    assert sum(counts.values()) == pytest.approx(4 * 96, rel=0.01)
    assert counts["busy wire"] > 96 > counts["weekly blog"]


def test_a_requests_per_day_budget_is_spent() -> None:
    scale = pool_scale([(rhythm, BOUNDS) for rhythm in RHYTHMS.values()], 200)
    week = sum(
        len(_polls_in_a_week(PollPlan.build(rhythm, BOUNDS, scale))) for rhythm in RHYTHMS.values()
    )
    assert week / 7 == pytest.approx(200, rel=0.01)


def test_fixed_sources_are_taken_out_of_the_shared_budget() -> None:
    fixed = PollBounds(EVERY, adaptive=False)
    scale = pool_scale([(RHYTHMS["daily"], BOUNDS), (RHYTHMS["busy wire"], fixed)], 96 * 3)
    polls = len(_polls_in_a_week(PollPlan.build(RHYTHMS["daily"], BOUNDS, scale))) / 7
    assert polls == pytest.approx(2 * 96, rel=0.01)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=600", timedelta(minutes=10)),
        ("public, max-age=3600, must-revalidate", HOUR),
        ("s-maxage=7200, max-age=60", 2 * HOUR),
        ("no-cache, max-age=3600", None),
        ("private", None),
        (None, None),
    ],
)
def test_max_age_from(header: str | None, expected: timedelta | None) -> None:
    assert max_age_from(header) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("60", HOUR), (" 15 ", timedelta(minutes=15)), ("0", None), ("soon", None), (None, None)],
)
def test_ttl_from(text: str | None, expected: timedelta | None) -> None:
    assert ttl_from(text) == expected


@pytest.mark.parametrize(
    ("period", "frequency", "expected"),
    [
        ("hourly", None, HOUR),
        ("daily", "4", 6 * HOUR),
        ("Weekly", "1", timedelta(weeks=1)),
        (None, "2", 12 * HOUR),
        ("daily", "often", timedelta(days=1)),
        ("fortnightly", None, None),
        (None, None, None),
    ],
)
def test_update_period_from(
    period: str | None, frequency: str | None, expected: timedelta | None
) -> None:
    assert update_period_from(period, frequency) == expected


def _config(polling: dict[str, object], source: dict[str, object]) -> Config:
    return Config.model_validate(
        {"polling": polling, "sources": [{"name": "s", "feed": "https://x.example/f", **source}]}
    )


def test_bounds_from_config_take_the_source_over_polling() -> None:
    config = _config(
        {"min_interval": "2m", "max_interval": "12h", "adaptive": False},
        {"every": "30m", "max_interval": "3h", "adaptive": True},
    )
    bounds = PollBounds.from_config(config.sources[0], config.polling)
    assert bounds == PollBounds(
        every=timedelta(minutes=30),
        min_interval=timedelta(minutes=2),
        max_interval=timedelta(hours=3),
        adaptive=True,
    )


def test_defaults_are_adaptive_from_5m_to_6h() -> None:
    config = _config({}, {})
    assert PollBounds.from_config(config.sources[0], config.polling) == PollBounds(EVERY)


@pytest.mark.parametrize(
    ("polling", "source", "message"),
    [
        ({"min_interval": "2h", "max_interval": "1h"}, {}, "polling.min_interval is longer"),
        ({}, {"min_interval": "2h", "max_interval": "1h"}, "min_interval is longer"),
        ({}, {"min_interval": "7h"}, "source s: its min_interval is longer than its max"),
    ],
)
def test_inverted_bounds_are_configuration_errors(
    polling: dict[str, object], source: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _config(polling, source)
