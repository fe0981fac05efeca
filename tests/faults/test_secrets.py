"""Secrets (the SMTP password, the web token, a source's password) never show in logs,
pages, /metrics, stored errors or the status output."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import TYPE_CHECKING

import pytest
from conftest import site_config, write_config
from newssite import NewsSite, Reply
from prometheus_client.parser import text_string_to_metric_families
from secretscan import (
    assert_shown_nowhere,
    command_outputs,
    everything_stored,
    get_page,
    printed,
    running_service,
    web_port,
)
from smtpserver import RecordingSmtpServer

from crawler.domain.config import load_config

if TYPE_CHECKING:
    from pathlib import Path

PASSWORD = "correct-horse-battery-staple-42"
TOKEN = "web-token-5f3a9c1e7b2d4068"


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
        with running_service(config, log, environment):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "not sent" not in log.read_text():
                time.sleep(0.5)
            port = web_port(log, deadline)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            paths = ("/", "/metrics", "/digests", "/matches", f"/?token={TOKEN}")
            pages = [get_page(port, path, auth) for path in paths]
        (digest,) = command_outputs(config, environment, ["digest"])
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
        pages: dict[str, str] = {}
        with running_service(config, log, environment):
            deadline = time.monotonic() + 90
            port = web_port(log, deadline)
            while _finished_polls(pages.setdefault("/metrics", get_page(port, "/metrics"))) < 3:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
                pages["/metrics"] = get_page(port, "/metrics")
            for path in (
                "/",
                "/matches",
                "/digests",
                "/search?q=Palmyra",
                "/preview?recipient=analyst%40example.com",
            ):
                pages[path] = get_page(port, path)
        outputs = command_outputs(
            config, environment, ["status"], ["status", "--json"], ["check-config"]
        )
    finally:
        site.stop()

    logs = log.read_text() + printed(outputs)
    stored = everything_stored(load_config(config).database)
    tokens = [
        base64.b64encode(f"{FEED_USER}:{pw}".encode()).decode()
        for pw in (FEED_PASSWORD, WRONG_PASSWORD)
    ]
    assert_shown_nowhere((FEED_PASSWORD, WRONG_PASSWORD, *tokens), logs, stored, pages)

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


def _finished_polls(metrics: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "newswatch_polls_total"
    )
