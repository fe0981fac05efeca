"""A source's health in the web UI (issue 20, "Look at it"): the status page's
state column, and ``/sources/<name>`` with the reason, the evidence, the last polls
and a chart of new articles per day beside the learned expectation, over real HTTP
on loopback from a running service whose history the test wrote beforehand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from conftest import site_config, write_config
from test_web import RunningService, _wait_for, _wait_for_polls, running_service

from crawler.domain.config import Config
from crawler.domain.health import Health, PollRecord, State
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.faces.web.charts import DayCount, render_daily_chart
from crawler.faces.web.common import PAGE_CSP
from crawler.orchestration.ingest import ingest_article
from crawler.storage.store import Store

if TYPE_CHECKING:
    from newssite import NewsSite

BLOCKED = "herald"
# Quotes of both kinds and markup in a name, a reason and the evidence.
HOSTILE_NAME = 'evil "quoted" <b>o\'hara</b>'
HOSTILE_REASON = 'moved to <script>alert("reason")</script> "quoted": update the configuration'
HOSTILE_MOVED_TO = 'https://evil.example/"><script>alert(2)</script>'
BLOCKED_REASON = "refused by the site (HTTP 403) 2 polls in a row"
CHART_DAYS = 30


@dataclass(frozen=True)
class HealthSite:
    """A running service with a blocked source and a hostile one, and what the test
    wrote into their history."""

    service: RunningService
    feed: str  # the blocked source's feed URL
    new_articles: int  # the blocked source's articles in the chart's 30 days


def _seed(config: Config, feed: str, now: datetime) -> int:
    """The blocked source's last four weeks (two articles each weekday, first seen
    then) and one refused poll an hour ago; the hostile source's kept health. Returns
    the blocked source's articles."""
    store = Store.from_url(config.database)
    store.upgrade()
    store.sync_sources(config.sources)
    articles = 0
    with pytest.MonkeyPatch.context() as clock:
        for days_ago in range(2, 28):
            day = (now - timedelta(days=days_ago)).replace(minute=0, second=0, microsecond=0)
            if day.weekday() >= 5:
                continue
            for hour in (9, 15):
                seen = day.replace(hour=hour)
                # Articles are first seen when stored: the store's clock is the test's.
                clock.setattr("crawler.storage.articles.utcnow", lambda seen=seen: seen)
                url = f"https://herald.example/{seen:%Y%m%d%H}"
                article = ExtractedArticle(
                    url=url,
                    title=f"Harbour news of {seen:%d %B, %H:00}",
                    text=f"The harbour reopened at {seen:%H:00} on {seen:%A %d %B}. " * 10,
                    published=seen,
                )
                ingest_article(store, ArticleItem(BLOCKED, url, article), [])
                articles += 1
    store.log_poll(BLOCKED, PollRecord(at=now - timedelta(hours=2), stored=2, new_urls=2))
    store.log_poll(
        BLOCKED,
        PollRecord(
            at=now - timedelta(hours=1),
            error=f"HTTP 403 from https://user:pa55word@{feed.removeprefix('http://')}",
            error_class="http",
            status=403,
            sample_url=feed,
        ),
    )
    store.save_health(
        HOSTILE_NAME,
        Health(
            State.MOVED,
            HOSTILE_REASON,
            {"status": 301, "moved_to": HOSTILE_MOVED_TO, "url": "javascript:alert(1)"},
            since=now - timedelta(days=1),
        ),
        now,
    )
    store.close()
    return articles


@contextmanager
def health_site(news_site: NewsSite, tmp_path: Path) -> Iterator[HealthSite]:
    """``newswatch run`` with the fixture site's two feeds, a source the site refuses
    (403: blocked at the service's first poll, the second refusal in a row) and a
    disabled source with a hostile name, reason and evidence."""
    feed = news_site.url("status/403")
    settings = site_config(news_site, tmp_path)
    settings["sources"] += [
        {"name": BLOCKED, "feed": feed, "every": "1h"},
        {
            "name": HOSTILE_NAME,
            "feed": news_site.url("hostile/rss.xml"),
            "every": "1h",
            "enabled": False,
        },
    ]
    config = write_config(tmp_path, **settings)
    articles = _seed(Config.model_validate(settings), feed, datetime.now(UTC))
    with running_service(config) as service:
        _wait_for_polls(service, 3)
        _wait_for(lambda: BLOCKED_REASON in service.get("/").text, 30, "the herald to be blocked")
        yield HealthSite(service, feed, articles)
    assert "Traceback" not in service.output()


