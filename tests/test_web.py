"""The web UI, /healthz and /metrics of a running service, over real HTTP on loopback.

Most tests run ``newswatch run`` as a user does, against the fixture news site,
and read its pages while it crawls; a few check the pieces (search terms, links,
the search index, the metrics registry) in-process on both databases.
"""

from __future__ import annotations

import email
import email.policy
import html
import http.client
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from conftest import (
    ARTIFACTS,
    NEWSWATCH,
    fresh_postgres_database,
    run_newswatch,
    site_config,
    write_config,
)
from prometheus_client.parser import text_string_to_metric_families
from smtpserver import free_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from alerts.rules import RuleMatch
from crawler.domain.config import SourceConfig
from crawler.domain.items import ExtractedArticle
from crawler.faces.web import PREVIEW_CSP, is_allowed_host, parse_search, safe_link
from crawler.orchestration.metrics import Metrics, StoreCollector
from crawler.storage.store import ArticleRecord, Store, create_database_engine, upgrade_database

if TYPE_CHECKING:
    from newssite import NewsSite
    from smtpserver import RecordingSmtpServer

MUSEUM = "Palmyra museum reopens its doors after restoration"
ARMY = "Army pressures ISIS in central Syria"
SATELLITE = "Satellite images show damage to Palmyra’s ancient theatre"
CHIPS = "Chipmakers warn the memory crisis will last into next year"
CUP = "Damascus side wins cup final in extra time"
TOKEN = "s3cret-web-token-0123456789"
SMTP_PASSWORD = "hunter2-smtp-password-xyz"
HOSTILE_TITLE = '<script>alert("title")</script> Palmyra siege <img src=x onerror=alert(1)>'
WEB_UI_LINE = re.compile(r"web UI at http://127\.0\.0\.1:(\d+)/")


# -- a running service ------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def text(self) -> str:
        """What a reader sees: no style sheet, no tags, entities decoded, spaces collapsed."""
        visible = re.sub(r"<style.*?</style>", " ", self.body, flags=re.DOTALL)
        visible = re.sub(r"</?(?:a|b|code|em|mark|span|strong)\b[^>]*>", "", visible)
        visible = re.sub(r"<[^>]+>", " ", visible)
        return " ".join(html.unescape(visible).split())


