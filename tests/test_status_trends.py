"""Pictures where people would rather look than read (issue 23, part 7): the status
page's sparklines of each source's new articles and each rule's matches per day
over the last 30 days, and the delivery history's sizes and delivery times.

The drawing is a pure function of the numbers, tested here piece by piece; the
per-day counts are two grouped queries, tested on SQLite and PostgreSQL; the pages
are read over real HTTP from a running service (and the status page in Chromium)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import smtpserver
from conftest import ARTIFACTS, site_config, write_config
from test_source_page import BLOCKED, HOSTILE_NAME, health_site
from test_web import Reply, _wait_for, running_service

from alerts.rules import RuleMatch
from crawler.domain.config import Config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.faces.web.sparklines import (
    SPARK_GAP,
    SPARK_HEIGHT,
    SPARK_WIDTH,
    render_sparkline,
    spark_bars,
    spark_summary,
)
from crawler.faces.web.trends import TREND_DAYS, daily, size_text, took_text
from crawler.orchestration.ingest import ingest_article
from crawler.storage.store import Store

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite
    from smtpserver import RecordingSmtpServer

smtp_server = pytest.fixture(smtpserver.smtp_server)

FIRST = date(2026, 11, 1)
ARTICLES = ("new article", "new articles")


# -- the drawing: numbers in, bars out ----------------------------------------------


@pytest.mark.parametrize(
    ("counts", "indices", "heights"),
    [
        pytest.param([0, 2, 4, 1], [1, 2, 3], [12, 24, 6], id="scaled-to-the-most"),
        pytest.param([], [], [], id="empty"),
        pytest.param([0] * 30, [], [], id="all-zeros"),
        pytest.param([5], [0], [24], id="one-day"),
        pytest.param([3, 3, 3], [0, 1, 2], [24, 24, 24], id="flat"),
        # A day of 1 beside a day of 1,000 is still seen: at least one unit tall.
        pytest.param([1000, 1], [0, 1], [24, 1], id="tiny-still-seen"),
        pytest.param([-2, 2], [1], [24], id="negative-as-zero"),
    ],
)
def test_spark_bars_draw_a_bar_per_day_with_anything(
    counts: list[int], indices: list[int], heights: list[float]
) -> None:
    bars = spark_bars(counts)
    assert [bar.index for bar in bars] == indices
    assert [bar.count for bar in bars] == [counts[i] for i in indices]
    assert [bar.height for bar in bars] == pytest.approx(heights, abs=0.01)
    for bar in bars:
        # Standing on the baseline, inside the drawing, in the day's own slot.
        assert bar.y + bar.height == pytest.approx(SPARK_HEIGHT)
        slot = SPARK_WIDTH / len(counts)
        assert bar.index * slot <= bar.x < bar.x + bar.width <= (bar.index + 1) * slot + 1e-9
    assert len({bar.width for bar in bars}) <= 1  # every day equally wide


@pytest.mark.parametrize(
    ("counts", "summary"),
    [
        pytest.param(
            [0, 4, 1, 4, 3], "12 new articles in 5 days, most 4 on 2026-11-02", id="first-of-ties"
        ),
        pytest.param([0] * 30, "0 new articles in 30 days", id="all-zeros"),
        pytest.param([], "0 new articles in 0 days", id="empty"),
        pytest.param([1], "1 new article in 1 day, most 1 on 2026-11-01", id="one-day"),
    ],
)
def test_spark_summary_says_the_total_and_the_busiest_day(counts: list[int], summary: str) -> None:
    assert spark_summary(counts, FIRST, ARTICLES) == summary


def test_a_sparkline_is_an_accessible_inline_svg_with_its_bars_and_text_escaped() -> None:
    counts = [0, 2, 0, 1]
    svg = str(render_sparkline(counts, FIRST, noun=('<b>"x"</b>', "<script>&'s")))
    assert svg.startswith('<svg class="spark" xmlns="http://www.w3.org/2000/svg"')
    assert 'role="img"' in svg
    assert svg.count("<title>") == 1
    assert "<title>3 &lt;script&gt;&amp;&#39;s in 4 days, most 2 on 2026-11-02</title>" in svg
    assert 'aria-label="3 &lt;script&gt;&amp;&#39;s in 4 days, most 2 on 2026-11-02"' in svg
    assert "<script" not in svg
    # A bar for day 1 (2, full height) and day 3 (1, half), each in its day's quarter.
    assert _bars(svg) == [(30, SPARK_HEIGHT, 29), (90, SPARK_HEIGHT / 2, 29)]
    # Nothing at all: the baseline only, and the summary still says so.
    empty = str(render_sparkline([0] * 30, FIRST, noun=ARTICLES))
    assert "<path" not in empty
    assert '<line class="base"' in empty
    assert "<title>0 new articles in 30 days</title>" in empty


def test_daily_fills_the_days_without_counts_with_zero() -> None:
    per_day = {FIRST + timedelta(days=1): 3, FIRST + timedelta(days=4): 1, date(2020, 1, 1): 9}
    assert daily(per_day, FIRST, days=5) == [0, 3, 0, 0, 1]
    assert daily({}, FIRST) == [0] * TREND_DAYS


@pytest.mark.parametrize(
    ("size", "text"),
    [
        pytest.param(None, "", id="not-measured"),
        pytest.param(0, "0 B", id="zero"),
        pytest.param(999, "999 B", id="bytes"),
        pytest.param(1000, "1.0 kB", id="one-kb"),
        pytest.param(14_230, "14.2 kB", id="kb"),
        pytest.param(999_949, "999.9 kB", id="just-under-a-mb"),
        pytest.param(999_950, "1.0 MB", id="rounds-to-a-mb"),
        pytest.param(1_340_000, "1.3 MB", id="mb"),
    ],
)
def test_size_text(size: int | None, text: str) -> None:
    assert size_text(size) == text


CREATED = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "text"),
    [
        pytest.param(None, "", id="not-sent"),
        pytest.param(CREATED + timedelta(seconds=4.4), "4 s", id="seconds"),
        pytest.param(CREATED + timedelta(minutes=2, seconds=5), "2 min 5 s", id="minutes"),
        pytest.param(CREATED + timedelta(hours=3, minutes=10), "3 h 10 min", id="hours"),
        # Clocks of two hosts (a scale-out sender): never a negative time.
        pytest.param(CREATED - timedelta(seconds=2), "0 s", id="clock-skew"),
    ],
)
def test_took_text(sent: datetime | None, text: str) -> None:
    assert took_text(CREATED, sent) == text


# -- the counts: one grouped query per figure ----------------------------------------


def test_per_day_counts_of_every_source_and_rule_in_one_query_each(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.from_url(database_url)
    store.upgrade()
    config = Config.model_validate(
        {
            "sources": [
                {"name": "wire", "feed": "https://wire.example/rss"},
                {"name": "post", "feed": "https://post.example/rss"},
                {"name": "idle", "feed": "https://idle.example/rss"},
            ]
        }
    )
    store.sync_sources(config.sources)
    start = datetime(2024, 3, 4, tzinfo=UTC)

    def ingest(source: str, path: str, at: datetime, text: str, rules: tuple[str, ...]) -> None:
        monkeypatch.setattr("crawler.storage.articles.utcnow", lambda: at)
        url = f"https://{source}.example/{path}"
        article = ExtractedArticle(url=url, title=f"Story {path}", text=text * 8, published=at)
        ingest_article(
            store,
            ArticleItem(source, url, article),
            [RuleMatch(rule, ("harbour",)) for rule in rules],
        )

    ingest("wire", "old", start - timedelta(seconds=1), "Before the window, the harbour. ", ())
    ingest(
        "wire", "a", start + timedelta(hours=23, minutes=59), "Monday night harbour. ", ("port",)
    )
    ingest("wire", "b", start + timedelta(days=1), "Tuesday at midnight, the harbour. ", ("port",))
    # Revised on Thursday: still first seen (and matched) on Tuesday.
    ingest("wire", "b", start + timedelta(days=3), "Tuesday, rewritten: the harbour held. ", ())
    ingest("post", "c", start + timedelta(days=1, hours=5), "Tuesday, a harbour story. ", ())
    ingest("post", "d", start + timedelta(days=1, hours=6), "Tuesday, the tram. ", ("port", "tram"))

    assert store.new_articles_per_source_day(start) == {
        "wire": {date(2024, 3, 4): 1, date(2024, 3, 5): 1},
        "post": {date(2024, 3, 5): 2},
    }
    assert store.matches_per_rule_day(start) == {
        "port": {date(2024, 3, 4): 1, date(2024, 3, 5): 2},
        "tram": {date(2024, 3, 5): 1},
    }
    later = start + timedelta(days=10)
    assert store.new_articles_per_source_day(later) == {}
    assert store.matches_per_rule_day(later) == {}
    store.close()


def test_a_sent_delivery_keeps_its_size_in_the_history(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.from_url(database_url)
    store.upgrade()
    config = Config.model_validate({"sources": [{"name": "wire", "feed": "https://w.example/"}]})
    store.sync_sources(config.sources)
    for n in range(3):
        url = f"https://w.example/{n}"
        text = f"Story {n} about the harbour and the ships in it. " * 8
        article = ExtractedArticle(url=url, title=f"Story {n}", text=text)
        ingest_article(store, ArticleItem("wire", url, article), [RuleMatch("port", ("harbour",))])
    measured = store.create_delivery(
        "a@example.com", store.pending_items("a@example.com", ["port"]), "x"
    )
    assert measured is not None
    store.mark_sent(measured.id, at=CREATED, size=14_230)
    [row] = store.delivery_history()
    assert (row["size_bytes"], row["articles"], row["sent_at"]) == (14_230, 3, CREATED)
    store.close()


# -- the pages ----------------------------------------------------------------------


def _seeded_days(now: datetime) -> dict[date, int]:
    """The herald's articles per day as test_source_page seeds them: two each
    weekday from 2 to 27 days ago."""
    days: dict[date, int] = {}
    for days_ago in range(2, 28):
        day = now - timedelta(days=days_ago)
        if day.weekday() < 5:
            days[day.date()] = 2
    return days


def _bars(svg: str) -> list[tuple[float, float, float]]:
    """The bars of a sparkline: (left edge rounded down to whole units, height,
    width rounded down), each read from its subpath ``M x bottom v -h h w v h z``."""
    [path] = re.findall(r'<path class="bars" d="([^"]*)"/>', svg) or [""]
    bars = re.findall(rf"M([\d.]+) {SPARK_HEIGHT}v-([\d.]+)h([\d.]+)v\2z", path)
    assert "".join(f"M{x} {SPARK_HEIGHT}v-{h}h{w}v{h}z" for x, h, w in bars) == path
    return [(float(x) // 1, float(h), float(w) // 1) for x, h, w in bars]


def _cell_svg(page: str, row_start: str) -> str:
    """The sparkline in the table row that starts with ``row_start``."""
    found = re.search(re.escape(row_start) + r".*?</tr>", page, re.DOTALL)
    assert found is not None, row_start
    [svg] = re.findall(r'<svg class="spark".*?</svg>', found.group(0), re.DOTALL)
    return svg


@pytest.mark.slow
def test_the_status_page_draws_each_sources_and_rules_month(
    news_site: NewsSite, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    first_day = (now - timedelta(days=TREND_DAYS - 1)).date()
    with health_site(news_site, tmp_path) as site:
        page = site.service.get("/")
        assert page.status == 200
        herald = _cell_svg(page.body, f'<a href="/sources/{BLOCKED}">')
        seeded = _seeded_days(now)
        # A bar for each seeded day, in its day's place, and none for the others;
        # two articles each day, so all of them full height.
        slot = SPARK_WIDTH / TREND_DAYS
        drawn = {first_day + timedelta(days=int(x // slot)): h for x, h, _ in _bars(herald)}
        assert drawn == dict.fromkeys(seeded, SPARK_HEIGHT)
        total = sum(seeded.values())
        assert site.new_articles == total
        busiest = min(seeded)
        assert (
            f"<title>{total} new articles in 30 days, most 2 on {busiest.isoformat()}</title>"
            in herald
        )
        # The disabled source with a hostile name: an empty month, its name escaped.
        assert "<title>0 new articles in 30 days</title>" in _cell_svg(
            page.body, f'<a href="/sources/{quote(HOSTILE_NAME, safe="")}">'
        )
        # The rules: every match the service made is today's.
        rules = re.search(r"<h2>Rules</h2>.*?</table>", page.body, re.DOTALL)
        assert rules is not None
        for row in re.findall(r"<tr><td>.*?</tr>", rules.group(0), re.DOTALL):
            matches = int(re.findall(r'<td class="num">(\d+)</td>', row)[0])
            svg = re.search(r'<svg class="spark".*?</svg>', row, re.DOTALL)
            assert svg is not None
            today = (TREND_DAYS - 1) * slot // 1
            assert _bars(svg.group(0)) == (
                [(today, SPARK_HEIGHT, (slot - SPARK_GAP) // 1)] if matches else []
            )
            noun = "match" if matches == 1 else "matches"
            summary = f"{matches} {noun} in 30 days"
            if matches:
                summary += f", most {matches} on {now.date().isoformat()}"
            assert f"<title>{summary}</title>" in row
        assert "<script" not in page.body


@pytest.mark.slow
def test_the_status_page_sparklines_in_chromium(
    browser: Any, news_site: NewsSite, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with health_site(news_site, tmp_path) as site:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        problems: list[str] = []  # a CSP violation is reported as a console error
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        page.goto(f"http://127.0.0.1:{site.service.port}/")
        herald = page.get_by_role("link", name=BLOCKED, exact=True)
        seeded = _seeded_days(now)
        total = sum(seeded.values())
        spark = page.locator("tr", has=herald).get_by_role(
            "img", name=f"{total} new articles in 30 days, most 2 on {min(seeded).isoformat()}"
        )
        assert spark.is_visible()
        bars = spark.locator("path.bars")
        assert len(_bars(f'<path class="bars" d="{bars.get_attribute("d")}"/>')) == len(seeded)
        # Drawn, full height (two articles every seeded day), from the first seeded
        # day's slot to the last one's, in the page's colour.
        box = bars.evaluate("bar => { const b = bar.getBBox(); return [b.x, b.width, b.height]; }")
        slot = SPARK_WIDTH / TREND_DAYS
        first_day = (now - timedelta(days=TREND_DAYS - 1)).date()
        assert box[0] // slot == (min(seeded) - first_day).days
        assert (box[0] + box[1]) // slot == (max(seeded) - first_day).days
        assert box[2] == pytest.approx(SPARK_HEIGHT)
        assert bars.evaluate("bar => getComputedStyle(bar).fill") != "none"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-status-sparklines.png"), full_page=True)
        page.close()
        assert problems == []


@pytest.mark.slow
def test_the_delivery_history_shows_each_digests_size_and_time_to_send(
    news_site: NewsSite, tmp_path: Path, smtp_server: RecordingSmtpServer
) -> None:
    settings = site_config(news_site, tmp_path)
    settings["delivery"] = {"smtp": {"host": smtp_server.host, "port": smtp_server.port}}
    settings["digest"]["schedule"] = "*/2 * * * * *"  # every two seconds
    config = write_config(tmp_path, **settings)
    with running_service(config) as service:

        def sent() -> list[str]:
            history = service.get("/digests")
            assert history.status == 200
            rows = re.findall(r"<tr>.*?</tr>", history.body, re.DOTALL)[1:]  # no header
            return [row for row in rows if ">sent<" in row]

        _wait_for(
            lambda: sum(int(_cells(row)[6]) for row in sent()) == 4,
            60,
            "the service to send the four matched articles",
        )
        rows = sent()
    received = sorted(len(message.raw) for message in smtp_server.messages)
    shown = sorted(
        int(re.search(r'title="(\d+) bytes"', row).group(1))  # type: ignore[union-attr]
        for row in rows
    )
    # Each message's size as the server received it (the SMTP server's copy ends
    # with the line break before the final dot, which is not the message's).
    assert len(shown) == len(received) >= 1
    for size, raw in zip(shown, received, strict=True):
        assert raw - 2 <= size <= raw
    for row in rows:
        cells = _cells(row)
        assert re.fullmatch(r"\d+(\.\d)? kB", cells[7])
        assert re.fullmatch(r"\d+ s|\d+ min \d+ s", cells[8])
    assert "Traceback" not in service.output()


def _cells(row: str) -> list[str]:
    return [Reply(200, {}, cell).text for cell in re.findall(r"<td.*?</td>", row, re.DOTALL)]