def _text(found: re.Match[str]) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(0))).split())


def _row(page: str, name: str) -> str:
    """The visible text of the status page's row of source ``name``."""
    found = re.search(
        rf'<tr>\s*<td><strong><a href="/sources/{re.escape(quote(name, safe=""))}">.*?</tr>',
        page,
        re.DOTALL,
    )
    assert found is not None, name
    return _text(found)


@pytest.mark.slow
def test_the_status_and_source_pages_show_a_blocked_source_with_its_evidence(
    news_site: NewsSite, tmp_path: Path
) -> None:
    with health_site(news_site, tmp_path) as site:
        service = site.service
        status = service.get("/")
        assert status.status == 200
        assert "2 / 3 sources ok" in status.text  # world and tech; the herald is not
        herald = _row(status.body, BLOCKED)
        assert "blocked since" in herald
        assert BLOCKED_REASON in herald
        assert re.search(r"\bok since\b", _row(status.body, "world"))
        assert "disabled" in _row(status.body, HOSTILE_NAME)

        page = service.get(f"/sources/{BLOCKED}")
        assert page.status == 200
        for header, value in {
            "content-security-policy": PAGE_CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cache-control": "no-store",
            "x-frame-options": "DENY",
        }.items():
            assert page.headers[header] == value, header
        assert re.search(r'<span class="badge failing" id="state">blocked</span>', page.body)
        assert f'<p id="reason">{BLOCKED_REASON}</p>' in page.body
        evidence = re.search(r'<table class="evidence">.*?</table>', page.body, re.DOTALL)
        assert evidence is not None
        assert "statuses 403" in _text(evidence)
        assert re.search(r"first at \d{4}-\d\d-\d\d \d\d:\d\d IST \(1 h ago\)", _text(evidence))
        # The configuration: kind, URL (a link), interval.
        assert f'<a href="{site.feed}" rel="noopener noreferrer">{site.feed}</a>' in page.body
        # (and, once it has been polled, how often it is polled now and why)
        assert re.search(r"Kind feed URL \S+ Every 1h (Polled now .+ )?Enabled yes", page.text)
        polls = re.search(r'<table class="polls">.*?</table>', page.body, re.DOTALL)
        assert polls is not None
        rows = re.findall(r"<tr>.*?</tr>", polls.group(0), re.DOTALL)[1:]
        results = [re.search(r'class="badge (\w+)">(\w+)<', row).group(2) for row in rows]  # type: ignore[union-attr]
        # Newest first: the service's refused poll, the seeded one, the good one.
        assert results == ["error", "error", "ok"]
        assert '<td class="num">403</td>' in rows[1]
        assert "HTTP 403 from https://***@" in rows[1]  # the password is never shown
        assert "pa55word" not in page.body

        [chart] = re.findall(r"<svg .*?</svg>", page.body, re.DOTALL)
        assert len(re.findall(r'<rect class="bar"', chart)) == CHART_DAYS
        assert '<title id="new-articles-title">New articles per day from herald' in chart
        assert f"{site.new_articles} new articles in {CHART_DAYS} days" in page.text
        assert 'class="expected"' in chart  # four weeks of history: a rhythm is learned
        assert "<script" not in page.body

        assert service.get("/sources/nobody").status == 404
        assert service.get("/sources/" + quote(BLOCKED + "/x", safe="")).status == 404
        assert "No configured source has this name" in service.get("/sources/nobody").text


