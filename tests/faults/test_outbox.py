"""The outbox folder cannot be written (disk full, folder missing): the digest is not
marked sent, no half-written .eml is left, and it is retried (with backoff in the
service) and then delivered exactly once, as the very same message."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

import pytest
from conftest import site_config, write_config
from newsroom import service_running, wait_for

import alerts.delivery
from alerts.digest import make_delivery, send_pending_digests
from alerts.rules import RuleMatch
from crawler.domain.config import load_config
from crawler.domain.items import ExtractedArticle
from crawler.storage.store import ArticleRecord, Store

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

READER = "ana@example.com"
WRITTEN_BEFORE_FULL = 1024  # bytes the disk takes before it is full


class _FillingFile:
    """A file on a disk that fills up: the first KB is written, then ENOSPC."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.handle.close()

    def write(self, data: bytes) -> int:
        self.handle.write(data[:WRITTEN_BEFORE_FULL])
        self.handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


class _FullDiskOs:
    """The ``os`` module as alerts.delivery sees it, with the outbox's disk full."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def fdopen(descriptor: int, mode: str) -> _FillingFile:
        return _FillingFile(os.fdopen(descriptor, mode))


def _store_matching_articles(database: str, count: int) -> Store:
    store = Store.from_url(database)
    store.upgrade()
    store.insert_articles(
        [
            (
                ArticleRecord(
                    "wire",
                    ExtractedArticle(
                        url=f"https://news.example/quake-{n}",
                        title=f"Earthquake report {n}",
                        text=f"An earthquake of magnitude {n} struck the coast on Tuesday.",
                        published=datetime(2024, 2, 14, n, tzinfo=UTC),
                    ),
                ),
                [RuleMatch("quake", ("earthquake",))],
            )
            for n in range(1, count + 1)
        ]
    )
    return store


def _settings(folder: Path, database: str) -> dict[str, Any]:
    return {
        "database": database,
        "workers": 0,
        "rules": [{"name": "quake", "keywords": ["earthquake"]}],
        "digest": {"recipients": [READER], "schedule": "0 7 * * *"},
        "delivery": {"outbox": str(folder / "outbox")},
        "web": {"enabled": False},
    }


def _message_ids(folder: Path) -> list[str]:
    return [
        str(BytesParser(policy=policy.default).parsebytes(path.read_bytes())["Message-ID"])
        for path in sorted(folder.glob("*.eml"))
    ]


def test_a_full_disk_leaves_no_file_marks_nothing_sent_and_the_retry_delivers_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store_matching_articles(database_url, 2)
    config_file = write_config(tmp_path, **_settings(tmp_path, database_url))
    config = load_config(config_file)
    outbox = config.delivery.outbox
    delivery = make_delivery(config.delivery)

    with monkeypatch.context() as disk:
        disk.setattr(alerts.delivery, "os", _FullDiskOs())
        report = send_pending_digests(store, config, delivery)
    assert "No space left on device" in report.failed[READER]
    assert report.attempts[READER] == 1  # what the service schedules its retry by
    [failed] = store.deliveries()
    assert failed.sent_at is None  # not marked sent
    assert failed.attempts == 1
    assert list(outbox.iterdir()) == []  # neither a half .eml nor its temporary file

    # Space again: the retry sends the very message that failed, once.
    report = send_pending_digests(store, config, delivery)
    assert report.sent == {READER: 2}
    [sent] = store.deliveries()
    assert sent.id == failed.id
    assert sent.sent_at is not None
    assert _message_ids(outbox) == [failed.message_id]
    assert send_pending_digests(store, config, delivery).sent == {}
    assert _message_ids(outbox) == [failed.message_id]
    store.close()


def test_an_eml_written_before_a_crash_is_not_written_again(tmp_path: Path) -> None:
    """The process died after writing the file, before recording it as sent: the
    retry finds the file and does not add a second copy."""
    store = _store_matching_articles(f"sqlite:///{tmp_path / 'newswatch.db'}", 1)
    config = load_config(
        write_config(tmp_path, **_settings(tmp_path, f"sqlite:///{tmp_path / 'newswatch.db'}"))
    )
    delivery = make_delivery(config.delivery)
    marked: list[int] = []
    with pytest.MonkeyPatch.context() as crash:
        crash.setattr(store, "mark_sent", lambda delivery_id, at=None, size=None: marked.append(1))
        send_pending_digests(store, config, delivery)  # written, "killed" before marking
    assert marked == [1]
    [unsent] = store.deliveries()
    assert unsent.sent_at is None
    send_pending_digests(store, config, delivery)
    assert store.deliveries()[0].sent_at is not None
    assert _message_ids(config.delivery.outbox) == [unsent.message_id]  # one file
    store.close()


@pytest.mark.slow
def test_the_service_retries_an_unwritable_outbox_with_backoff_and_delivers_once(
    news_site: NewsSite, tmp_path: Path
) -> None:
    settings = {
        **_settings(tmp_path, site_config(news_site, tmp_path)["database"]),
        "delivery_retry": {"first_delay": "1s", "max_delay": "2s", "attempts": 20},
    }
    store = _store_matching_articles(settings["database"], 3)
    # The 07:00 digest was missed while the service was down: it is sent at start.
    store.record_run(f"digest:{READER}", datetime.now(UTC) - timedelta(days=2))
    store.close()
    outbox = tmp_path / "outbox"
    outbox.write_text("a file where the outbox folder should be", encoding="utf-8")
    config = write_config(tmp_path, **settings)
    log = tmp_path / "service.log"
    with service_running(config, log) as service:
        wait_for(
            lambda: "not sent (attempt 2)" in log.read_text(),
            60,
            "two failed attempts, retried without a scheduled run",
        )
        outbox.unlink()  # the folder can be made again: space freed, mount back
        wait_for(lambda: outbox.is_dir() and list(outbox.glob("*.eml")), 30, "the retry to deliver")
        assert service.poll() is None
    store = Store.from_url(settings["database"])
    [delivery] = store.deliveries()
    store.close()
    assert delivery.sent_at is not None
    assert delivery.attempts >= 3  # two or more failures, then the success
    assert _message_ids(outbox) == [delivery.message_id]
    assert list(outbox.iterdir()) == list(outbox.glob("*.eml"))  # no temporary files
    output = log.read_text()
    assert "could not write" in output
    assert "will retry" in output
