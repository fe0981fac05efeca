"""Adaptive polling in the running service (README, "Adaptive polling"): sources with
a learned history are polled by their rhythm, server hints are honoured, a source
with ``adaptive: false`` keeps its fixed interval; ``newswatch status``, the status
page and /metrics show each source's interval and why; a restart resumes the
schedule; health judges a source by the interval it is polled at."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from conftest import run_newswatch, site_config, write_config
from newssite import Reply
from test_web import RunningService, _wait_for, running_service

from crawler.domain.config import Config, load_config
from crawler.domain.items import ExtractedArticle
from crawler.domain.scheduling import ServerHints, backoff_reason, next_poll
from crawler.orchestration.health import update_health
from crawler.orchestration.polling import hints_of
from crawler.storage.records import ArticleRecord
from crawler.storage.store import Store
from spiders.feedparse import parse_feed

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

HISTORY = timedelta(weeks=3)


def _feed(ttl: str = "") -> bytes:
    """An RSS feed with no items, and ``ttl`` (extra channel elements) if given."""
    return (
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>'
        f"<title>t</title><link>{{base}}</link>{ttl}</channel></rss>"
    ).encode()


def _seed(config: Path, every: dict[str, timedelta]) -> None:
    """Give each source in ``every`` a history: one article per that span, for
    ``HISTORY`` up to now (so its rhythm is learned and flat over the week)."""
    store = Store.from_url(load_config(config).database)
    try:
        store.upgrade()
        store.sync_sources(load_config(config).sources)
        now = datetime.now(UTC)
        batch = []
        for name, gap in every.items():
            at, n = now - HISTORY, 0
            while at < now - timedelta(minutes=5):
                url = f"https://history.example/{name}/{n}"
                text = f"Report {n} of {name}, filed at {at:%Y-%m-%d %H:%M}. " * 5
                article = ExtractedArticle(url=url, title=f"{name} {n}", text=text, published=at)
                batch.append((ArticleRecord(name, article), []))
                at, n = at + gap, n + 1
        store.insert_articles(batch)
    finally:
        store.close()


def _status(config: Path) -> dict[str, dict[str, Any]]:
    result = run_newswatch(config, "status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)["sources"]}


def _next_poll_shown(service: RunningService, name: str) -> str:
    """The status page's "Next poll" of ``name``, relative: "in 37 min", "in 1 h"."""
    page = service.get("/").body
    row = next(row for row in page.split("<tr>") if f">{name}</a>" in row)
    cells = re.findall(r'<td class="small">(.*?)</td>', row, flags=re.DOTALL)
    found = re.search(r"\((in [^)]*)\)", cells[2])
    assert found is not None, cells
    return found.group(1)


def _expected_now(reason: str) -> float:
    """The articles an hour an adaptive reason says the rhythm expects now."""
    found = re.fullmatch(r"adaptive: ~([\d.]+) new/h expected now → every \d+m", reason)
    assert found is not None, reason
    return float(found.group(1))


def _minutes(shown: str) -> int:
    amount, unit = shown.removeprefix("in ").split()
    return int(amount) * {"min": 1, "h": 60, "d": 1440}[unit]