@pytest.mark.slow
def test_hostile_names_reasons_and_urls_are_shown_as_text(
    news_site: NewsSite, tmp_path: Path
) -> None:
    with health_site(news_site, tmp_path) as site:
        service = site.service
        status = service.get("/")
        href = "/sources/" + quote(HOSTILE_NAME, safe="")
        assert f'<a href="{href}">' in status.body
        assert "evil &#34;quoted&#34; &lt;b&gt;o&#39;hara&lt;/b&gt;" in status.body

        page = service.get(href)
        assert page.status == 200
        assert page.headers["content-security-policy"] == PAGE_CSP
        assert "<script" not in page.body
        assert "<b>o'hara" not in page.body
        assert HOSTILE_REASON in page.text  # shown, as text
        assert HOSTILE_MOVED_TO in page.text
        assert "javascript:alert(1)" in page.text
        assert 'href="javascript:' not in page.body  # a value, never a link
        moved = "https://evil.example/&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"
        assert f'<a href="{moved}" rel="noopener noreferrer">{moved}</a>' in page.body
        assert "The source is disabled" in page.text
        # Its chart has no articles and no rhythm: 30 empty bars, no expectation line.
        [chart] = re.findall(r"<svg .*?</svg>", page.body, re.DOTALL)
        assert len(re.findall(r'<rect class="bar"[^>]* height="0"', chart)) == CHART_DAYS
        assert 'class="expected"' not in chart


# -- the pieces, in-process ---------------------------------------------------------


def test_the_chart_draws_a_bar_per_day_and_the_expectation_escaped() -> None:
    first = date(2024, 3, 1)
    days = [
        DayCount(first + timedelta(days=n), count, expected)
        for n, (count, expected) in enumerate([(0, 1.5), (4, 2.0), (2, None), (8, 3.0)])
    ]
    chart = str(render_daily_chart(days, title='<script>"x"</script> & co', chart_id="c"))
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]* height="([\d.]+)"', chart)]
    assert len(heights) == 4
    assert heights[0] == 0
    assert heights[3] == pytest.approx(2 * heights[1]) == pytest.approx(4 * heights[2])
    assert "&lt;script&gt;&#34;x&#34;&lt;/script&gt; &amp; co" in chart
    assert "<script" not in chart
    assert 'aria-labelledby="c-title c-desc"' in chart
    assert "4 days from 2024-03-01 to 2024-03-04: 14 new articles" in chart
    assert "its rhythm expected 6.5" in chart
    assert len(re.findall(r'<circle class="expected-dot"', chart)) == 3  # none for the gap
    assert "2024-03-02: 4 new (expected 2.0)" in chart
    # The axis ends at a round number at or above the highest value: 8 → 10.
    assert re.search(r'text-anchor="end">10</text>', chart)
    assert render_daily_chart([], title="none") == ""


def test_new_articles_per_day_counts_first_sightings_by_utc_day(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.from_url(database_url)
    store.upgrade()
    config = Config.model_validate(
        {"sources": [{"name": "wire", "feed": "https://wire.example/rss"}]}
    )
    store.sync_sources(config.sources)
    start = datetime(2024, 3, 4, tzinfo=UTC)

    def ingest(url: str, at: datetime, text: str) -> None:
        monkeypatch.setattr("crawler.storage.articles.utcnow", lambda: at)
        article = ExtractedArticle(url=url, title=f"Story at {url}", text=text, published=at)
        ingest_article(store, ArticleItem("wire", url, article), [])

    before = "Before the window, a story about the harbour and its ships. " * 8
    ingest("https://wire.example/old", start - timedelta(minutes=1), before)
    late = "Late on Monday, a story about the council's budget vote. " * 8
    ingest("https://wire.example/a", start + timedelta(hours=23, minutes=59), late)
    tuesday = "Early on Tuesday, a story about the flood defences. " * 8
    ingest("https://wire.example/b", start + timedelta(days=1, minutes=1), tuesday)
    # Revised on Thursday: still first seen on Tuesday.
    revised = "Early on Tuesday, the story rewritten: the flood defences held overnight. " * 8
    ingest("https://wire.example/b", start + timedelta(days=3), revised)
    thursday = "On Thursday, a story about the new tram line and its stops. " * 8
    ingest("https://wire.example/c", start + timedelta(days=3, hours=2), thursday)

    per_day = store.new_articles_per_day("wire", start)
    assert per_day == {date(2024, 3, 4): 1, date(2024, 3, 5): 1, date(2024, 3, 7): 1}
    assert store.new_articles_per_day("nobody", start) == {}
    store.close()
