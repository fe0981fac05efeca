"""A failing database: SQLite locked, PostgreSQL connections killed, during a crawl and
during a digest. Nothing is lost, nothing is marked sent that was not, each article
reaches each reader once, and the service recovers by itself, still running.

The SQLite test runs in the SQLite run of the suite, the PostgreSQL test in the
``--database=postgresql`` run: each run exercises the database it is about.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from typing import TYPE_CHECKING

import pytest
from conftest import site_config, write_config
from newsroom import Ledger, Newsroom, newsroom_settings, read_outbox, service_running, wait_for
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from crawler.orchestration.workers import BatchWriter, DatabaseThread

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

# How long the test keeps SQLite locked: longer than a poll interval and a digest
# interval, shorter than SQLite's 30 s busy timeout (which outlasts a usual lock).
LOCK_SECONDS = 4
# How long a condition may take to come true: generous, since the machines are shared
# (on a loaded one a 30 s wait ran out); a passing run waits only as long as it takes.
SETTLE_SECONDS = 120


# -- the batch writer's retry, in-process -------------------------------------------


def _locked() -> OperationalError:
    return OperationalError("INSERT INTO articles …", {}, Exception("database is locked"))


def _killed() -> DBAPIError:
    return DBAPIError(
        "INSERT INTO articles …",
        {},
        Exception("server closed the connection"),
        connection_invalidated=True,
    )


def _duplicate() -> IntegrityError:
    return IntegrityError("INSERT INTO articles …", {}, Exception("UNIQUE constraint failed"))


@pytest.mark.parametrize(
    ("failures", "attempts", "stored"),
    [
        pytest.param([_locked(), _locked()], 3, True, id="locked-twice-then-written"),
        pytest.param([_killed()], 2, True, id="connection-killed-then-written"),
        pytest.param([_locked()] * 9, 4, False, id="locked-for-good-gives-up-after-3-retries"),
        pytest.param([_duplicate()], 1, False, id="constraint-error-not-retried"),
        pytest.param([ValueError("a bug")], 1, False, id="bug-not-retried"),
    ],
)
def test_a_batch_write_is_retried_only_for_passing_database_failures(
    failures: list[Exception], attempts: int, stored: bool
) -> None:
    calls: list[list[int]] = []

    def write(items: list[int]) -> list[str]:
        calls.append(list(items))
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return [f"article {item}" for item in items]

    async def save_three() -> list[str | BaseException]:
        database = DatabaseThread()
        writer: BatchWriter[int, str] = BatchWriter(
            write, database, retry_delays=(0.01, 0.02, 0.03)
        )
        try:
            return await asyncio.gather(
                *(writer.submit(n) for n in range(3)), return_exceptions=True
            )
        finally:
            database.shutdown()

    results = asyncio.run(save_three())
    assert calls == [[0, 1, 2]] * attempts  # the same batch each time, one transaction
    if stored:
        assert results == ["article 0", "article 1", "article 2"]
    else:  # every waiter hears its article was not stored (the poll retries it later)
        assert all(result is failures[attempts - 1] for result in results)


# -- SQLite locked by another process --------------------------------------------------


def _service_settings(news_site: NewsSite, folder: Path, newsroom: Newsroom) -> dict:
    settings = newsroom_settings(newsroom, site_config(news_site, folder))
    settings["sources"][0]["every"] = "1s"
    settings["digest"]["schedule"] = "*/3 * * * * *"
    return settings


def _pages_fetched(news_site: NewsSite, newsroom: Newsroom, numbers: range) -> bool:
    return all(news_site.requests_for(f"{newsroom.section}/articles/{n}.html") for n in numbers)


@pytest.mark.slow
def test_sqlite_locked_during_a_crawl_and_a_digest(
    news_site: NewsSite, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("--database") == "postgresql":
        pytest.skip("SQLite locking; the PostgreSQL run kills connections instead")
    newsroom = Newsroom(news_site, seed=1)
    newsroom.publish(3)
    settings = _service_settings(news_site, tmp_path, newsroom)
    config = write_config(tmp_path, **settings)
    ledger = Ledger(settings["database"], tmp_path / "outbox", newsroom)
    database_file = make_url(settings["database"]).database
    log = tmp_path / "service.log"
    with service_running(config, log) as service:
        wait_for(ledger.settled, SETTLE_SECONDS, "the first articles stored and sent")

        # During a crawl: new articles are fetched while another process holds the
        # write lock; the service waits for it (busy timeout) and then stores them.
        with closing(sqlite3.connect(database_file, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            locked = time.monotonic()
            newsroom.publish(3)
            wait_for(
                lambda: _pages_fetched(news_site, newsroom, range(4, 7)),
                SETTLE_SECONDS,
                "the new pages fetched under the lock",
            )
            time.sleep(max(0.0, LOCK_SECONDS - (time.monotonic() - locked)))
            assert len(ledger.stored_urls()) == 3  # nothing could be written meanwhile
            other.execute("COMMIT")
        wait_for(ledger.settled, SETTLE_SECONDS, "the articles stored and sent after the lock")

        # During a digest: articles are stored and waiting for the next digest when
        # the lock is taken; the digest due under it waits, then sends them once.
        caught_a_digest = False
        for _attempt in range(3):
            pending = {article.url for article in newsroom.publish(2) if article.rules}
            wait_for(
                lambda: len(ledger.stored_urls()) == len(newsroom.published),
                SETTLE_SECONDS,
                "the new articles stored",
            )
            with closing(sqlite3.connect(database_file, isolation_level=None)) as other:
                other.execute("BEGIN EXCLUSIVE")
                sent = set().union(*ledger.received().values())
                if pending and not pending & sent:  # the next digest comes under the lock
                    caught_a_digest = True
                    time.sleep(LOCK_SECONDS)  # a digest is due every 3 s
                    assert not pending & set().union(*ledger.received().values())
                other.execute("COMMIT")
            wait_for(ledger.settled, SETTLE_SECONDS, "the digest after the lock")
            if caught_a_digest:
                break
        assert caught_a_digest
        assert service.poll() is None  # still running

    ledger.check_delivered_exactly_once()
    assert len(ledger.stored_urls()) == len(newsroom.published)
    assert len(read_outbox(tmp_path / "outbox")) >= 3


# -- PostgreSQL connections killed --------------------------------------------------


def _waiting_on_lock(monitor: object, statement: str) -> bool:
    return bool(
        monitor.execute(
            text(  # type: ignore[attr-defined]
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE :statement"
            ),
            {"statement": statement + "%"},
        ).scalar()
    )


def _kill_service_connections(monitor: object, spare: list[int]) -> int:
    """What a PostgreSQL restart does to newswatch: every connection of the
    service is cut, the one waiting on a lock in the middle of its statement."""
    return len(
        monitor.execute(
            text(  # type: ignore[attr-defined]
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND NOT (pid = ANY(:spare))"
            ),
            {"spare": spare},
        ).all()
    )


@pytest.mark.slow
def test_postgresql_connections_killed_during_a_crawl_and_a_digest(
    news_site: NewsSite, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("--database") != "postgresql":
        pytest.skip("PostgreSQL restarts; runs with --database=postgresql")
    newsroom = Newsroom(news_site, seed=2)
    newsroom.publish(3)
    settings = _service_settings(news_site, tmp_path, newsroom)
    config = write_config(tmp_path, **settings)
    ledger = Ledger(settings["database"], tmp_path / "outbox", newsroom)
    log = tmp_path / "service.log"
    engine = create_engine(settings["database"], isolation_level="AUTOCOMMIT")
    with (
        service_running(config, log) as service,
        engine.connect() as monitor,
        engine.connect() as articles_lock,
        engine.connect() as deliveries_lock,
    ):
        wait_for(ledger.settled, 60, "the first articles stored and sent")
        spare = [
            connection.execute(text("SELECT pg_backend_pid()")).scalar()
            for connection in (articles_lock, deliveries_lock)
        ]
        # Writers wait on these locks, so the kill lands mid-statement.
        deliveries_lock.execute(text("BEGIN"))
        deliveries_lock.execute(text("LOCK TABLE deliveries IN EXCLUSIVE MODE"))
        articles_lock.execute(text("BEGIN"))
        articles_lock.execute(text("LOCK TABLE articles IN EXCLUSIVE MODE"))

        # During a crawl: the batch of new articles is being written.
        newsroom.publish(3)
        wait_for(
            lambda: _waiting_on_lock(monitor, "INSERT INTO articles"),
            30,
            "the crawl's write of the new articles",
        )
        assert _kill_service_connections(monitor, spare) >= 1
        articles_lock.execute(text("ROLLBACK"))
        wait_for(
            lambda: len(ledger.stored_urls()) == 6,
            30,
            "the new articles stored on a new connection",
        )

        # During a digest: the delivery of those articles is being created.
        wait_for(
            lambda: _waiting_on_lock(monitor, "INSERT INTO deliveries"),
            30,
            "the digest's delivery being created",
        )
        assert _kill_service_connections(monitor, spare[1:]) >= 1
        deliveries_lock.execute(text("ROLLBACK"))
        wait_for(ledger.settled, 60, "the digest sent after the connections came back")
        assert service.poll() is None  # still running
    engine.dispose()

    output = log.read_text()
    assert "database write of" in output  # the batch was retried…
    assert "trying again" in output
    ledger.check_delivered_exactly_once()  # …and nothing was lost or sent twice
    assert len(ledger.stored_urls()) == 6
