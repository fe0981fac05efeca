"""One digest run per recipient and period, ever: a catch-up run after downtime and
the cron ticks that follow it never both send, however slow the SMTP server."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from conftest import NEWSWATCH, run_newswatch, site_config, write_config

from crawler.storage.store import Store

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite
    from smtpserver import RecordingSmtpServer

READERS = ("a@example.com", "b@example.com")


def _article_links(message: object) -> list[str]:
    body = message.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    return [word for word in body.split() if "/articles/" in word]


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.slow
def test_a_catch_up_digest_overlapping_cron_ticks_is_sent_once(
    news_site: NewsSite, tmp_path: Path, smtp_server: RecordingSmtpServer
) -> None:
    settings = site_config(news_site, tmp_path)
    settings["digest"] = {"schedule": "*/4 * * * * *", "timezone": "UTC"}
    settings["recipients"] = [{"email": reader} for reader in READERS]
    settings["delivery"] = {"smtp": {"host": smtp_server.host, "port": smtp_server.port}}
    config = write_config(tmp_path, **settings)
    assert run_newswatch(config, "crawl").returncode == 0
    store = Store.from_url(settings["database"])
    # The service was down while a tick passed: each reader's digest is due at start.
    for reader in READERS:
        store.record_run(f"digest:{reader}", datetime.now(UTC) - timedelta(minutes=1))
    smtp_server.delay_data(3)  # each message takes longer than the catch-up's head start

    log = tmp_path / "service.log"
    process = subprocess.Popen(
        [NEWSWATCH, "--config", str(config), "run"], stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    try:
        _wait_for(lambda: len(smtp_server.messages) >= len(READERS), 60, "the catch-up digests")
        # Several more ticks come and go while the slow server answers.
        ticks_seen = time.monotonic() + 12
        _wait_for(lambda: time.monotonic() > ticks_seen, 20, "three more ticks")
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0
    output = log.read_text()
    assert "was due at" in output  # the catch-up ran
    assert "Traceback" not in output

    for reader in READERS:
        received = [m.message for m in smtp_server.messages if reader in m.envelope_to]
        ids = Counter(message["Message-ID"] for message in received)
        assert ids, f"{reader} got no digest"
        assert max(ids.values()) == 1, f"{reader} got a message twice: {ids}"
        links = [link for message in received for link in _article_links(message)]
        assert len(links) == len(set(links)), f"{reader} got an article twice"
        assert len(links) == 4  # every matching article of the fixture site, once
    deliveries = store.deliveries()
    assert deliveries
    assert all(d.sent_at is not None and d.attempts == 1 for d in deliveries)
