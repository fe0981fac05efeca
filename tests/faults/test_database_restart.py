"""A database that is down at start, and a real PostgreSQL restart while the service
crawls and while it sends a digest — on a PostgreSQL server of the test's own
(tests/pgcluster.py), stopped and started as an operator or a crash would.

One-shot commands say in one line that the database does not answer; the service
waits for it with backoff, answers /healthz with 503 meanwhile, and starts by itself
when it comes; through a restart nothing is lost and nothing is sent twice.

These run in the ``--database=postgresql`` run of the suite.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import TYPE_CHECKING

import pgcluster
import pytest
from conftest import NEWSWATCH, POSTGRES_ADMIN_URL, run_newswatch, site_config, write_config
from newsroom import RECIPIENTS, Newsroom, newsroom_settings, wait_for
from smtpserver import free_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from newssite import NewsSite
    from smtpserver import RecordingSmtpServer

_URL = re.compile(r"https?://\S+/articles/\d+\.html")


@pytest.fixture
def postgresql_run(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--database") != "postgresql":
        pytest.skip("PostgreSQL outages; runs with --database=postgresql")


@pytest.fixture
def cluster(postgresql_run: None) -> Iterator[pgcluster.PrivateCluster]:
    if (why := pgcluster.available()) is not None:
        pytest.fail(f"cannot make a private PostgreSQL server: {why}")
    with pgcluster.PrivateCluster() as private:
        yield private


def _healthz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


@pytest.mark.parametrize(
    "command",
    [["status"], ["crawl"], ["digest"], ["stories"], ["rules", "test", "syria"], ["db", "upgrade"]],
    ids=lambda command: "-".join(command),
)
def test_one_shot_commands_say_in_one_line_that_the_database_does_not_answer(
    postgresql_run: None, news_site: NewsSite, tmp_path: Path, command: list[str]
) -> None:
    # A role that does not exist, with a password that must not be shown.
    database = make_url(POSTGRES_ADMIN_URL).set(username="no_such_role", password="s3cret-pw")
    settings = site_config(
        news_site, tmp_path, database=database.render_as_string(hide_password=False)
    )
    result = run_newswatch(write_config(tmp_path, **settings), *command)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("newswatch:")]
    assert len(lines) == 1, result.stderr
    assert "does not answer" in lines[0]
    assert 'role "no_such_role" does not exist' in lines[0]
    assert "s3cret-pw" not in result.stderr
    assert "s3cret-pw" not in result.stdout


@pytest.mark.slow
def test_the_service_waits_for_a_database_that_is_down_at_start(
    cluster: pgcluster.PrivateCluster, news_site: NewsSite, tmp_path: Path
) -> None:
    cluster.stop()
    port = free_port()
    settings = site_config(news_site, tmp_path, database=cluster.url, web={"port": port})
    config = write_config(tmp_path, **settings)
    log = tmp_path / "service.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [NEWSWATCH, "--config", str(config), "run"], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for(
            lambda: log.read_text().count("trying again in") >= 2,
            60,
            "two tries to reach the database",
        )
        status, health = _healthz(port)
        assert status == 503
        assert health["database"] is False
        assert process.poll() is None  # waiting, not gone

        cluster.start()
        wait_for(lambda: "newswatch running:" in log.read_text(), 120, "the service to start")
        wait_for(lambda: _healthz(port)[0] == 200, 60, "/healthz to say ok")
        engine = create_engine(cluster.url)
        with engine.connect() as connection:
            wait_for(
                lambda: connection.execute(text("SELECT count(*) FROM articles")).scalar() == 5,
                60,
                "the first crawl stored",
            )
        engine.dispose()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    output = log.read_text()
    assert "Traceback" not in output
    assert "trying again in 1s" in output
    assert "trying again in 2s" in output
    assert f"127.0.0.1:{cluster.port}/newswatch does not answer" in output


@pytest.mark.slow
def test_a_stop_while_waiting_for_the_database_is_clean(
    postgresql_run: None, news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(
        news_site, tmp_path, database=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x"
    )
    config = write_config(tmp_path, **settings)
    log = tmp_path / "service.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [NEWSWATCH, "--config", str(config), "run"], stdout=output, stderr=subprocess.STDOUT
        )
    wait_for(lambda: "trying again in" in log.read_text(), 60, "a failed try")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "stopped while waiting for the database" in log.read_text()
    assert "Traceback" not in log.read_text()


def _received(smtp: RecordingSmtpServer) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """How often each Message-ID arrived; per recipient, how often each article did."""
    ids: Counter[str] = Counter()
    per_reader: dict[str, Counter[str]] = {}
    for received in smtp.messages:
        ids[str(received.message["Message-ID"])] += 1
        body = received.message.get_body(("plain",)).get_content()
        for reader in received.envelope_to:
            per_reader.setdefault(reader, Counter()).update(set(_URL.findall(body)))
    return ids, per_reader


def _delivered_once(smtp: RecordingSmtpServer, newsroom: Newsroom) -> bool:
    _ids, per_reader = _received(smtp)
    return all(
        set(per_reader.get(reader, ())) >= newsroom.expected_urls(reader) for reader in RECIPIENTS
    )


@pytest.mark.slow
def test_a_real_postgresql_restart_during_a_crawl_and_during_a_digest(
    cluster: pgcluster.PrivateCluster,
    news_site: NewsSite,
    tmp_path: Path,
    smtp_server: RecordingSmtpServer,
) -> None:
    newsroom = Newsroom(news_site, seed=3)
    newsroom.publish(3)
    settings = newsroom_settings(newsroom, site_config(news_site, tmp_path, database=cluster.url))
    settings["sources"][0]["every"] = "1s"
    settings["digest"]["schedule"] = "*/3 * * * * *"
    settings["delivery"] = {"smtp": {"host": smtp_server.host, "port": smtp_server.port}}
    config = write_config(tmp_path, **settings)
    engine = create_engine(cluster.url)

    def stored() -> int:
        try:
            with engine.connect() as connection:
                return int(connection.execute(text("SELECT count(*) FROM articles")).scalar())
        except Exception:  # the server is down (the test restarts it)
            return -1

    def sending() -> bool:
        with engine.connect() as connection:
            return bool(
                connection.execute(
                    text(
                        "SELECT count(*) FROM deliveries WHERE sent_at IS NULL "
                        "AND claimed_by IS NOT NULL"
                    )
                ).scalar()
            )

    log = tmp_path / "service.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [NEWSWATCH, "--config", str(config), "run"], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: _delivered_once(smtp_server, newsroom), 120, "the first digests")

        # During a crawl: the server goes down as the new pages are fetched.
        newsroom.publish(4)
        wait_for(
            lambda: news_site.requests_for(f"{newsroom.section}/articles/4.html"),
            60,
            "the new pages being fetched",
        )
        cluster.stop()
        time.sleep(3)  # polls and writes fail meanwhile
        cluster.start()
        wait_for(lambda: stored() == 7, 120, "every article stored after the restart")
        wait_for(
            lambda: _delivered_once(smtp_server, newsroom), 120, "the digests after the restart"
        )

        # During a digest: the server goes down while the SMTP server holds a message,
        # and stays down past the moment the message is accepted: the send is
        # recorded once the database is back, not sent again.
        smtp_server.delay_data(3)
        newsroom.publish(3)
        wait_for(lambda: stored() == 10, 60, "the new articles stored")
        wait_for(sending, 60, "a digest in the middle of its send")
        cluster.stop()
        wait_for(
            lambda: "recording it failed" in log.read_text(),
            30,
            "a send accepted while the database is down",
        )
        cluster.start()
        smtp_server.delay_data(0)
        wait_for(
            lambda: _delivered_once(smtp_server, newsroom),
            120,
            "the digests after the second restart",
        )
        time.sleep(4)  # a tick or two more: nothing is sent again
        assert process.poll() is None  # still running
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        engine.dispose()

    ids, per_reader = _received(smtp_server)
    assert max(ids.values()) == 1, f"a message was sent twice: {ids}"
    for reader in RECIPIENTS:
        assert set(per_reader.get(reader, ())) == newsroom.expected_urls(reader)
        assert max(per_reader[reader].values()) == 1, f"{reader} got an article twice"
    output = log.read_text()
    assert "Traceback" not in output