@pytest.mark.slow
def test_the_service_polls_each_source_by_its_rhythm_and_its_servers_hints(
    news_site: NewsSite, tmp_path: Path
) -> None:
    news_site.set_content("slow/rss.xml", _feed("<ttl>120</ttl>"))
    news_site.set_content("cached/rss.xml", _feed())
    news_site.script("cached/rss.xml", [Reply(headers={"Cache-Control": "public, max-age=5400"})])
    news_site.set_content("fixed/rss.xml", _feed())
    news_site.script("limited/rss.xml", [Reply(503, b"busy", {"Retry-After": "7200"})])
    every = "15m"
    sources = [
        {"name": "busy", "feed": news_site.url("world/rss.xml"), "every": every},
        {"name": "quiet", "feed": news_site.url("tech/atom.xml"), "every": every},
        {"name": "slow", "feed": news_site.url("slow/rss.xml"), "every": every},
        {"name": "cached", "feed": news_site.url("cached/rss.xml"), "every": every},
        {"name": "limited", "feed": news_site.url("limited/rss.xml"), "every": every},
        {
            "name": "fixed",
            "feed": news_site.url("fixed/rss.xml"),
            "every": every,
            "adaptive": False,
        },
    ]
    config = write_config(
        tmp_path, **site_config(news_site, tmp_path, sources=sources, max_backoff="6h")
    )
    # busy: 9 articles an hour, every hour; the others one an hour (slow and cached
    # too: only an adaptive plan takes a ttl or max-age; a fixed one, Retry-After).
    hourly = timedelta(hours=1)
    _seed(
        config,
        {"busy": timedelta(seconds=400)}
        | {name: hourly for name in ("quiet", "slow", "cached", "fixed")},
    )

    with running_service(config) as service:
        _wait_for(
            lambda: all(row["poll_reason"] for row in _status(config).values()),
            90,
            "every source's first poll and its next one planned",
        )
        status = _status(config)
        interval = {name: row["poll_interval_seconds"] for name, row in status.items()}
        reason = {name: row["poll_reason"] for name, row in status.items()}

        # The learned sources share the budget of as many 15-minute sources: the busy
        # one (9× the articles) is polled about 3× as often as the quiet one (√9),
        # more often than every 15 min; the quiet one less often.
        assert 5 * 60 <= interval["busy"] < 15 * 60, reason["busy"]
        assert 15 * 60 < interval["quiet"] <= 60 * 60, reason["quiet"]
        assert 2.6 < interval["quiet"] / interval["busy"] < 3.4
        assert 8 <= _expected_now(reason["busy"]) <= 10, reason["busy"]
        assert 0.8 <= _expected_now(reason["quiet"]) <= 1.2, reason["quiet"]
        # Server hints asking for fewer polls are honoured.
        assert interval["slow"] == 2 * 3600
        assert reason["slow"] == "feed ttl 2h"
        assert interval["cached"] == 5400
        assert reason["cached"] == "Cache-Control max-age 1h30m"
        assert interval["limited"] == 2 * 3600
        assert reason["limited"] == "backoff: Retry-After 2h → every 2h"
        # adaptive: false keeps its every, whatever its rhythm.
        assert interval["fixed"] == 15 * 60
        assert reason["fixed"] == "every 15m (adaptive: false)"
        for name in ("busy", "quiet", "slow", "cached", "limited"):
            row = status[name]
            planned = datetime.fromisoformat(row["next_poll_at"])
            polled = datetime.fromisoformat(row["last_polled_at"])
            assert abs((planned - polled).total_seconds() - interval[name]) < 30, name
            # The scheduler's job runs then: the status page's "Next poll".
            shown = _minutes(_next_poll_shown(service, name))
            assert interval[name] / 60 - 61 <= shown <= interval[name] / 60, (name, shown)
            assert reason[name] in service.get("/").text
            assert service.metric(
                "newswatch_source_poll_interval_seconds", source=name
            ) == pytest.approx(interval[name])
        table = run_newswatch(config, "status").stdout
        assert "Poll schedule" in table
        assert "feed ttl 2h" in table
        # Not stalled, not "is the scheduler running?": each source's health is ok.
        assert {row["state"] for name, row in status.items() if name != "limited"} == {"ok"}

    # A restart resumes the schedule: no source is polled at start, the fixed one
    # neither (a restart is no reason to poll); their jobs run when planned.
    polls = {name: row["last_polled_at"] for name, row in status.items()}
    tech_requests = len(news_site.requests_for("tech/atom.xml"))
    fixed_requests = len(news_site.requests_for("fixed/rss.xml"))
    with running_service(config) as service:
        for name in ("busy", "quiet", "slow", "cached", "limited", "fixed"):
            shown = _minutes(_next_poll_shown(service, name))
            left = (datetime.fromisoformat(status[name]["next_poll_at"]) - datetime.now(UTC)) / (
                timedelta(minutes=1)
            )
            assert left - 61 <= shown <= left + 1, (name, shown, left)
        after = _status(config)
    assert {name: after[name]["last_polled_at"] for name in polls} == polls
    assert len(news_site.requests_for("tech/atom.xml")) == tech_requests
    assert len(news_site.requests_for("fixed/rss.xml")) == fixed_requests


# -- the parts, without a service ----------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "ttl", "update_period"),
    [
        pytest.param("<ttl>90</ttl>", timedelta(minutes=90), None, id="ttl"),
        pytest.param(
            "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>",
            None,
            timedelta(minutes=30),
            id="sy-hourly-twice",
        ),
        pytest.param("<sy:updatePeriod>daily</sy:updatePeriod>", None, timedelta(days=1), id="sy"),
        pytest.param("<ttl>soon</ttl>", None, None, id="unreadable-ttl"),
        pytest.param("", None, None, id="none"),
    ],
)
def test_a_feed_says_how_often_it_changes(
    channel: str, ttl: timedelta | None, update_period: timedelta | None
) -> None:
    feed = parse_feed(
        _feed(channel).replace(b"{base}", b"https://x.example/"), "https://x.example/"
    )
    assert (feed.ttl, feed.update_period) == (ttl, update_period)


