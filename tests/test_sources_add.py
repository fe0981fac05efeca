"""`newswatch sources add URL` on the fixture site on loopback: a feed is added as it
is; a site's page offers the feeds it announces, each tried (entries, sample
headlines with dates), best first; a section page with neither feed nor sitemap is
offered as a listing with its article links' selector, which polls; a page built by
JavaScript, or one with nothing, is said to be so and nothing is written; the file
keeps its comments; a running service polls what was added without a restart."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import CHROMIUM, NEWSWATCH, run_newswatch, site_config, write_config
from newssite import NewsSite

from crawler.domain.config import load_config
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Callable

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
    before = config.read_bytes()
    none = run_newswatch(config, "sources", "add", news_site.url("/"), "--yes")
    assert none.returncode == 1
    assert none.stdout.splitlines() == [
        "newswatch: no feed, news sitemap or list of article links found at " + news_site.url("/"),
        "a section page can be added by hand as a listing source with the CSS selector "
        "of its article links, `links:` (README)",
    ]
    assert config.read_bytes() == before
    closed = run_newswatch(config, "sources", "add", "http://127.0.0.1:9/feed.xml")
    assert closed.returncode == 1
    assert "Traceback" not in closed.stderr
    assert closed.stdout.startswith("newswatch: http://127.0.0.1:9/feed.xml: ")


def test_a_section_page_without_feed_or_sitemap_is_offered_as_a_listing(
    news_site: NewsSite, tmp_path: Path
) -> None:
    """Its repeated article links found, the selector written, and a poll with the
    written configuration stores those articles and nothing else."""
    config = write_config(tmp_path, **site_config(news_site, tmp_path, sources=[]))
    page = news_site.url("latest/")
    added = run_newswatch(config, "sources", "add", page, "--yes")
    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert lines[0].startswith(
        f"1. listing {page} (its article links guessed from the page): "
        "4 article links match `links: "
    )
    assert lines[1:4] == [
        "     Satellite images show damage to Palmyra’s ancient theatre",
        "     Chipmakers warn the memory crisis will last into next year",
        "     Palmyra museum reopens its doors after restoration",
    ]
    assert lines[4].startswith(f"added source latest-news-fixture-weekly (listing {page})")
    source = load_config(config).source("latest-news-fixture-weekly")
    assert (source.kind, source.url) == ("listing", page)
    assert source.links is not None
    assert lines[0].endswith(f"`links: {source.links}`")

    crawled = run_newswatch(config, "crawl")
    assert crawled.returncode == 0, crawled.stderr
    stored = Store.from_url(load_config(config).database).articles()
    assert sorted(article.url.rsplit("/", 1)[1] for article in stored) == [
        "cup-final.html",
        "memory-crisis.html",
        "palmyra-museum.html",
        "satellite-palmyra.html",
    ]
    fetched = news_site.paths_requested()
    assert not [path for path in fetched if path.startswith(("/author/", "/tag/", "/subscribe"))]


def test_a_page_built_by_javascript_is_said_to_be_so(news_site: NewsSite, tmp_path: Path) -> None:
    config = _config(tmp_path)
    before = config.read_bytes()
    page = news_site.url("app/")
    result = run_newswatch(config, "sources", "add", page, "--yes")
    assert result.returncode == 1
    reason = 'an empty <div id="root">, <noscript> asks for JavaScript'
    advice = (
        # With a Chromium, the page was rendered too and still shows no links.
        f"the page looks built by JavaScript ({reason}), and rendered in Chromium it shows "
        "no list of article links either: add it by hand as a listing source with "
        "`render: browser` and the selector of its article links, `links:` (README)"
        if CHROMIUM
        else f"the page looks built by JavaScript ({reason}): add it as a listing source "
        "with `render: browser`, which reads the page as a browser shows it (README)"
    )
    assert result.stdout.splitlines() == [
        f"newswatch: no feed, news sitemap or list of article links found at {page}",
        advice,
    ]
    assert "Traceback" not in result.stderr
    assert config.read_bytes() == before


@pytest.mark.slow
def test_a_running_service_polls_an_added_source_without_a_restart(
    news_site: NewsSite, tmp_path: Path
) -> None:
    """`sources add` replaces config.yaml whole; the running service sees the file
    change and polls the new source, in the same process."""
    settings = site_config(news_site, tmp_path)
    settings["sources"] = [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    config = write_config(tmp_path, **settings)
    log = tmp_path / "service.log"
    process = subprocess.Popen(
        [NEWSWATCH, "--config", str(config), "run"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    store = Store.from_url(settings["database"])

    def stored() -> set[str]:
        try:
            return {article.url.rsplit("/", 1)[1] for article in store.articles()}
        except Exception:  # the service may not have made its tables yet
            return set()

    def wait_for(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)

    try:
        wait_for(lambda: "palmyra-museum.html" in stored(), "the world feed's first poll")
        added = run_newswatch(config, "sources", "add", news_site.url("latest/"), "--yes")
        assert added.returncode == 0, added.stdout + added.stderr
        assert "a running service picks it up" in added.stdout
        # Only the new listing links these two (the world feed does not).
        wait_for(
            lambda: {"satellite-palmyra.html", "memory-crisis.html"} <= stored(),
            "the added listing's articles",
        )
        assert process.poll() is None  # the same process: no restart
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
    output = log.read_text()
    assert "configuration reloaded: 2 sources" in output
    assert "Traceback" not in output
