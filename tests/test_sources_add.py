"""`newswatch sources add URL` on the fixture site on loopback: a feed is added as it
is; a site's page offers the feeds it announces, each tried (entries, sample
headlines with dates), best first; the file keeps its comments."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import run_newswatch
from newssite import NewsSite

from crawler.domain.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    shutil.copy(ROOT / "config.yaml", path)
    return path


def test_a_feed_is_added_as_it_is_with_a_trial_poll(news_site: NewsSite, tmp_path: Path) -> None:
    config = _config(tmp_path)
    feed = news_site.url("world/rss.xml")
    added = run_newswatch(config, "sources", "add", feed, "--yes", "--every", "30m")
    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert lines[0] == f"1. feed {feed} (the address itself): 3 entries"
    assert lines[1:4] == [
        "     2024-02-12 08:30 UTC  Palmyra museum reopens its doors after restoration",
        "     2024-02-10 20:15 UTC  Damascus side wins cup final in extra time",
        "     2016-03-30 01:46 UTC  Army pressures ISIS in central Syria",
    ]
    assert lines[4].startswith(f"added source fixture-daily-world (feed {feed})")
    source = load_config(config).source("fixture-daily-world")
    assert (source.url, source.every.total_seconds()) == (feed, 1800)
    text = config.read_text(encoding="utf-8")
    assert text.startswith("# newswatch configuration: a working example.")
    again = run_newswatch(config, "sources", "add", feed, "--yes")
    assert again.returncode == 2
    assert f"newswatch: {feed} is already the source fixture-daily-world" in again.stdout
    assert config.read_text(encoding="utf-8") == text


def test_a_sites_page_offers_the_feeds_it_announces(news_site: NewsSite, tmp_path: Path) -> None:
    config = _config(tmp_path)
    offered = run_newswatch(config, "sources", "add", news_site.url("/"))
    assert offered.returncode == 0, offered.stderr
    lines = offered.stdout.splitlines()
    # Best first: the feed whose newest entry is newest.
    assert (
        lines[0] == f"1. feed {news_site.url('tech/atom.xml')} (announced by the page): 2 entries"
    )
    assert (
        lines[3] == f"2. feed {news_site.url('world/rss.xml')} (announced by the page): 3 entries"
    )
    assert lines[-1] == "nothing written: choose one with --pick N, or --yes for the first"
    assert len(load_config(config).sources) == 4  # nothing written without a choice

    picked = run_newswatch(
        config, "sources", "add", news_site.url("/"), "--pick", "2", "--name", "world"
    )
    assert picked.returncode == 0, picked.stderr
    assert load_config(config).source("world").url == news_site.url("world/rss.xml")

    news_site.set_content(
        "index.html", b"<html><body><p>No feeds here.</p></body></html>", "text/html"
    )
    none = run_newswatch(config, "sources", "add", news_site.url("/"))
    assert none.returncode == 1
    assert none.stdout.startswith(
        f"newswatch: no feed or news sitemap found at {news_site.url('/')}"
    )
    closed = run_newswatch(config, "sources", "add", "http://127.0.0.1:9/feed.xml")
    assert closed.returncode == 1
    assert "Traceback" not in closed.stderr
    assert closed.stdout.startswith("newswatch: http://127.0.0.1:9/feed.xml: ")
