"""Secrets (the SMTP password, the web token, a source's password) never show in logs,
pages, /metrics, stored errors or the status output."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from typing import TYPE_CHECKING

import pytest
from conftest import NEWSWATCH, site_config, write_config
from newssite import NewsSite, Reply
from prometheus_client.parser import text_string_to_metric_families
from smtpserver import RecordingSmtpServer
from sqlalchemy import create_engine, inspect, text

from crawler.domain.config import load_config

if TYPE_CHECKING:
    from pathlib import Path

PASSWORD = "correct-horse-battery-staple-42"
TOKEN = "web-token-5f3a9c1e7b2d4068"
WEB_UI_LINE = re.compile(r"web UI at http://127\.0\.0\.1:(\d+)/")


@pytest.mark.slow
def test_secrets_stay_out_of_logs_pages_and_metrics(news_site: NewsSite, tmp_path: Path) -> None:
    settings = site_config(news_site, tmp_path)
    # The server knows another password: logins fail and get logged, with reasons.
    with RecordingSmtpServer(username="newswatch", password="something-else") as smtp:
        settings["delivery"] = {
            "smtp": {
                "host": smtp.host,
                "port": smtp.port,
                "username": "newswatch",
                "password_env": "NEWSWATCH_TEST_SMTP_PASSWORD",
            }
        }
        settings["web"] = {"port": 0, "token_env": "NEWSWATCH_TEST_WEB_TOKEN"}
        settings["digest"]["schedule"] = "*/2 * * * * *"  # a (failing) digest every 2 s
        config = write_config(tmp_path, **settings)
        environment = {
            **os.environ,
            "NEWSWATCH_TEST_SMTP_PASSWORD": PASSWORD,
            "NEWSWATCH_TEST_WEB_TOKEN": TOKEN,
        }
        log = tmp_path / "service.log"
        with log.open("wb") as output:
            service = subprocess.Popen(
                [NEWSWATCH, "--config", str(config), "run"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                "not sent" not in log.read_text() or not WEB_UI_LINE.search(log.read_text())
            ):
                time.sleep(0.5)
            port = WEB_UI_LINE.search(log.read_text()).group(1)  # type: ignore[union-attr]
            pages = []
            for path in ("/", "/metrics", "/digests", "/matches", f"/?token={TOKEN}"):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    pages.append(response.read().decode())
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
        digest = subprocess.run(
            [NEWSWATCH, "--config", str(config), "digest"],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=False,
        )
    logs = log.read_text() + digest.stdout + digest.stderr
    assert "not sent" in logs  # the failures were logged…
    assert "authentication" in logs.lower() or "535" in logs  # …with their reason
    for secret in (PASSWORD, TOKEN):
        assert secret not in logs
        assert all(secret not in page for page in pages)
    assert "newswatch_emails_failed_total" in pages[1]


FEED_PASSWORD = "feed-pass-9d4e1b7a2c"
WRONG_PASSWORD = "not-the-feed-pass-61f0"
FEED_USER = "reader"
PRIVATE_FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Members only</title><link>{base}/</link>
<item><title>Museum</title><link>{base}/articles/palmyra-museum.html</link></item>
<item><title>Moved</title><link>{base}/moved</link></item>
<item><title>Elsewhere</title><link>OTHER/articles/cup-final.html</link></item>
</channel></rss>
"""


class AuthNewsSite(NewsSite):
    """The fixture site behind HTTP basic authentication (robots.txt aside)."""

    expected = "Basic " + base64.b64encode(f"{FEED_USER}:{FEED_PASSWORD}".encode()).decode()

    def respond(self, raw_path: str, headers: dict[str, str]) -> Reply:
        if raw_path != "/robots.txt" and headers.get("Authorization") != self.expected:
            return Reply(
                401,
                b"401 who are you?",
                {"Content-Type": "text/plain", "WWW-Authenticate": 'Basic realm="news"'},
            )
        return super().respond(raw_path, headers)


