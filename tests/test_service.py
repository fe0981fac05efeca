"""The long-lived service: one process, polls on schedule, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import TYPE_CHECKING

import pytest
from conftest import NEWSWATCH, site_config, write_config

from crawler.config import load_config
from crawler.store import Store

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2], ids=["inline-parsing", "worker-processes"])
def test_service_polls_repeatedly_and_stops_cleanly_on_sigterm(
    news_site: NewsSite, tmp_path: Path, workers: int
) -> None:
    settings = site_config(news_site, tmp_path, workers=workers)
    for source in settings["sources"]:
        source["every"] = "2s"
    config = write_config(tmp_path, **settings)
    log = (tmp_path / "service.log").open("w+")
    process = subprocess.Popen(
        [NEWSWATCH, "--config", str(config), "run"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        def feed_polls() -> int:
            return news_site.paths_requested().count("/world/rss.xml")

        _wait_for(lambda: feed_polls() >= 3, 60, "three polls of the world feed")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log.seek(0)
    output = log.read()
    assert "Traceback" not in output
    assert "newswatch stopped" in output

    store = Store.from_url(load_config(config).database)
    urls = [article.url for article in store.articles()]
    assert len(urls) == 5
    assert len(set(urls)) == 5
    # Each article page was fetched once, however many times its feed was polled.
    article_fetches = [p for p in news_site.paths_requested() if "/articles/" in p]
    assert len(article_fetches) == 5
    assert feed_polls() >= 3


@pytest.mark.slow
def test_a_failing_source_is_polled_less_and_less_often(
    news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(news_site, tmp_path, sources=[
        {"name": "broken", "feed": news_site.url("status/500"), "every": "1s"},
        {"name": "tech", "feed": news_site.url("tech/atom.xml"), "every": "1s"},
    ], max_backoff="1h")
    config = write_config(tmp_path, **settings)
    process = subprocess.Popen([NEWSWATCH, "--config", str(config), "run"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(12)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    healthy = len(news_site.requests_for("tech/atom.xml"))
    # Failing polls at 0s, then 2s, 4s, 8s later (each tried 3 times by Scrapy).
    broken_polls = len(news_site.requests_for("status/500")) / 3
    assert healthy >= 8
    assert broken_polls <= 4
    store = Store.from_url(load_config(config).database)
    assert store.source_state("broken").consecutive_failures == broken_polls
