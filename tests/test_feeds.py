"""Feeds: entries are read from RSS and Atom; a broken source is one log line, not a stop."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import run_newswatch, site_config, write_config
from newssite import site_file

from crawler.domain.config import load_config
from crawler.storage.store import Store
from spiders.feedparse import FeedError, parse_feed

if TYPE_CHECKING:
    from newssite import NewsSite

BASE = "http://news.example"


def _fixture(name: str) -> bytes:
    return site_file(name).read_bytes().replace(b"{base}", BASE.encode())


def test_rss_entries_with_links_and_times() -> None:
    feed = parse_feed(_fixture("world/rss.xml"), f"{BASE}/world/rss.xml", "application/rss+xml")
    assert feed.problem is None
    assert [entry.title for entry in feed.entries] == [
        "Army pressures ISIS in central Syria",
        "Palmyra museum reopens its doors after restoration",
        "Damascus side wins cup final in extra time",
    ]
    assert feed.entries[0].url.startswith(f"{BASE}/articles/army-pressures-isis.html?utm_")
    assert feed.entries[0].published == datetime(2016, 3, 30, 1, 46, tzinfo=UTC)
    assert feed.entries[1].published == datetime(2024, 2, 12, 8, 30, tzinfo=UTC)


def test_atom_entries_with_offsets_in_utc() -> None:
    feed = parse_feed(_fixture("tech/atom.xml"), f"{BASE}/tech/atom.xml", "application/atom+xml")
    assert [entry.url for entry in feed.entries] == [
        f"{BASE}/articles/memory-crisis.html",
        f"{BASE}/articles/satellite-palmyra.html?fbclid=AbC123",
    ]
    assert feed.entries[1].published == datetime(2024, 2, 13, 20, 20, tzinfo=UTC)


def test_entries_without_a_web_link_are_skipped() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>a</title><link>javascript:alert(1)</link></item>"
        b"<item><title>b</title><link>file:///etc/passwd</link></item>"
        b"<item><title>c</title><link>https://news.example/c</link></item>"
        b"</channel></rss>"
    )
    feed = parse_feed(body, f"{BASE}/rss", "application/rss+xml")
    assert [entry.url for entry in feed.entries] == ["https://news.example/c"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(_fixture("broken/not-a-feed.html"), "the server sent an HTML page", id="html"),
        pytest.param(b"", "the response is empty", id="empty"),
        pytest.param(b"\x00\x01binary\xff", "not a readable feed", id="binary"),
    ],
)
def test_not_a_feed_is_a_clear_error(body: bytes, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        parse_feed(body, f"{BASE}/feed", "text/html")


def test_truncated_feed_is_flagged() -> None:
    feed = parse_feed(_fixture("broken/truncated.xml"), f"{BASE}/t.xml", "application/xml")
    assert feed.entries == ()
    assert feed.problem is not None
    assert "no element found" in feed.problem


BROKEN_SOURCES = {
    "missing": ("status/404", "HTTP 404"),
    "erroring": ("status/500", "HTTP 500"),
    "homepage": ("broken/not-a-feed.html", "not a feed: the server sent an HTML page"),
    "truncated": ("broken/truncated.xml", "malformed feed with no readable entries"),
}


def test_broken_sources_are_logged_once_and_the_rest_are_stored(
    news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(news_site, tmp_path)
    settings["sources"] += [
        {"name": name, "feed": news_site.url(path)} for name, (path, _) in BROKEN_SOURCES.items()
    ]
    config = write_config(tmp_path, **settings)

    result = run_newswatch(config, "crawl")

    assert result.returncode == 1  # some sources failed; cron sees it
    for name, (path, reason) in BROKEN_SOURCES.items():
        url = news_site.url(path)
        lines = [line for line in result.stderr.splitlines() if f"feed {url}" in line]
        assert len(lines) == 1, (name, lines)
        assert reason in lines[0]
        assert f"source {name}:" in lines[0]
    assert "Traceback" not in result.stderr
    store = Store.from_url(load_config(config).database)
    assert store.count_articles() == 5
    assert store.source_state("missing").consecutive_failures == 1
    assert store.source_state("missing").last_error == "HTTP 404"
    assert store.source_state("world").consecutive_failures == 0
    assert store.source_state("world").last_success_at is not None
