"""The long-lived service: one process, polls on schedule, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from conftest import NEWSWATCH, run_newswatch, site_config, write_config

from crawler.domain.config import load_config
from crawler.storage.store import Store

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite
    from smtpserver import RecordingSmtpServer


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except Exception:  # noqa: S110 - the service may not have made its tables yet
            pass
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
    settings = site_config(
        news_site,
        tmp_path,
        sources=[
            {"name": "broken", "feed": news_site.url("status/500"), "every": "1s"},
            {"name": "tech", "feed": news_site.url("tech/atom.xml"), "every": "1s"},
        ],
        max_backoff="1h",
    )
    config = write_config(tmp_path, **settings)
    process = subprocess.Popen(
        [NEWSWATCH, "--config", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Counted from the end of the healthy source's first poll (which waits for the
        # extraction workers to start: seconds on a busy machine) for 12 seconds.
        deadline = time.monotonic() + 60
        while len(news_site.requests_for("tech/atom.xml")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(12)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    healthy = len(news_site.requests_for("tech/atom.xml"))
    # Failing polls at 0s, then 2s, 4s, 8s, 16s later (each tried 3 times by Scrapy).
    broken_polls = len(news_site.requests_for("status/500")) / 3
    assert healthy >= 8
    assert broken_polls <= 5
    store = Store.from_url(load_config(config).database)
    assert store.source_state("broken").consecutive_failures == broken_polls


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [NEWSWATCH, "--config", str(config), "run"], stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
def test_reload_applies_new_sources_and_rules_and_refuses_a_bad_file(
    news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(news_site, tmp_path)
    settings["sources"] = [{"name": "world", "feed": news_site.url("world/rss.xml"), "every": "1s"}]
    config = write_config(tmp_path, **settings)
    log = tmp_path / "service.log"
    process = _start(config, log)
    try:
        _wait_for(lambda: len(news_site.requests_for("world/rss.xml")) >= 2, 60, "world polls")
        # Edit the running service's file: drop world, add tech, add a rule.
        settings["sources"] = [
            {"name": "tech", "feed": news_site.url("tech/atom.xml"), "every": "1s"}
        ]
        settings["rules"].append({"name": "theatre", "keywords": ["theatre"]})
        write_config(tmp_path, **settings)
        _wait_for(lambda: len(news_site.requests_for("tech/atom.xml")) >= 2, 60, "tech polls")
        world_polls = len(news_site.requests_for("world/rss.xml"))
        time.sleep(3)
        assert len(news_site.requests_for("world/rss.xml")) <= world_polls + 1  # stopped

        # An invalid edit is refused; the running configuration goes on.
        config.write_text(config.read_text() + "\nrules: [[[\n", encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        tech_polls = len(news_site.requests_for("tech/atom.xml"))
        _wait_for(
            lambda: len(news_site.requests_for("tech/atom.xml")) >= tech_polls + 2,
            60,
            "tech polls after a refused reload",
        )
    finally:
        _stop(process)
    output = log.read_text()
    assert "configuration reloaded" in output
    assert "configuration reload refused" in output
    assert "invalid YAML" in output
    store = Store.from_url(settings["database"])
    matches = {(rule, url.rsplit("/", 1)[1]) for rule, url, _ in store.matches()}
    assert ("theatre", "satellite-palmyra.html") in matches  # the new rule applied


@pytest.mark.slow
def test_a_digest_missed_during_downtime_is_sent_once_after_restart(
    news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(news_site, tmp_path)
    config = write_config(tmp_path, **settings)
    log = tmp_path / "service.log"
    process = _start(config, log)
    store = Store.from_url(settings["database"])
    try:
        _wait_for(lambda: store.count_articles() == 5, 60, "the first crawl")
        _wait_for(
            lambda: store.last_run("digest:analyst@example.com") is not None,
            30,
            "the digest schedule to start",
        )
    finally:
        _stop(process)
    assert list((tmp_path / "outbox").glob("*.eml")) == []  # 07:00 IST has not come

    # Two days of downtime: the 07:00 digest windows passed while it was down.
    store.forget_runs()
    store.record_run("digest:analyst@example.com", datetime.now(UTC) - timedelta(days=2))
    for _restart in range(2):
        process = _start(config, log)
        try:
            _wait_for(
                lambda: len(list((tmp_path / "outbox").glob("*.eml"))) >= 1, 60, "the missed digest"
            )
            time.sleep(3)
        finally:
            _stop(process)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1  # once, not per missed day
    assert "was due at" in log.read_text()


@pytest.mark.slow
def test_a_digest_killed_mid_send_is_delivered_once_after_restart(
    news_site: NewsSite, tmp_path: Path, smtp_server: RecordingSmtpServer
) -> None:
    settings = site_config(news_site, tmp_path)
    settings["delivery"] = {"smtp": {"host": smtp_server.host, "port": smtp_server.port}}
    config = write_config(tmp_path, **settings)
    assert run_newswatch(config, "crawl").returncode == 0
    smtp_server.delay_data(5)
    digest = subprocess.Popen(
        [NEWSWATCH, "--config", str(config), "digest"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(2.5)  # the message is in flight: DATA sent, no answer yet
    digest.send_signal(signal.SIGKILL)
    digest.wait(timeout=10)
    smtp_server.delay_data(0)
    time.sleep(3)  # let the server finish with the dead connection
    assert run_newswatch(config, "digest").returncode == 0
    assert run_newswatch(config, "digest").returncode == 0

    ids = {m.message["Message-ID"] for m in smtp_server.messages}
    assert len(ids) == 1  # resent, if at all, as the very same message
    pages = [
        word.rsplit("/", 1)[1]
        for m in smtp_server.messages[:1]
        for word in m.message.get_body(("plain",)).get_content().split()
        if "/articles/" in word
    ]
    assert sorted(pages) == sorted(set(pages))
    assert len(pages) == 4


@pytest.mark.slow
def test_immediate_alerts_arrive_within_the_window(news_site: NewsSite, tmp_path: Path) -> None:
    settings = site_config(news_site, tmp_path)
    settings["rules"].append({"name": "heritage", "keywords": ["museum"], "alert": "immediate"})
    settings["alerts"] = {"window": "2s", "max_per_hour": 5}
    config = write_config(tmp_path, **settings)
    log = tmp_path / "service.log"
    process = _start(config, log)
    store = Store.from_url(settings["database"])
    try:
        _wait_for(lambda: store.count_articles() == 5, 60, "the first crawl")
        stored_at = time.monotonic()
        _wait_for(lambda: list((tmp_path / "outbox").glob("*.eml")), 30, "the alert")
        waited = time.monotonic() - stored_at
    finally:
        _stop(process)
    (alert,) = (tmp_path / "outbox").glob("*.eml")
    text = alert.read_text()
    assert "Subject: newswatch alert: 1 new article" in text
    assert "Palmyra museum reopens" in text
    assert "Chipmakers" not in text  # digest rules wait for the digest
    assert waited < 10


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_stop_the_service_cleanly(
    news_site: NewsSite, tmp_path: Path, signum: int
) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    log = tmp_path / "service.log"
    process = _start(config, log)
    try:
        _wait_for(lambda: "newswatch running" in log.read_text(), 60, "the service to start")
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "newswatch stopped" in log.read_text()
    # Stopped mid-crawl, nothing was lost: the next poll fetches what was left.
    assert run_newswatch(config, "crawl").returncode == 0
    assert Store.from_url(load_config(config).database).count_articles() == 5
