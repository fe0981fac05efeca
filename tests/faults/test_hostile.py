"""Hostile responses: each bounded in time and memory, logged with its URL and reason,
and the other sources' articles still stored."""

from __future__ import annotations

import resource
import subprocess
import time
from typing import TYPE_CHECKING

import pytest
from conftest import NEWSWATCH, site_config, write_config
from hostile import HostileSite

from crawler.config import load_config
from crawler.store import Store

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
    settings = site_config(news_site, tmp_path, download_timeout="5s",
                           download_maxsize=5 * 1024 * 1024)
    settings["sources"] += [
        {"name": name, "feed": hostile.url(path)} for name, (path, _) in HOSTILE_FEEDS.items()
    ]
    settings["sources"] += [{"name": "xxe", "feed": hostile.url("xxe.xml")},
                            {"name": "laughs", "feed": hostile.url("laughs.xml")},
                            {"name": "links", "feed": hostile.url("links.xml")}]
    config = write_config(tmp_path, **settings)

    started = time.monotonic()
    result = subprocess.run([NEWSWATCH, "--config", str(config), "crawl"], capture_output=True,
                            text=True, timeout=300, check=False)
    elapsed = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    assert elapsed < 90  # each bad source is cut off by a timeout or a size limit
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
