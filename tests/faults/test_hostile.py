"""Hostile responses: each bounded in time and memory, logged with its URL and reason,
and the other sources' articles still stored."""

from __future__ import annotations

import resource
import subprocess
from typing import TYPE_CHECKING

import pytest
from conftest import NEWSWATCH, site_config, write_config
from hostile import HostileSite

from crawler.domain.config import load_config
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from newssite import NewsSite

# source name → (path on the hostile site, what the log line must say)
HOSTILE_FEEDS = {
    "huge": ("huge.xml", "download"),
    "bomb": ("bomb.xml", "exceeded DOWNLOAD_MAXSIZE"),
    "loop": ("loop", "max redirections reached"),
    "chain": ("hop/0", "max redirections reached"),
    "drip": ("drip.xml", "timed out"),
    "silent": ("silent.xml", "timed out"),
}


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileSite]:
    site = HostileSite()
    yield site
    site.stop()


@pytest.mark.slow
def test_hostile_feeds_are_bounded_logged_and_the_rest_is_stored(
    hostile: HostileSite, news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(
        news_site, tmp_path, download_timeout="5s", download_maxsize=5 * 1024 * 1024
    )
    settings["sources"] += [
        {"name": name, "feed": hostile.url(path)} for name, (path, _) in HOSTILE_FEEDS.items()
    ]
    settings["sources"] += [
        {"name": "xxe", "feed": hostile.url("xxe.xml")},
        {"name": "laughs", "feed": hostile.url("laughs.xml")},
        {"name": "links", "feed": hostile.url("links.xml")},
    ]
    config = write_config(tmp_path, **settings)

    result = subprocess.run(
        [NEWSWATCH, "--config", str(config), "crawl"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    # Each bad source is cut off by a timeout or a size limit: its log line says which.
    assert peak_mb < 500  # the 1 GB bomb and the 50 MB feed were never held whole
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    for name, (path, reason) in HOSTILE_FEEDS.items():
        failures = [line for line in lines if f"source {name}:" in line and "failed" in line]
        assert len(failures) == 1, (name, failures)
        assert hostile.url(path) in failures[0], failures[0]
        assert reason.lower() in failures[0].lower(), failures[0]

    store = Store.from_url(load_config(config).database)
    pages = {article.url.rsplit("/", 1)[1]: article for article in store.articles()}
    # The normal sources were not held up.
    assert {"army-pressures-isis.html", "memory-crisis.html"} <= set(pages)
    # No file was read through an external entity, no entity expanded, and no
    # javascript:/file: link followed.
    assert all("root:" not in article.title + article.body for article in pages.values())
    assert any("source laughs: feed" in line and "undefined entity" in line for line in lines)
    assert "lollollol" not in result.stderr
    assert not any(article.url.startswith(("javascript:", "file:")) for article in pages.values())
    # Mislabelled and undeclared charsets were read as what they really are.
    assert pages["mislabelled.html"].title == "Café society – a naïve résumé"
    assert "パルミラの博物館が再開" in pages["sjis.html"].title
    assert "修復を終えて再開しました" in pages["sjis.html"].body
    # Random bytes served as HTML are not an article.
    assert "binary.html" not in pages
    assert any("binary.html" in line and "not a text page" in line for line in lines)


@pytest.mark.slow
def test_a_timed_out_request_is_not_retried_so_a_drip_server_costs_one_timeout(
    hostile: HostileSite, news_site: NewsSite, tmp_path: Path
) -> None:
    """Scrapy retries a timeout twice: a drip server held the poll for 3× the
    download_timeout. A timeout now fails the request at once (the next poll is its
    retry), for the index and for article pages alike; quick failures still retry."""
    settings = site_config(news_site, tmp_path, download_timeout="3s")
    settings["sources"] = [
        {"name": "drip", "feed": hostile.url("drip.xml")},
        {"name": "silent", "feed": hostile.url("silent.xml")},
        {"name": "slowpage", "feed": hostile.url("driplinks.xml")},
        {"name": "broken", "feed": news_site.url("status/500")},
    ]
    before = list(hostile.requests)
    result = subprocess.run(
        [NEWSWATCH, "--config", str(write_config(tmp_path, **settings)), "crawl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    asked = hostile.requests[len(before) :]
    assert asked.count("/drip.xml") == 1, asked  # was 3: the first try and two retries
    assert asked.count("/silent.xml") == 1, asked
    assert asked.count("/drip.html") == 1, asked  # an article page: not retried either
    lines = result.stderr.splitlines()
    for name in ("drip", "silent"):
        [line] = [line for line in lines if f"source {name}: feed" in line and "failed" in line]
        assert "timed out" in line, line
    [page] = [line for line in lines if "source slowpage: article" in line]
    assert hostile.url("drip.html") in page
    assert "timed out" in page
    # A server error is quick: retried twice (RETRY_TIMES), then reported.
    assert sum(1 for r in news_site.requests if r.path == "/status/500") == 3
    assert any("source broken: feed" in line and "HTTP 500" in line for line in lines)
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_response_growing_past_download_maxsize_says_so(
    hostile: HostileSite, news_site: NewsSite, tmp_path: Path
) -> None:
    """A body without Content-Length is cut when it passes download_maxsize; Scrapy
    cancels it without a message ("DownloadCancelledError: "), newswatch says why."""
    settings = site_config(news_site, tmp_path, download_maxsize=1024 * 1024)
    settings["sources"] = [{"name": "endless", "feed": hostile.url("endless.xml")}]
    result = subprocess.run(
        [NEWSWATCH, "--config", str(write_config(tmp_path, **settings)), "crawl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    [line] = [
        line
        for line in result.stderr.splitlines()
        if "source endless: feed" in line and "failed" in line
    ]
    assert line.endswith(
        "failed: download cancelled: response larger than download_maxsize (1048576 bytes)"
    ), line
    store = Store.from_url(load_config(tmp_path / "config.yaml").database)
    [row] = store.source_statuses()
    store.close()
    assert (
        row["last_error"] == "download cancelled: response larger than download_maxsize "
        "(1048576 bytes)"
    )


@pytest.mark.slow
def test_a_poll_is_bounded_as_a_whole_and_what_it_left_comes_next_time(
    hostile: HostileSite, news_site: NewsSite, tmp_path: Path
) -> None:
    """Eight drip pages, two at a time, each cut off at download_timeout (2 s): the
    poll would take 8 s; poll_timeout (3 s) stops it after the requests under way
    end, says so in one line, and the pages it left are still new for the next."""
    settings = site_config(news_site, tmp_path, download_timeout="2s", poll_timeout="3s")
    settings["sources"] = [{"name": "drips", "feed": hostile.url("manydrips.xml")}]
    config = write_config(tmp_path, **settings)
    before = len(hostile.requests)
    first = subprocess.run(
        [NEWSWATCH, "--config", str(config), "crawl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    asked = [path for path in hostile.requests[before:] if path.startswith("/drip.html")]
    assert 2 <= len(asked) < 8, asked
    [line] = [line for line in first.stderr.splitlines() if "poll stopped" in line]
    left = 8 - len(asked)
    assert line.endswith(
        f"source drips: poll stopped after 3s (poll_timeout); {left} new "
        "links left for the next poll"
    ), line
    assert "Traceback" not in first.stderr

    # The next poll, given the time for all of them, asks for every page: those it
    # left were still new (and the timed-out ones too: they failed, nothing stored).
    settings["poll_timeout"] = "60s"
    config = write_config(tmp_path, **settings)
    before = len(hostile.requests)
    subprocess.run(
        [NEWSWATCH, "--config", str(config), "crawl"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    again = {path for path in hostile.requests[before:] if path.startswith("/drip.html")}
    assert again == {f"/drip.html?n={n}" for n in range(8)}, (asked, again)
