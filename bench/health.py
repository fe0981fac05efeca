"""How soon each bad health state is detected (README, "Source health"), measured on
simulated time with the service's own functions: ``crawler.domain.health.assess``
for the state and ``crawler.orchestration.poll.backoff_delay`` for when a failing
source is polled again.

A source is polled every ``--every`` (15 minutes by default; ``max_backoff`` 6 h).
At ``t = 0`` something goes wrong, and the first poll after it comes at once (the
worst case adds up to one interval before it). Each case polls on, as the service
would, until the state is set, and reports the delay since the first poll that saw
the trouble, in hours and in poll intervals:

- *moved*: the feed answers 301 to a new URL; *gone*: 410;
- *blocked*: 403 at every poll (the backoff spaces the polls);
- *failing*: the connection is refused at every poll;
- *degraded*: the pages change template, three new pages per poll;
- *quiet*: the source stops publishing at 09:00 on a Tuesday: a busy wire (3
  articles an hour, weekdays 08:00-18:00), a daily (10 a day, every day), and the
  same wire's Friday 18:00 (its weekend, which must not alert before Monday);
  and a new source without history.

Promise: moved at the first poll; blocked within 3 intervals and failing within 7;
degraded within 2 polls; a busy wire quiet within 2 hours, a daily within a day; no
alert in a weekday-only source's weekend.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from crawler.domain.health import Health, PageQuality, PollRecord, Rhythm, State, assess
from crawler.orchestration.poll import backoff_delay

MONDAY = datetime(2024, 3, 4, tzinfo=UTC)
START = MONDAY + timedelta(weeks=8, days=1, hours=9)  # a Tuesday, 09:00 UTC
MAX_BACKOFF = timedelta(hours=6)


def wire_times(end: datetime, per_hour: int = 3) -> list[datetime]:
    """``per_hour`` articles an hour, weekdays 08:00-18:00, for 8 weeks before ``end``."""
    times = []
    day = (end - timedelta(weeks=8)).replace(hour=0, minute=0)
    while day < end:
        if day.weekday() < 5:
            for hour in range(8, 18):
                for n in range(per_hour):
                    time = day.replace(hour=hour, minute=n * 60 // per_hour)
                    if time < end:
                        times.append(time)
        day += timedelta(days=1)
    return times


def daily_times(end: datetime, per_day: int = 10) -> list[datetime]:
    """``per_day`` articles spread over each day, every day, for 8 weeks."""
    start = end - timedelta(weeks=8)
    step = timedelta(days=1) / per_day
    times, time = [], start
    while time < end:
        times.append(time)
        time += step
    return times


def polls_until(
    state: State,
    every: timedelta,
    make_poll: Callable[[datetime], PollRecord],
    *,
    pages: Callable[[int], list[PageQuality]] | None = None,
    history: list[datetime] | None = None,
    start: datetime = START,
    limit: timedelta = timedelta(days=5),
) -> tuple[timedelta | None, int]:
    """Poll from ``start`` as the service would until ``assess`` says ``state``:
    the delay since the first poll and the polls it took (None: not within ``limit``)."""
    now, polls, failures = start, [], 0
    published = [t for t in (history or []) if t < start]
    last_new = max(published) if published else start - timedelta(hours=1)
    previous: Health | None = None
    count = 0
    while now - start <= limit:
        poll = make_poll(now)
        count += 1
        polls.insert(0, poll)
        failures = failures + 1 if poll.failed else 0
        health = assess(
            polls[:20],
            pages(count) if pages else [],
            Rhythm.from_times(published, now),
            last_new=last_new,
            watched_since=start - timedelta(weeks=8),
            every=every,
            now=now,
            previous=previous,
        )
        if health.state is state:
            return now - start, count
        previous = health
        now += backoff_delay(every, failures, MAX_BACKOFF) if poll.failed else every
    return None, count


def quiet_delay(history: list[datetime], start: datetime, limit: timedelta) -> timedelta | None:
    """From ``start`` (the last article) in 15-minute steps until the source is quiet."""
    published = [t for t in history if t <= start]
    now = start
    while now - start <= limit:
        now += timedelta(minutes=15)
        health = assess(
            [PollRecord(at=now)],
            [],
            Rhythm.from_times(published, now),
            last_new=start,
            watched_since=start - timedelta(weeks=8),
            every=timedelta(minutes=15),
            now=now,
        )
        if health.state is State.QUIET:
            return now - start
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=float, default=15, help="poll interval, minutes")
    every = timedelta(minutes=parser.parse_args().every)

    def hours(delay: timedelta | None) -> str:
        return "never" if delay is None else f"{delay / timedelta(hours=1):.2f} h"

    rows: dict[str, tuple[timedelta | None, str]] = {}
    moved, _ = polls_until(
        State.MOVED, every, lambda at: PollRecord(at=at, moved_to="https://new.example/feed")
    )
    rows["moved (301)"] = (moved, "first poll")
    gone, _ = polls_until(
        State.MOVED,
        every,
        lambda at: PollRecord(at=at, error="HTTP 410", error_class="http", status=410),
    )
    rows["moved (410, gone)"] = (gone, "first poll")
    blocked, blocked_polls = polls_until(
        State.BLOCKED,
        every,
        lambda at: PollRecord(at=at, error="HTTP 403", error_class="http", status=403),
    )
    rows["blocked (403)"] = (blocked, f"poll {blocked_polls}")
    failing, failing_polls = polls_until(
        State.FAILING,
        every,
        lambda at: PollRecord(at=at, error="Connection refused", error_class="connect"),
    )
    rows["failing (refused)"] = (failing, f"poll {failing_polls}")
    good = [PageQuality(f"https://x.example/{n}", 3_000, True, True) for n in range(60)]

    def template_changed(count: int) -> list[PageQuality]:
        thin = [PageQuality(f"https://x.example/new{n}", 0, True, True) for n in range(3 * count)]
        return [*thin, *good][:60]

    degraded, degraded_polls = polls_until(
        State.DEGRADED,
        every,
        lambda at: PollRecord(at=at, new_urls=3, stored=3),
        pages=template_changed,
    )
    rows["degraded (3 pages a poll)"] = (degraded, f"poll {degraded_polls}")
    wire = wire_times(START + timedelta(days=7))
    rows["quiet: wire, Tuesday 09:00"] = (quiet_delay(wire, START, timedelta(days=3)), "")
    daily = daily_times(START + timedelta(days=7))
    rows["quiet: 10 a day, Tuesday"] = (quiet_delay(daily, START, timedelta(days=3)), "")
    friday = START + timedelta(days=3, hours=9)  # Friday 18:00
    weekend = quiet_delay(wire, friday, timedelta(days=4))
    rows["quiet: wire, Friday 18:00"] = (weekend, "")
    fresh = quiet_delay([START - timedelta(days=1)], START, timedelta(days=5))
    rows["quiet: no history"] = (fresh, "")

    print(f"every = {every}; delay from the first poll that saw the trouble")
    print(f"{'case':<28} {'delay':>10} {'intervals':>10}  note")
    for name, (delay, note) in rows.items():
        intervals = "" if delay is None else f"{delay / every:.1f}"
        print(f"{name:<28} {hours(delay):>10} {intervals:>10}  {note}")

    def within(delay: timedelta | None, bound: timedelta) -> bool:
        return delay is not None and delay <= bound

    monday_morning = friday + timedelta(days=2, hours=14)  # Monday 08:00
    checks = [
        ("moved and gone at the first poll", moved == timedelta(0) == gone),
        (f"blocked within 3 intervals ({hours(blocked)})", within(blocked, 3 * every)),
        (f"failing within 7 intervals ({hours(failing)})", within(failing, 7 * every)),
        (f"degraded within 2 polls (poll {degraded_polls})", degraded_polls <= 2),
        (
            f"busy wire quiet within 2 hours ({hours(rows['quiet: wire, Tuesday 09:00'][0])})",
            within(rows["quiet: wire, Tuesday 09:00"][0], timedelta(hours=2)),
        ),
        (
            f"10-a-day source quiet within a day ({hours(rows['quiet: 10 a day, Tuesday'][0])})",
            within(rows["quiet: 10 a day, Tuesday"][0], timedelta(days=1)),
        ),
        (
            "no alert in a weekday-only source's weekend "
            f"(quiet {hours(weekend)} after Friday 18:00)",
            weekend is not None and friday + weekend > monday_morning,
        ),
    ]
    print("targets:")
    for text, ok in checks:
        print(f"- {'met' if ok else 'MISSED'}: {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