def test_a_source_polled_every_few_hours_is_not_taken_for_stalled(tmp_path: Path) -> None:
    """Polled 5 hours ago at a 6-hour adaptive interval: ok. The same silence at
    its 15-minute every, with no interval set: its polls stopped."""
    from crawler.domain.health import PollRecord

    config = Config.model_validate(
        {"sources": [{"name": "blog", "feed": "https://blog.example/rss", "every": "15m"}]}
    )
    source = config.source("blog")
    store = Store.from_url(f"sqlite:///{tmp_path / 'health.db'}")
    try:
        store.upgrade()
        store.sync_sources(config.sources)
        now = datetime.now(UTC)
        store.log_poll("blog", PollRecord(at=now - timedelta(hours=5), new_urls=0))
        stalled = update_health(store, source, now)
        assert stalled is not None
        assert stalled.now.state.value == "quiet"
        assert "is the scheduler running?" in stalled.now.reason
        store.record_next_poll("blog", now + timedelta(hours=1), timedelta(hours=6), "adaptive")
        polled_slowly = update_health(store, source, now)
        assert polled_slowly is not None
        assert polled_slowly.now.state.value == "ok", polled_slowly.now.reason
    finally:
        store.close()


def test_hints_are_read_back_from_the_remembered_state() -> None:
    from crawler.domain.items import FetchState

    state = FetchState(etag='"x"', retry_after=60.0, max_age=600.0, ttl=3600.0)
    assert hints_of(state) == ServerHints(
        retry_after=timedelta(minutes=1),
        max_age=timedelta(minutes=10),
        ttl=timedelta(hours=1),
    )
    assert hints_of(None) is None


def test_a_burst_in_the_stored_articles_shortens_the_next_poll(tmp_path: Path) -> None:
    """The planner reads the last hour's publish times of the source from the
    store: 12 new in the last hour, against a rhythm of one an hour."""
    from crawler.domain.items import PollOutcome
    from crawler.orchestration.polling import AdaptivePolling
    from crawler.orchestration.workers import DatabaseThread

    config = Config.model_validate(
        {
            "sources": [
                {"name": "desk", "feed": "https://desk.example/rss", "every": "15m"},
                {"name": "other", "feed": "https://other.example/rss", "every": "15m"},
            ]
        }
    )
    folder = tmp_path
    database = f"sqlite:///{folder / 'burst.db'}"
    store = Store.from_url(database)
    database_thread = DatabaseThread()
    try:
        store.upgrade()
        store.sync_sources(config.sources)
        now = datetime.now(UTC)
        # One an hour (a flat rhythm) until an hour ago; then 12 in the last hour.
        hours = int(HISTORY / timedelta(hours=1))
        times = [now - HISTORY + timedelta(hours=n) for n in range(hours)]
        burst = [now - timedelta(minutes=m) for m in range(2, 60, 5)]
        batch = []
        for name in ("desk", "other"):
            for n, at in enumerate(times + (burst if name == "desk" else [])):
                url = f"https://{name}.example/{n}"
                article = ExtractedArticle(
                    url=url, title=f"{n}", text=f"{name} {n} " * 40, published=at
                )
                batch.append((ArticleRecord(name, article), []))
        store.insert_articles(batch)
        polling = AdaptivePolling(store, config, database_thread)
        polling.refresh(now)
        calm = polling.next_poll_after(config.source("other"), PollOutcome("other"), now)
        busy = polling.next_poll_after(config.source("desk"), PollOutcome("desk"), now)
        assert busy.upcoming.reason.startswith("burst: 12 new in the last hour")
        assert busy.upcoming.interval < calm.upcoming.interval / 2
        assert not busy.fixed
        assert store.source_state("desk").poll_reason == busy.upcoming.reason  # type: ignore[union-attr]
        # The same plan without the burst: the policy's own answer, not a copy of it.
        plan = polling.plan(config.source("desk"), now)
        assert next_poll(plan, now).interval > busy.upcoming.interval
    finally:
        database_thread.shutdown()
        store.close()