@dataclass
class RunningService:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def request(
        self,
        path: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read().decode("utf-8", errors="replace"),
            )
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> Reply:
        return self.request(path, headers={k.replace("_", "-"): v for k, v in headers.items()})

    def metric(self, name: str, headers: dict[str, str] | None = None, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        reply = self.request("/metrics", headers=headers)
        assert reply.status == 200, reply.body
        return sum(
            sample.value
            for family in text_string_to_metric_families(reply.body)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def running_service(config: Path, env: dict[str, str] | None = None) -> Iterator[RunningService]:
    """``newswatch run`` on ``config`` until the block ends; its web port is read from
    the log line the service writes (the configs ask for port 0 unless a test
    chooses one)."""
    log = config.parent / "service.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [NEWSWATCH, "--config", str(config), "run"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        port: list[int] = []

        def announced() -> bool:
            assert process.poll() is None, f"newswatch exited:\n{log.read_text()}"
            found = WEB_UI_LINE.search(log.read_text(encoding="utf-8", errors="replace"))
            if found:
                port.append(int(found.group(1)))
            return bool(found)

        _wait_for(announced, 60, "the service to log its web UI address")
        service = RunningService(process, port[0], log)
        _wait_for(lambda: service.get("/healthz").status == 200, 30, "/healthz to answer 200")
        yield service
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_polls(service: RunningService, count: int, **auth: str) -> None:
    headers = {k.replace("_", "-"): v for k, v in auth.items()}
    _wait_for(
        lambda: service.metric("newswatch_polls_total", headers) >= count,
        60,
        f"{count} finished polls",
    )


def _digest_html(eml: Path) -> str:
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def _sections(page: Reply) -> dict[str, str]:
    """The visible text under each ``<h2>`` heading, by the heading's first word."""
    parts = re.split(r"<h2>", page.body)[1:]
    return {Reply(200, {}, part).text.split()[0]: Reply(200, {}, part).text for part in parts}


def _without_times(page: str) -> str:
    """A digest with its "generated at" time blanked (a preview is made moments earlier)."""
    return re.sub(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d \w+", "TIME", page)


# -- the service's pages ------------------------------------------------------------


@pytest.mark.slow
def test_status_matches_search_and_metrics_follow_the_crawl(
    news_site: NewsSite, tmp_path: Path
) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    started = time.time()
    with running_service(config) as service:
        health = service.get("/healthz")
        assert health.status == 200
        assert health.headers["content-type"] == "application/json"
        body = json.loads(health.body)
        assert {key: body[key] for key in ("status", "scheduler", "database")} == {
            "status": "ok",
            "scheduler": True,
            "database": True,
        }
        assert body["sources"]["state"] in ("waiting", "ok")  # the first polls may be done
        _wait_for_polls(service, 2)
        ready = service.get("/readyz")
        assert (ready.status, json.loads(ready.body)["sources"]["state"]) == (200, "ok")

        # /metrics: counters moved with the crawl, gauges read from the database.
        assert service.metric("newswatch_articles_stored_total") == 5
        assert service.metric("newswatch_articles_stored_total", source="world") == 3
        assert service.metric("newswatch_articles_stored_total", source="tech") == 2
        assert service.metric("newswatch_polls_total", source="world", result="ok") == 1
        assert service.metric("newswatch_polls_total", result="error") == 0
        # The feed and its three new article pages, at least (robots.txt too).
        assert service.metric("newswatch_pages_fetched_total", source="world", status="2xx") >= 4
        assert service.metric("newswatch_crawl_duration_seconds_count", source="tech") == 1
        assert service.metric("newswatch_source_consecutive_failures", source="world") == 0
        assert (
            service.metric("newswatch_source_last_success_timestamp_seconds", source="world")
            >= started - 1
        )
        assert service.metric("newswatch_rule_matches", rule="syria") == 3
        assert service.metric("newswatch_rule_matches", rule="chips") == 1
        assert service.metric("newswatch_database_up") == 1
        assert service.metric("newswatch_emails_sent_total", kind="digest") == 0
        assert "text/plain" in service.get("/metrics").headers["content-type"]

        status = service.get("/")
        assert status.status == 200
        assert status.headers["content-type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in status.headers["content-security-policy"]
        assert "script" not in status.headers["content-security-policy"]
        for expected in (
            "2 / 2 sources ok",
            "5 articles stored",
            "4 rule matches",
            news_site.url("world/rss.xml"),
            news_site.url("tech/atom.xml"),
            "analyst@example.com",
            "0 7 * * *",
            "Asia/Kolkata",
            "IST",
        ):
            assert expected in status.text, expected
        world_row = re.search(
            r'<tr>\s*<td><strong><a href="/sources/world">world</a></strong>.*?</tr>',
            status.body,
            re.DOTALL,
        )
        assert world_row is not None
        assert "ok" in Reply(200, {}, world_row.group(0)).text.split()
        assert "<script" not in status.body

        matches = service.get("/matches")
        assert matches.status == 200
        sections = _sections(matches)
        assert list(sections) == ["syria", "chips"]  # in the configuration's order
        for title in (MUSEUM, ARMY, SATELLITE):
            assert title in sections["syria"]
        assert CHIPS in sections["chips"]
        assert CUP not in matches.text  # "football" excludes it from the rule
        assert f'href="{news_site.url("articles/palmyra-museum.html")}"' in matches.body

        search = service.get("/search?q=Palmyra")
        assert search.status == 200
        for title in (MUSEUM, SATELLITE, ARMY):
            assert title in search.text
        assert CHIPS not in search.text
        assert "<mark>Palmyra</mark>" in search.body
        phrase = service.get("/search?q=" + quote('"reopened to visitors" museum'))
        assert MUSEUM in phrase.text
        assert ARMY not in phrase.text
        assert "No stored article contains" in service.get("/search?q=zeppelin").text

        # The next digest, exactly as `newswatch digest` then sends it.
        index = service.get("/preview")
        assert 'href="/preview?recipient=analyst%40example.com"' in index.body
        preview = service.get("/preview?recipient=analyst%40example.com")
        assert preview.status == 200
        assert preview.headers["content-security-policy"] == PREVIEW_CSP
        assert MUSEUM in preview.text
        assert CHIPS in preview.text
        assert service.get("/preview?recipient=nobody%40example.com").status == 404
        digest = run_newswatch(config, "digest")
        assert digest.returncode == 0, digest.stderr
        [sent] = (tmp_path / "outbox").glob("*.eml")
        assert _without_times(_digest_html(sent)) == _without_times(preview.body)
        assert (
            "Nothing is pending for analyst@example.com"
            in service.get("/preview?recipient=ANALYST%40example.com").text
        )

    assert "Traceback" not in service.output()


# (what, method, path, expected status): one service answers them all in turn.
ODD_REQUESTS = [
    ("unknown path", "GET", "/no/such/page", 404),
    ("trailing slash", "GET", "/matches/", 200),
    ("dot-dot", "GET", "/%2e%2e/%2e%2e/etc/passwd", 404),
    ("bad UTF-8 and quotes", "GET", "/search?q=%ff%fe%00" + "%22" * 50, 200),
    ("FTS syntax", "GET", "/search?q=" + quote('Palmyra" OR title:* NEAR(a b) -x ^'), 200),
    ("long query", "GET", "/search?q=" + "Palmyra+" * 1500, 200),
    ("odd query string", "GET", "/search?q=a&q=b&&&=&%", 200),
    ("hostile recipient", "GET", "/preview?recipient=%3Cscript%3E", 404),
    ("POST", "POST", "/", 405),
    ("DELETE", "DELETE", "/healthz", 405),
    ("HEAD", "HEAD", "/", 200),
]


@pytest.mark.slow
def test_odd_requests_get_a_sensible_answer_never_a_crash(
    news_site: NewsSite, tmp_path: Path
) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    with running_service(config) as service:
        _wait_for_polls(service, 2)
        for what, method, path, expected in ODD_REQUESTS:
            reply = service.request(path, method)
            assert reply.status == expected, (what, reply.status, reply.body[:300])
            if method == "HEAD":
                assert reply.body == ""
                assert int(reply.headers["content-length"]) > 1000
            if method in {"POST", "DELETE"}:
                assert reply.headers["allow"] == "GET, HEAD"
            assert "<script>" not in reply.body, what
        assert service.get("/healthz").status == 200  # still serving
    assert "Traceback" not in service.output()


@pytest.mark.slow
def test_a_page_asked_for_under_another_host_name_is_refused(
    news_site: NewsSite, tmp_path: Path
) -> None:
    """DNS rebinding: a page on evil.example whose name then resolves to 127.0.0.1
    would read the UI (recipients in /preview) with the browser's Host: evil.example.
    Only the UI's own names, addresses and web.allowed_hosts are answered."""
    settings = site_config(news_site, tmp_path)
    settings["web"] = {"port": 0, "allowed_hosts": ["News.Example.org"]}
    with running_service(write_config(tmp_path, **settings)) as service:
        _wait_for_polls(service, 2)
        port = service.port
        for host in (
            "evil.example",
            f"evil.example:{port}",
            f"rebind.127.0.0.1.nip.io:{port}",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "news.example.org.x",
            f"127.0.0.1:{port}x",
            "[::1",
            "",
        ):
            for path in (
                "/",
                "/preview?recipient=analyst%40example.com",
                "/metrics",
                "/search?q=Palmyra",
                "/no/such/page",
            ):
                refused = service.request(path, headers={"Host": host})
                assert refused.status == 421, (host, path, refused.status)
                assert "web.allowed_hosts" in refused.body
                assert "analyst@example.com" not in refused.body
        for host in (
            f"127.0.0.1:{port}",
            "127.0.0.1",
            f"localhost:{port}",
            "LOCALHOST.",
            f"[::1]:{port}",
            "192.0.2.7:8787",
            "news.example.org",
            "news.example.org.",
            f"NEWS.example.org:{port}",
        ):
            assert service.request("/", headers={"Host": host}).status == 200, host
        preview = service.request(
            "/preview?recipient=analyst%40example.com", headers={"Host": f"localhost:{port}"}
        )
        assert preview.status == 200
        # The health check stays open to any name (load balancers, container probes).
        assert service.request("/healthz", headers={"Host": "evil.example"}).status == 200
    assert "Traceback" not in service.output()


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        pytest.param(b"127.0.0.1:8787", True, id="loopback-address"),
        pytest.param(b"localhost", True, id="localhost"),
        pytest.param(b"app.localhost:80", True, id="under-localhost"),
        pytest.param(b"[::1]:8787", True, id="ipv6"),
        pytest.param(b"10.1.2.3", True, id="lan-address"),
        pytest.param(b"news.example.org:443", True, id="allowed-name"),
        pytest.param(b"evil.example", False, id="other-name"),
        pytest.param(b"localhost.evil.example", False, id="localhost-prefix"),
        pytest.param(b"evil.example:8787:1", False, id="two-ports"),
        pytest.param(b"127.0.0.1:port", False, id="port-not-a-number"),
        pytest.param(b"[::1]x", False, id="junk-after-ipv6"),
        pytest.param(b"[evil.example]", False, id="name-in-brackets"),
        pytest.param(b"0x7f.1", False, id="hex-ipv4-is-a-name"),
        pytest.param(b"\xff\xfe", False, id="bytes"),
        pytest.param(b"", False, id="empty"),
    ],
)
def test_host_headers(header: bytes, allowed: bool) -> None:
    assert is_allowed_host(header, frozenset({"news.example.org"})) is allowed


@pytest.mark.slow
def test_digests_sent_by_the_service_show_in_history_and_metrics(
    news_site: NewsSite, tmp_path: Path, smtp_server: RecordingSmtpServer
) -> None:
    settings = site_config(news_site, tmp_path)
    settings["delivery"] = {"smtp": {"host": smtp_server.host, "port": smtp_server.port}}
    settings["digest"]["schedule"] = "*/2 * * * * *"  # every two seconds
    config = write_config(tmp_path, **settings)
    with running_service(config) as service:

        def delivered() -> list[list[str]]:
            history = service.get("/digests")
            assert history.status == 200
            rows = re.findall(r"<tr>.*?</tr>", history.body, re.DOTALL)[1:]  # no header
            return [
                [Reply(200, {}, cell).text for cell in re.findall(r"<td.*?</td>", row, re.DOTALL)]
                for row in rows
            ]

        # The four matched articles, in one digest (or two, if one went out while
        # the second source was still being crawled).
        _wait_for(
            lambda: sum(int(row[6]) for row in delivered() if row[2] == "sent") == 4,
            60,
            "the service to send the four matched articles",
        )
        rows = delivered()
        for row in rows:
            assert row[:3] == ["analyst@example.com", "digest", "sent"]
            assert row[5] == "1"  # one attempt
            assert "IST" in row[4]  # sent, in the digest's time zone
        assert service.metric("newswatch_emails_sent_total", kind="digest") == len(rows)
        assert service.metric("newswatch_emails_failed_total") == 0
        assert service.metric("newswatch_deliveries_unsent", kind="digest") == 0
        assert "Nothing is pending" in service.get("/preview?recipient=analyst%40example.com").text
    assert len(smtp_server.messages) == len(rows)
    assert "Traceback" not in service.output()


@pytest.mark.slow
def test_the_token_guards_every_page_but_healthz_and_no_secret_is_shown(
    news_site: NewsSite, tmp_path: Path
) -> None:
    settings = site_config(news_site, tmp_path)
    port = free_port()
    settings["web"] = {"host": "127.0.0.1", "port": port, "token_env": "NEWSWATCH_TEST_TOKEN"}
    # Nothing listens on this port: every send fails, and its error is on /digests.
    settings["delivery"] = {
        "smtp": {
            "host": "127.0.0.1",
            "port": free_port(),
            "username": "newswatch",
            "password_env": "NW_TEST_SMTP",
        }
    }
    settings["digest"]["schedule"] = "*/2 * * * * *"
    config = write_config(tmp_path, **settings)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with running_service(
        config, {"NEWSWATCH_TEST_TOKEN": TOKEN, "NW_TEST_SMTP": SMTP_PASSWORD}
    ) as service:
        assert service.port == port
        assert service.get("/healthz").status == 200
        for path in (
            "/",
            "/sources/world",
            "/matches",
            "/digests",
            "/preview",
            "/search?q=x",
            "/metrics",
            "/no/such/page",
        ):
            refused = service.get(path)
            assert refused.status == 401, path
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert service.request(path, headers={"Authorization": "Bearer wrong"}).status == 401
            assert service.get(path + ("&" if "?" in path else "?") + "token=wrong").status == 401
        assert service.request("/", headers={"Authorization": "Basic " + TOKEN}).status == 401

        assert service.request("/", headers=bearer).status == 200
        by_query = service.get(f"/matches?token={TOKEN}")
        assert by_query.status == 200
        cookie = by_query.headers["set-cookie"].split(";")[0]
        assert TOKEN not in cookie
        assert "HttpOnly" in by_query.headers["set-cookie"]
        assert service.get("/digests", Cookie=cookie).status == 200  # a browser's next page
        assert service.get("/digests", Cookie="newswatch_session=forged").status == 401

        _wait_for(
            lambda: service.metric("newswatch_emails_failed_total", bearer, kind="digest") >= 1,
            60,
            "a failed send",
        )
        assert service.metric("newswatch_deliveries_unsent", bearer, kind="digest") == 1
        history = service.request("/digests", headers=bearer)
        assert "waiting to be sent" in history.text
        assert re.search(r"refused|connect", history.text, re.IGNORECASE)

        pages = [
            service.request(path, headers=bearer)
            for path in (
                "/",
                "/matches",
                "/digests",
                "/metrics",
                "/preview?recipient=analyst%40example.com",
                f"/search?q={TOKEN}",
                f"/search?q={SMTP_PASSWORD}",
                f"/nope?q={TOKEN}",
            )
        ]
        for page in pages:
            assert page.status in {200, 404}
            assert TOKEN not in page.body
            assert SMTP_PASSWORD not in page.body
        assert "[redacted]" in pages[5].body  # the search box echoed the token


@pytest.mark.slow
def test_healthz_fails_when_the_database_is_gone(news_site: NewsSite, tmp_path: Path) -> None:
    with fresh_postgres_database() as url:
        config = write_config(tmp_path, **site_config(news_site, tmp_path, database=url))
        with running_service(config) as service:
            _wait_for_polls(service, 2)
            admin = create_engine(
                make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()

            health = service.get("/healthz")
            assert health.status == 503
            assert json.loads(health.body) == {
                "status": "fail",
                "scheduler": True,
                "database": False,
                "reason": "the database does not answer",
            }
            assert service.metric("newswatch_database_up") == 0
            assert service.metric("newswatch_articles_stored_total") == 5  # still counted
            status = service.get("/")
            assert status.status == 503
            assert "database" in status.text
            assert url not in status.body


@pytest.mark.slow
def test_the_web_ui_in_a_real_browser(browser: Any, news_site: NewsSite, tmp_path: Path) -> None:
    news_site.set_content("hostile/rss.xml", _HOSTILE_FEED, "application/rss+xml")
    news_site.set_content("articles/hostile.html", _HOSTILE_PAGE, "text/html; charset=utf-8")
    settings = site_config(news_site, tmp_path)
    settings["sources"].append(
        {"name": "evil<b>outlet</b>", "feed": news_site.url("hostile/rss.xml"), "every": "1h"}
    )
    config = write_config(tmp_path, **settings)
    with running_service(config) as service:
        _wait_for_polls(service, 3)
        base = f"http://127.0.0.1:{service.port}"
        ARTIFACTS.mkdir(exist_ok=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []
        problems: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )

        def visit(path: str, screenshot: str) -> str:
            response = page.goto(base + path)
            assert response is not None
            assert response.status == 200, path
            page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
            return page.inner_text("body")

        status = visit("/", "web-status.png")
        for expected in (
            "Sources",
            "world",
            "tech",
            "evil<b>outlet</b>",
            "Rules",
            "syria",
            "chips",
            "Recipients",
            "analyst@example.com",
            "IST",
        ):
            assert expected in status, expected
        assert re.search(r"\b6\s+articles stored", status)  # five pages and the hostile one

        matches = visit("/matches", "web-matches.png")
        assert MUSEUM in matches
        assert HOSTILE_TITLE in matches  # shown as text, never run
        link = page.get_by_role("link", name=HOSTILE_TITLE)
        assert link.get_attribute("href") == news_site.url("articles/hostile.html")

        search = visit("/search?q=Palmyra+siege", "web-search.png")
        assert HOSTILE_TITLE in search
        assert MUSEUM not in search

        preview = visit("/preview?recipient=analyst%40example.com", "web-preview.png")
        assert MUSEUM in preview
        assert HOSTILE_TITLE in preview

        mobile = browser.new_page(viewport={"width": 375, "height": 800})
        mobile.goto(base + "/")
        mobile.screenshot(path=str(ARTIFACTS / "web-status-mobile.png"), full_page=True)
        mobile.close()
        page.close()
        assert dialogs == []
        assert problems == []
    assert "Traceback" not in service.output()


_HOSTILE_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Evil</title><link>{base}/</link>
<item><title>&lt;script&gt;alert("title")&lt;/script&gt; Palmyra siege</title>
<link>{base}/articles/hostile.html</link><pubDate>Tue, 13 Feb 2024 08:00:00 GMT</pubDate></item>
</channel></rss>
"""
_HOSTILE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<meta property="og:title" content="{title}">
<meta property="og:type" content="article">
<meta property="article:published_time" content="2024-02-13T08:00:00+00:00">
<meta name="author" content="&lt;b onmouseover=alert(4)&gt;Mallory&lt;/b&gt;">
</head><body><main><article>
<h1>{title}</h1>
<div class="article-body">
<p>Fighting resumed near Palmyra on Tuesday, &lt;script&gt;alert("body")&lt;/script&gt; witnesses
said, as government forces pushed towards the ancient city from the west.</p>
<p>The advance on Palmyra follows weeks of air strikes on positions held by the group in the
desert around the city, according to monitors who track the conflict.</p>
<p>Residents who fled Palmyra last year said they hoped to return once the fighting ends,
though many of their homes have been damaged or destroyed.</p>
</div></article></main></body></html>
""".replace("{title}", html.escape(HOSTILE_TITLE)).encode()


# -- the pieces, in-process ---------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        pytest.param("Palmyra", ["Palmyra"], id="word"),
        pytest.param("  Palmyra   museum ", ["Palmyra", "museum"], id="words"),
        pytest.param('"reopens its  doors" museum', ["reopens its doors", "museum"], id="phrase"),
        pytest.param('"unbalanced phrase', ["unbalanced", "phrase"], id="unbalanced-quote"),
        pytest.param(
            'a"b NEAR(x) title:y *', ['a"b', "NEAR(x)", "title:y"], id="fts-syntax-is-text"
        ),
        pytest.param("--- *** \"\" ''", [], id="no-letters"),
        pytest.param("Palmyra palmyra Palmyra", ["Palmyra", "palmyra"], id="repeats"),
        pytest.param("", [], id="empty"),
    ],
)
def test_search_terms_are_words_and_phrases(query: str, terms: list[str]) -> None:
    assert parse_search(query) == terms


def test_search_terms_are_bounded() -> None:
    assert len(parse_search("word " * 10_000)) <= 12
    assert len(parse_search(" ".join(f"w{n}" for n in range(1000)))) == 12


@pytest.mark.parametrize(
    ("url", "link"),
    [
        pytest.param("https://news.example/a?b=1", "https://news.example/a?b=1", id="https"),
        pytest.param("http://news.example/", "http://news.example/", id="http"),
        pytest.param("javascript:alert(1)", None, id="javascript"),
        pytest.param("JaVaScRiPt:alert(1)", None, id="javascript-mixed-case"),
        pytest.param("java\tscript:alert(1)", None, id="javascript-with-tab"),
        pytest.param("data:text/html,<script>", None, id="data"),
        pytest.param("//news.example/a", None, id="scheme-relative"),
        pytest.param("http:///a", None, id="no-host"),
        pytest.param(" https://news.example/", None, id="leading-space"),
        pytest.param("", None, id="empty"),
    ],
)
def test_links_are_made_only_for_http_urls(url: str, link: str | None) -> None:
    assert safe_link(url) == link


def _record(n: int, title: str, body: str) -> ArticleRecord:
    return ArticleRecord(
        "wire",
        ExtractedArticle(
            url=f"https://news.example/{n}",
            title=title,
            text=body,
            published=datetime(2024, 2, n, tzinfo=UTC),
        ),
    )


def test_search_index_is_backfilled_and_follows_every_change(database_url: str) -> None:
    engine = create_database_engine(database_url)
    upgrade_database(engine, "0005")  # the schema before the search index
    store = Store(engine)
    # The source as that schema holds it (the store's own code speaks today's).
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO sources (name, kind, url, consecutive_failures, created_at) "
                "VALUES ('wire', 'feed', 'https://news.example/rss.xml', 0, :now)"
            ),
            {"now": datetime.now(UTC)},
        )
    store.insert_articles(
        [(_record(1, "Palmyra museum reopens", "Restorers rebuilt the statues."), [])]
    )
    store.upgrade()
    store.insert_articles(
        [
            (
                _record(2, "Memory chips", "A shortage of memory chips near Palmyra."),
                [RuleMatch("chips", ("memory",))],
            )
        ]
    )

    def titles(*terms: str) -> list[str]:
        return [row["title"] for row in store.search_articles(list(terms))]

    assert titles("palmyra") == ["Memory chips", "Palmyra museum reopens"]  # newest first
    assert titles("restorers") == ["Palmyra museum reopens"]  # stored before the index
    assert titles("memory chips", "shortage") == ["Memory chips"]
    assert titles("chips memory") == []  # a phrase is words in that order
    # Whatever is typed is words to find, never query syntax (and never an error).
    for hostile in ('"', 'a"b OR c*', "NEAR(x y)", "title:Palmyra", "*", "'); DROP TABLE x"):
        assert store.search_articles([hostile]) == []
    # Found by the web fuzzer: a NUL ended FTS5's string ("unterminated string") and is
    # refused by PostgreSQL; control characters are spaces.
    assert titles("memory\x00chips") == ["Memory chips"]
    assert titles("\x00", "\x1b") == []
    assert store.count_articles() == 2

    known = store.find_article(["https://news.example/1"], None)
    assert known is not None
    store.save_revision(
        known,
        _record(1, "Palmyra museum opens to visitors", "Restorers rebuilt the statues."),
        [],
        notify=False,
    )
    assert titles("reopens") == []
    assert titles("visitors") == ["Palmyra museum opens to visitors"]
    # Retention empties old bodies (the title stays searchable), then deletes rows.
    store.purge(
        bodies_before=datetime(2100, 1, 1, tzinfo=UTC), rows_before=datetime(2000, 1, 1, tzinfo=UTC)
    )
    assert titles("restorers") == []
    assert titles("visitors") == ["Palmyra museum opens to visitors"]
    store.purge(
        bodies_before=datetime(2100, 1, 1, tzinfo=UTC), rows_before=datetime(2100, 1, 1, tzinfo=UTC)
    )
    assert titles("palmyra") == []
    store.close()


