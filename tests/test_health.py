"""Source health from the source's own history (crawler/domain/health.py): each
state, its reason and evidence, on histories made for the purpose with a clock the
test controls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crawler.domain.health import (
    QUIET_MIN,
    Health,
    PageQuality,
    PollRecord,
    Rhythm,
    State,
    assess,
)

# A Monday.
MONDAY = datetime(2024, 3, 4, tzinfo=UTC)
EVERY = timedelta(minutes=30)


def weekday_times(weeks: int, end: datetime) -> list[datetime]:
    """Three articles an hour from 08:00 to 18:00 UTC on weekdays, none at weekends,
    over the ``weeks`` before ``end``."""
    times = []
    day = end - timedelta(weeks=weeks)
    while day < end:
        if day.weekday() < 5:
            for hour in range(8, 18):
                for minute in (5, 25, 45):
                    time = day.replace(hour=hour, minute=minute)
                    if time < end:
                        times.append(time)
        day += timedelta(days=1)
    return times


def _assess(
    now: datetime,
    *,
    polls: list[PollRecord] | None = None,
    pages: list[PageQuality] | None = None,
    published: list[datetime] | None = None,
    last_new: datetime | None = None,
    previous: Health | None = None,
) -> Health:
    published = published or []
    return assess(
        polls or [PollRecord(at=now)],
        pages or [],
        Rhythm.from_times(published, now),
        # Without any history given, the source just brought news (quiet is not tested).
        last_new=last_new or (max(published) if published else now),
        watched_since=now - timedelta(weeks=10),
        every=EVERY,
        now=now,
        previous=previous,
    )


def _first_quiet(history: list[datetime], silent_from: datetime, until: datetime) -> datetime:
    """The first hour after ``silent_from`` at which the source is quiet (``until``
    if never): the history stops at ``silent_from``."""
    published = [time for time in history if time < silent_from]
    now = silent_from
    while now < until:
        now += timedelta(minutes=30)
        if _assess(now, published=published).state is State.QUIET:
            return now
    return until


def test_a_weekday_source_silent_on_a_tuesday_is_quiet_within_hours_not_at_weekends() -> None:
    tuesday = MONDAY + timedelta(weeks=4, days=1, hours=9)
    history = weekday_times(4, tuesday + timedelta(days=7))
    found = _first_quiet(history, tuesday, tuesday + timedelta(days=1))
    # 30 articles an hour... three an hour: 4.6 expected in about 1.5 hours.
    assert timedelta(hours=1) <= found - tuesday <= timedelta(hours=2), found - tuesday
    health = _assess(found, published=[t for t in history if t < tuesday])
    assert "its rhythm expects" in health.reason
    assert health.evidence["expected_articles"] >= 4.6
    assert health.since == found

    # The same source after its Friday's last article: the weekend is its rhythm.
    friday = MONDAY + timedelta(weeks=4, days=4, hours=18)
    weekend = [t for t in history if t < friday]
    for hours in range(1, 62, 3):  # to Monday 08:00
        assert _assess(friday + timedelta(hours=hours), published=weekend).state is State.OK
    monday = _first_quiet(history, friday, friday + timedelta(days=4))
    assert monday.weekday() == 0
    assert timedelta(hours=8) < monday - monday.replace(hour=0) <= timedelta(hours=10)


def test_without_history_the_poll_interval_sets_the_bar() -> None:
    now = MONDAY + timedelta(weeks=4)
    few = [now - timedelta(days=2)]
    assert _assess(now, published=few).state is State.OK
    later = now + QUIET_MIN
    health = _assess(later, published=few)
    assert health.state is State.QUIET
    assert "too little history" in health.reason
    assert health.evidence["bar_hours"] == 72.0


def test_refusals_block_errors_fail_and_a_301_or_410_moves() -> None:
    now = MONDAY + timedelta(weeks=4)

    def polls(*records: dict[str, object]) -> list[PollRecord]:
        return [
            PollRecord(at=now - timedelta(minutes=30 * n), **fields)  # type: ignore[arg-type]
            for n, fields in enumerate(records)
        ]

    forbidden = {"error": "HTTP 403", "error_class": "http", "status": 403}
    assert _assess(now, polls=polls(forbidden, {})).state is State.OK  # once is chance
    blocked = _assess(now, polls=polls(forbidden, forbidden, {}))
    assert blocked.state is State.BLOCKED
    assert "HTTP 403" in blocked.reason
    assert blocked.evidence["statuses"] == [403]
    challenge = {"error": "blocked by a bot challenge (Cloudflare)", "error_class": "challenge"}
    assert "bot challenge" in _assess(now, polls=polls(challenge, challenge)).reason
    pages = polls({"new_urls": 4, "challenges": 4, "sample_url": "https://x.example/a"})
    walled = _assess(now, polls=pages)
    assert walled.state is State.BLOCKED
    assert walled.evidence["url"] == "https://x.example/a"

    refused = {"error": "Connection refused", "error_class": "connect"}
    assert _assess(now, polls=polls(refused, refused)).state is State.OK
    failing = _assess(now, polls=polls(refused, refused, refused, {}))
    assert failing.state is State.FAILING
    assert failing.reason == "3 failed polls in a row (cannot connect)"
    assert failing.evidence["class"] == "connect"

    moved = _assess(
        now, polls=polls({"status": 301, "moved_to": "https://new.example/feed"}, forbidden)
    )
    assert moved.state is State.MOVED
    assert "https://new.example/feed" in moved.reason
    gone = _assess(now, polls=polls({"error": "HTTP 410", "status": 410, "error_class": "http"}))
    assert gone.state is State.MOVED
    assert gone.reason.startswith("gone")


def test_a_template_change_that_empties_bodies_degrades_the_source() -> None:
    now = MONDAY + timedelta(weeks=4)
    good = [PageQuality(f"https://x.example/{n}", 3_000, True, True) for n in range(40)]
    thin = [PageQuality(f"https://x.example/new{n}", 41, True, n % 2 == 0) for n in range(6)]
    recent = [time for time in weekday_times(4, now)]
    assert _assess(now, pages=good, published=recent, last_new=now).state is State.OK
    # A new source's first pages are no baseline: thin from the start is its way.
    assert _assess(now, pages=[*thin, *good[:4]], published=recent, last_new=now).state is (
        State.OK
    )
    health = _assess(now, pages=[*thin, *good], published=recent, last_new=now)
    assert health.state is State.DEGRADED
    assert health.evidence["no_body"] == 6
    assert health.evidence["url"] == "https://x.example/new0"
    # A source whose pages were always short (a wire of briefs) is its own baseline.
    briefs = [PageQuality(f"https://x.example/b{n}", 120, True, True) for n in range(60)]
    assert _assess(now, pages=briefs, published=recent, last_new=now).state is State.OK


def test_since_is_kept_while_the_state_stands() -> None:
    now = MONDAY + timedelta(weeks=4)
    refused = PollRecord(at=now, error="Connection refused", error_class="connect")
    first = _assess(now, polls=[refused] * 3)
    later = _assess(now + timedelta(hours=5), polls=[refused] * 4, previous=first)
    assert later.since == first.since == now
    recovered = _assess(now + timedelta(hours=6), previous=later, last_new=now)
    assert recovered.state is State.OK
    assert recovered.since == now + timedelta(hours=6)


def test_a_sources_own_quiet_after_replaces_its_rhythm() -> None:
    tuesday = MONDAY + timedelta(weeks=4, days=1, hours=9)
    history = weekday_times(4, tuesday)
    rhythm = Rhythm.from_times(history, tuesday + timedelta(hours=3))

    def state(hours: float, quiet_after: timedelta | None) -> Health:
        now = tuesday + timedelta(hours=hours)
        return assess(
            [PollRecord(at=now)],
            [],
            rhythm,
            last_new=tuesday,  # its last article, the silence starts
            watched_since=MONDAY,
            every=EVERY,
            now=now,
            quiet_after=quiet_after,
        )

    assert state(3, None).state is State.QUIET  # the rhythm: quiet within two hours
    assert state(3, timedelta(hours=12)).state is State.OK  # the source's own bar
    late = state(13, timedelta(hours=12))
    assert late.state is State.QUIET
    assert "its quiet_after is 12 h" in late.reason


def test_time_nobody_polled_is_no_silence_and_stopped_polls_are_said() -> None:
    """The service was down for two hours: the busy wire's silence is what its polls
    saw, not the downtime; a source whose polls stopped is quiet "not polled since"."""
    tuesday = MONDAY + timedelta(weeks=4, days=1, hours=9)
    history = weekday_times(4, tuesday)
    back = tuesday + timedelta(hours=2)  # restarted; the last poll was at 09:00
    last_poll = PollRecord(at=tuesday)
    health = assess(
        [last_poll],
        [],
        Rhythm.from_times(history, back),
        last_new=tuesday,
        watched_since=MONDAY,
        every=EVERY,
        now=back,
    )
    assert health.state is State.OK, health.reason  # busy, but nobody looked
    stopped = assess(
        [last_poll],
        [],
        Rhythm.from_times(history, back),
        last_new=tuesday,
        watched_since=MONDAY,
        every=EVERY,
        now=tuesday + timedelta(hours=3),
    )
    assert stopped.state is State.QUIET
    assert stopped.reason.startswith("not polled since 2024-04-02 09:00 UTC (3 h)")