def test_a_reload_makes_the_plans_again_only_when_the_polling_settings_change(
    tmp_path: Path,
) -> None:
    from crawler.orchestration.polling import AdaptivePolling
    from crawler.orchestration.workers import DatabaseThread

    def config(**polling: Any) -> Config:
        return Config.model_validate(
            {
                "polling": polling,
                "sources": [
                    {"name": "a", "feed": "https://a.example/rss", "every": "15m"},
                    {"name": "b", "feed": "https://b.example/rss", "every": "15m"},
                ],
            }
        )

    store = Store.from_url(f"sqlite:///{tmp_path / 'reload.db'}")
    database_thread = DatabaseThread()
    try:
        store.upgrade()
        store.sync_sources(config().sources)
        now = datetime.now(UTC)
        gaps = {"a": timedelta(minutes=10), "b": timedelta(hours=2)}
        batch = []
        for name, gap in gaps.items():
            for n in range(int(HISTORY / gap)):
                at = now - HISTORY + gap * n
                article = ExtractedArticle(
                    url=f"https://{name}.example/{n}",
                    title=str(n),
                    text=f"{name} {n} " * 40,
                    published=at,
                )
                batch.append((ArticleRecord(name, article), []))
        store.insert_articles(batch)
        polling = AdaptivePolling(store, config(), database_thread)
        polling.refresh(now)
        before = polling.plan(config().source("a"), now)
        assert before.adaptive
        assert not polling.replan(config(), now)  # the same settings: the same plans
        assert polling.plan(config().source("a"), now) is before
        # Half the requests a day: a smaller k, longer intervals for both.
        assert polling.replan(config(requests_per_day=96), now)
        after = polling.plan(config().source("a"), now)
        assert after.scale < before.scale
        assert next_poll(after, now).interval > next_poll(before, now).interval
        # polling.adaptive: false polls every source at its every.
        assert polling.replan(config(adaptive=False), now)
        assert next_poll(polling.plan(config().source("a"), now), now).interval == timedelta(
            minutes=15
        )
    finally:
        database_thread.shutdown()
        store.close()


class _PlannedPolls:
    """The one query ``AdaptivePolling.load_planned`` makes, answered from a dict."""

    def __init__(self, planned: dict[str, tuple[datetime, timedelta, str]]) -> None:
        self.planned = planned

    def planned_polls(self) -> dict[str, tuple[datetime, timedelta, str]]:
        return dict(self.planned)


ADAPTIVE = "adaptive: ~0.2 new/h expected now → every 5h"
FAILED = backoff_reason("4 failed polls in a row", timedelta(hours=4))


@pytest.mark.parametrize(
    ("adaptive", "kept_in", "reason", "expected_in"),
    [
        pytest.param(True, timedelta(minutes=40), ADAPTIVE, timedelta(minutes=40), id="adaptive"),
        pytest.param(False, timedelta(minutes=7), "every 15m", timedelta(minutes=7), id="fixed"),
        pytest.param(
            False, timedelta(hours=5), "every 15m", timedelta(minutes=15), id="fixed-shortened"
        ),
        pytest.param(True, -timedelta(minutes=3), ADAPTIVE, timedelta(0), id="overdue"),
        pytest.param(False, None, "", timedelta(0), id="new"),
        # A restart often follows a fix: a failure's backoff is not waited out...
        pytest.param(True, timedelta(hours=3), FAILED, timedelta(minutes=15), id="backoff"),
        # ... but what a server asked for is (politeness), fixed interval or not.
        pytest.param(
            True,
            timedelta(hours=3),
            backoff_reason("Retry-After 4h", timedelta(hours=4)),
            timedelta(hours=3),
            id="backoff-retry-after",
        ),
        pytest.param(
            False, timedelta(hours=1), "Retry-After 2h", timedelta(hours=1), id="fixed-retry-after"
        ),
    ],
)
def test_a_restart_resumes_each_sources_schedule(
    adaptive: bool, kept_in: timedelta | None, reason: str, expected_in: timedelta
) -> None:
    from crawler.orchestration.polling import AdaptivePolling

    config = Config.model_validate(
        {
            "polling": {"adaptive": adaptive},
            "sources": [{"name": "desk", "feed": "https://desk.example/rss", "every": "15m"}],
        }
    )
    now = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    kept = {} if kept_in is None else {"desk": (now + kept_in, timedelta(hours=4), reason)}
    polling = AdaptivePolling(_PlannedPolls(kept), config, None)  # type: ignore[arg-type]
    polling.load_planned()
    assert polling.first_poll(config.source("desk"), now) == now + expected_in


def test_the_polls_due_at_start_are_paced() -> None:
    from crawler.orchestration.polling import START_POLLS_PER_SECOND, AdaptivePolling

    count = 3 * int(START_POLLS_PER_SECOND)
    config = Config.model_validate(
        {
            "polling": {"adaptive": False},
            "sources": [
                {"name": f"desk-{n}", "feed": f"https://desk{n}.example/rss", "every": "15m"}
                for n in range(count)
            ],
        }
    )
    now = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    polling = AdaptivePolling(_PlannedPolls({}), config, None)  # type: ignore[arg-type]
    polling.load_planned()
    starts = [polling.first_poll(source, now) for source in config.sources]
    # The first second's share at once, then as many each second after: 3 seconds.
    assert starts[0] == now
    assert sum(start < now + timedelta(seconds=1) for start in starts) == START_POLLS_PER_SECOND
    assert max(starts) - now == timedelta(seconds=(count - 1) / START_POLLS_PER_SECOND)
    # A source added later, once the start's polls are under way, is polled at once.
    later = now + timedelta(minutes=1)
    assert polling.first_poll(config.sources[0], later) == later