def test_web_queries_read_sources_matches_and_deliveries(database_url: str) -> None:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources([SourceConfig(name="wire", feed="https://news.example/rss.xml")])
    store.insert_articles(
        [
            (_record(n, f"Story {n}", "Body."), [RuleMatch("syria", ("Palmyra",))])
            for n in range(1, 5)
        ]
    )
    store.record_poll("wire", error="HTTP 500 from https://news.example/rss.xml")
    [source] = store.source_statuses()
    assert (source["name"], source["articles"], source["consecutive_failures"]) == ("wire", 4, 1)
    assert source["last_error"].startswith("HTTP 500")
    assert store.rule_match_counts() == {"syria": 4}
    latest = store.recent_matches(per_rule=3)
    assert [row["title"] for row in latest] == ["Story 4", "Story 3", "Story 2"]
    assert latest[0]["terms"] == ["Palmyra"]
    items = store.pending_items("ana@example.com", ["syria"])
    delivery = store.create_delivery("ana@example.com", items, "example.com")
    assert delivery is not None
    store.record_send_failure(delivery.id, "connection refused")
    [row] = store.delivery_history()
    assert (row["recipient"], row["articles"], row["attempts"], row["sent_at"]) == (
        "ana@example.com",
        4,
        1,
        None,
    )
    assert store.unsent_delivery_counts() == {"digest": 1}
    store.close()


def test_metrics_registries_are_independent_and_survive_a_dead_database() -> None:
    first, second = Metrics(sources=lambda: ["world"]), Metrics(sources=lambda: ["world"])
    first.page_fetched("world", 200)
    first.page_fetched("world", 304)
    first.email_sent("digest")

    def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample(first, "newswatch_pages_fetched_total", source="world", status="2xx") == 1
    assert sample(first, "newswatch_pages_fetched_total", source="world", status="3xx") == 1
    assert sample(second, "newswatch_pages_fetched_total", source="world", status="2xx") is None
    assert sample(second, "newswatch_articles_stored_total", source="world") == 0
    assert sample(first, "newswatch_emails_sent_total", kind="digest") == 1

    dead = Store.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    collector = StoreCollector(dead)
    [up] = list(collector.collect())
    assert (up.name, up.samples[0].value) == ("newswatch_database_up", 0)
    dead.close()