def _everything_stored(database: str) -> str:
    """Every value of every row of every table, as text."""
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            return "\n".join(
                repr(tuple(row))
                for table in inspect(engine).get_table_names()
                for row in connection.execute(text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_source_password_is_sent_as_basic_auth_and_never_shown(
    news_site: NewsSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``http://user:password@host/feed`` (or ``http://user@host/feed`` with
    ``password_env``): the poll authenticates with HTTP basic auth, on the source's
    own host only, and the password is in no log line, page, metric, stored error,
    status output or row of the database."""
    other = news_site.base.replace("127.0.0.1", "localhost")  # another host for the origin
    site = AuthNewsSite().start()
    try:
        site.set_content(
            "members/rss.xml", PRIVATE_FEED.replace("OTHER", other).encode(), "application/rss+xml"
        )
        site.script(
            "moved", [Reply(302, b"", {"Location": f"{other}/articles/memory-crisis.html"})]
        )
        with_password = site.base.replace("http://", f"http://{FEED_USER}:{FEED_PASSWORD}@")
        settings = site_config(news_site, tmp_path)
        settings["sources"] = [
            {"name": "private", "feed": f"{with_password}/members/rss.xml"},
            {
                "name": "wrongpw",
                "every": "1h",
                "feed": site.url("world/rss.xml").replace(
                    "http://", f"http://{FEED_USER}:{WRONG_PASSWORD}@"
                ),
            },
            {
                "name": "fromenv",
                "feed": site.url("tech/atom.xml").replace("http://", f"http://{FEED_USER}@"),
                "password_env": "NW_TEST_FEED_PASSWORD",
            },
        ]
        config = write_config(tmp_path, **settings)
        monkeypatch.setenv("NW_TEST_FEED_PASSWORD", FEED_PASSWORD)
        environment = dict(os.environ)
        log = tmp_path / "service.log"
        with log.open("wb") as output:
            service = subprocess.Popen(
                [NEWSWATCH, "--config", str(config), "run"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        pages: dict[str, str] = {}
        try:
            deadline = time.monotonic() + 90
            while not WEB_UI_LINE.search(log.read_text()):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
            port = WEB_UI_LINE.search(log.read_text()).group(1)  # type: ignore[union-attr]
            while _finished_polls(pages.setdefault("/metrics", _get(port, "/metrics"))) < 3:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
                pages["/metrics"] = _get(port, "/metrics")
            for path in (
                "/",
                "/matches",
                "/digests",
                "/search?q=Palmyra",
                "/preview?recipient=analyst%40example.com",
            ):
                pages[path] = _get(port, path)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=60)
        outputs = [
            subprocess.run(
                [NEWSWATCH, "--config", str(config), *command],
                capture_output=True,
                text=True,
                env=environment,
                timeout=120,
                check=False,
            )
            for command in (["status"], ["status", "--json"], ["check-config"])
        ]
    finally:
        site.stop()

    logs = log.read_text() + "".join(out.stdout + out.stderr for out in outputs)
    stored = _everything_stored(load_config(config).database)
    tokens = [
        base64.b64encode(f"{FEED_USER}:{pw}".encode()).decode()
        for pw in (FEED_PASSWORD, WRONG_PASSWORD)
    ]
    for secret in (FEED_PASSWORD, WRONG_PASSWORD, *tokens):
        assert secret not in logs
        assert secret not in stored
        for path, page in pages.items():
            assert secret not in page, path

    # The polls authenticated: the articles of both good sources are stored.
    status = json.loads(outputs[1].stdout)
    by_name = {row["name"]: row for row in status["sources"]}
    assert by_name["private"]["status"] == "ok"
    assert by_name["private"]["articles"] == 3  # same host, via a redirect, another host
    assert by_name["fromenv"]["status"] == "ok"
    assert by_name["fromenv"]["articles"] == 2
    assert by_name["private"]["url"] == site.url("members/rss.xml")  # stored without userinfo
    # The wrong password: one failure, its reason, the URL without its userinfo.
    assert by_name["wrongpw"]["last_error"] == "HTTP 401"
    [failed] = [line for line in logs.splitlines() if "source wrongpw: feed" in line]
    assert f"feed {site.url('world/rss.xml')} failed: HTTP 401" in failed
    assert site.url("members/rss.xml") in pages["/"]
    # Credentials went to the source's own host, never to the other one (a link there,
    # and a redirect there from the source's host).
    answered = {seen.path for seen in site.requests if seen.status in (200, 302)}
    assert answered >= {
        "/robots.txt",
        "/members/rss.xml",
        "/articles/palmyra-museum.html",
        "/moved",
        "/tech/atom.xml",
    }
    assert {seen.path for seen in news_site.requests} >= {
        "/articles/cup-final.html",
        "/articles/memory-crisis.html",
    }
    assert not any(
        "Authorization" in seen.headers or "authorization" in seen.headers
        for seen in news_site.requests
    )
    assert "Traceback" not in logs


def _get(port: str, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.read().decode()


def _finished_polls(metrics: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "newswatch_polls_total"
    )
