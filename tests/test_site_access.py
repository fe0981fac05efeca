"""Sites behind a login or with rules of their own: per source and per host request
headers, cookies (a Netscape cookies.txt file, a variable), a user agent and a proxy;
their secrets in no log line, page, status output, export or stored row."""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import site_config, write_config
from newssite import NewsSite, Reply
from scrapy import Request
from scrapy.http import HtmlResponse
from secretscan import (
    assert_shown_nowhere,
    command_outputs,
    config_error,
    everything_stored,
    get_page,
    printed,
    running_service,
    web_port,
)

from crawler.domain.config import SourceConfig, load_config
from crawler.domain.config.access import SiteAccessConfig, site_access_for
from crawler.orchestration.doctor import diagnose
from spiders.access import SiteAccess, SiteAccessMiddleware

if TYPE_CHECKING:
    from collections.abc import Iterator

COOKIE = "c00kie-value-7f3e9a1d52"
API_KEY = "api-key-4b8c2e6f0d19"
PROXY_PASSWORD = "proxy-pass-e5a7c3b1"
AGENT = "NewsReader/2.0 (compatible; test)"
POLL_LINE = re.compile(r"orchestration\.poll: source (\w+): .* in [0-9.]+s$", re.MULTILINE)
MEMBERS_FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Members only</title><link>{base}/</link>
<item><title>Museum</title><link>{base}/articles/palmyra-museum.html</link></item>
<item><title>Elsewhere</title><link>OTHER/articles/cup-final.html</link></item>
</channel></rss>
"""


def cookies_txt(domain: str, *lines: str) -> str:
    """A cookies.txt as browsers' extensions export it: ``session=COOKIE`` for ``domain``."""
    return "\n".join(
        [
            "# Netscape HTTP Cookie File",
            "# exported for the tests",
            "",
            f"{domain}\tFALSE\t/\tFALSE\t0\tsession\t{COOKIE}",
            *lines,
            "",
        ]
    )


class CookieSite(NewsSite):
    """The fixture site behind a login: 403 without the session cookie (robots.txt aside)."""

    def respond(self, raw_path: str, headers: dict[str, str]) -> Reply:
        cookies = {pair.strip() for pair in headers.get("Cookie", "").split(";") if pair.strip()}
        if raw_path != "/robots.txt" and f"session={COOKIE}" not in cookies:
            return Reply(403, b"403 members only", {"Content-Type": "text/plain"})
        return super().respond(raw_path, headers)


class RecordingProxy:
    """A forward HTTP proxy on loopback that wants a user and password, records each
    request (its absolute URL and headers) and fetches it directly."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        proxy = self
        expected = "Basic " + base64.b64encode(f"newswatch:{PROXY_PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                headers = dict(self.headers.items())
                proxy.requests.append((self.path, headers))
                if headers.get("Proxy-Authorization") != expected:
                    self._answer(407, b"proxy login needed", {"Proxy-Authenticate": "Basic"})
                    return
                forwarded = {
                    name: value
                    for name, value in headers.items()
                    if name.lower() not in ("proxy-authorization", "proxy-connection", "host")
                }
                request = urllib.request.Request(self.path, headers=forwarded)
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                try:
                    with opener.open(request, timeout=10) as response:
                        body, status = response.read(), response.status
                        kept = {"Content-Type": response.headers.get("Content-Type", "")}
                except urllib.error.HTTPError as error:
                    body, status, kept = error.read(), error.code, {}
                self._answer(status, body, kept)

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cookie_site() -> Iterator[CookieSite]:
    site = CookieSite().start()
    yield site
    site.stop()


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    server = RecordingProxy()
    yield server
    server.stop()


# -- end to end -------------------------------------------------------------------


@pytest.mark.slow
def test_a_site_behind_a_cookie_is_polled_and_no_secret_is_shown(
    cookie_site: CookieSite,
    news_site: NewsSite,
    proxy: RecordingProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The members' feed answers 403 without the cookie and serves the articles with it;
    the cookie goes to its site only. A per-host entry gives another source an API key
    (from a variable) and a user agent; a third source goes through a proxy whose
    password is in a variable. No cookie, key or proxy password in the DEBUG log,
    the web pages, the status output, the OPML export or any row."""
    other = news_site.base.replace("127.0.0.1", "localhost")  # another host
    cookie_site.set_content(
        "members/rss.xml",
        MEMBERS_FEED.replace("OTHER", other).encode(),
        "application/rss+xml",
    )
    (tmp_path / "cookies.txt").write_text(cookies_txt("127.0.0.1"), encoding="utf-8")
    settings = site_config(news_site, tmp_path)
    settings["sources"] = [
        {"name": "members", "feed": cookie_site.url("members/rss.xml"), "every": "1h"},
        {"name": "locked", "feed": cookie_site.url("world/rss.xml"), "every": "1h"},
        {"name": "keyed", "feed": f"{other}/tech/atom.xml", "every": "1h"},
        {
            "name": "proxied",
            "feed": news_site.url("world/rss.xml"),
            "every": "1h",
            "proxy_env": "NW_TEST_PROXY",
        },
    ]
    settings["sources"][0]["cookies_file"] = "cookies.txt"  # relative to config.yaml
    settings["domains"] = {
        "localhost": {"headers_env": {"X-Api-Key": "NW_TEST_API_KEY"}, "user_agent": AGENT}
    }
    config = write_config(tmp_path, **settings)
    monkeypatch.setenv("NW_TEST_API_KEY", API_KEY)
    monkeypatch.setenv(
        "NW_TEST_PROXY", proxy.url.replace("http://", f"http://newswatch:{PROXY_PASSWORD}@")
    )
    environment = dict(os.environ)
    log = tmp_path / "service.log"
    pages: dict[str, str] = {}
    with running_service(config, log, environment, "--log-level", "DEBUG"):
        deadline = time.monotonic() + 90
        # Each poll ends with one line: "…poll: source NAME: what it did in 1.2s".
        while len(set(POLL_LINE.findall(log.read_text()))) < len(settings["sources"]):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        port = web_port(log, deadline)
        for path in ("/", "/sources/members", "/sources/locked", "/sources/keyed", "/metrics"):
            pages[path] = get_page(port, path)
    outputs = command_outputs(
        config,
        environment,
        ["status"],
        ["status", "--json"],
        ["sources", "export"],
        ["check-config"],
    )
    logs = log.read_text() + printed(outputs)
    stored = everything_stored(load_config(config).database)

    # The cookie opened the members' feed and its article; another source of the same
    # site, without the cookie, got the 403.
    # Its two articles are in the proxied source's feed too (same pages, other URLs):
    # whichever poll comes first stores one, the other finds it already stored.
    members = re.search(r"source members: 2 links, 2 new, (\d+) stored(?:, (\d+) already)?", logs)
    assert members is not None, logs[-3000:]
    assert int(members.group(1)) + int(members.group(2) or 0) == 2
    assert "feed http://127.0.0.1" in logs
    assert "locked: feed" in logs
    assert "failed: HTTP 403" in logs
    museum = cookie_site.requests_for("articles/palmyra-museum.html")
    assert [seen.status for seen in museum] == [200]
    # The cookie never went to the other host (the feed linked there).
    assert news_site.requests_for("articles/cup-final.html")
    assert all(COOKIE not in str(seen.headers) for seen in news_site.requests)
    # The host's entry: the key and the user agent on that host's source only.
    keyed = news_site.requests_for("tech/atom.xml")
    assert keyed
    assert all(seen.headers["X-Api-Key"] == API_KEY for seen in keyed)
    assert all(seen.headers["User-Agent"] == AGENT for seen in keyed)
    for seen in news_site.requests_for("articles/cup-final.html"):  # the members' link
        assert "X-Api-Key" not in seen.headers
        assert seen.headers["User-Agent"].startswith("newswatch/")
    # The proxied source went through the proxy, which got its user and password.
    assert any(url == news_site.url("world/rss.xml") for url, _ in proxy.requests)
    assert all("Proxy-Authorization" not in seen.headers for seen in news_site.requests)

    assert_shown_nowhere((COOKIE, API_KEY, PROXY_PASSWORD), logs, stored, pages)
    assert "Traceback" not in logs


def test_sources_doctor_sends_the_cookie_and_logs_no_secret(
    cookie_site: CookieSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cookie_site.set_content(
        "members/rss.xml",
        MEMBERS_FEED.replace("OTHER/articles/cup-final.html", "{base}/x").encode(),
        "application/rss+xml",
    )
    (tmp_path / "cookies.txt").write_text(cookies_txt("127.0.0.1"), encoding="utf-8")
    source = {
        "name": "members",
        "feed": cookie_site.url("members/rss.xml"),
        "cookies_file": "cookies.txt",
        "user_agent": AGENT,
    }
    config = load_config(
        write_config(tmp_path, **site_config(cookie_site, tmp_path, sources=[source]))
    )
    with caplog.at_level(logging.DEBUG):
        steps = list(diagnose(config.sources[0], config))
    by_name = {step.name: step for step in steps}
    assert by_name["Fetch"].result == "ok", steps
    assert by_name["Parse"].detail.startswith("rss with 2 entries")
    assert by_name["Article"].result in ("ok", "warn")
    assert "Palmyra" in by_name["Article"].detail
    assert cookie_site.requests_for("members/rss.xml")[0].headers["User-Agent"] == AGENT
    assert COOKIE not in caplog.text
    assert all(COOKIE not in step.detail for step in steps)


# -- what goes where ------------------------------------------------------------------


def _source(**settings: Any) -> SourceConfig:
    return SourceConfig.model_validate(
        {"name": "s", "feed": "https://news.example.com/feed", **settings}
    )


def test_cookies_go_where_the_cookies_file_says(tmp_path: Path) -> None:
    file = tmp_path / "cookies.txt"
    file.write_text(
        cookies_txt(
            "news.example.com",
            ".example.com\tTRUE\t/\tFALSE\t0\twide\tw1",
            "news.example.com\tFALSE\t/members\tFALSE\t0\tmembers\tm1",
            "news.example.com\tFALSE\t/\tTRUE\t0\tsecure\ts1",
            "news.example.com\tFALSE\t/\tFALSE\t1000\texpired\te1",
            "#HttpOnly_news.example.com\tFALSE\t/\tFALSE\t0\thidden\th1",
        ),
        encoding="utf-8",
    )
    access = SiteAccess.of(_source(cookies_file=str(file)), {})

    def cookies(url: str) -> set[str]:
        return set(access.headers_for(url).get("Cookie", "").split("; ")) - {""}

    assert cookies("https://news.example.com/members/a") == {
        f"session={COOKIE}",
        "wide=w1",
        "members=m1",
        "secure=s1",
        "hidden=h1",
    }
    assert cookies("http://news.example.com/a") == {f"session={COOKIE}", "wide=w1", "hidden=h1"}
    assert cookies("https://cdn.example.com/a") == {"wide=w1"}
    assert cookies("https://elsewhere.example.org/a") == set()


def test_headers_and_variable_cookies_go_to_the_source_origin_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NW_TEST_KEY", API_KEY)
    monkeypatch.setenv("NW_TEST_COOKIES", f"session={COOKIE}; lang=fr")
    access = SiteAccess.of(
        _source(
            headers={"Accept-Language": "fr"},
            headers_env={"X-Api-Key": "NW_TEST_KEY"},
            cookies_env="NW_TEST_COOKIES",
            user_agent=AGENT,
        ),
        {},
    )
    assert access.headers_for("https://news.example.com/a/b") == {
        "User-Agent": AGENT,
        "Accept-Language": "fr",
        "X-Api-Key": API_KEY,
        "Cookie": f"session={COOKIE}; lang=fr",
    }
    for elsewhere in (
        "http://news.example.com/a",  # another scheme
        "https://news.example.com:8443/a",  # another port
        "https://www.example.com/a",  # another host
    ):
        assert access.headers_for(elsewhere) == {"User-Agent": AGENT}, elsewhere


def test_a_host_entry_applies_to_its_sources_and_the_source_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NW_TEST_KEY", API_KEY)
    domain = SiteAccessConfig.model_validate(
        {
            "headers": {"Accept-Language": "de", "X-Site": "1"},
            "user_agent": "HostAgent/1",
            "proxy": "http://proxy.example.net:3128",
        }
    )
    source = _source(headers_env={"accept-language": "NW_TEST_KEY"})
    merged = site_access_for(source.site_access(), domain)
    assert merged.header_values() == {"X-Site": "1", "accept-language": API_KEY}
    assert merged.user_agent == "HostAgent/1"
    assert merged.proxy_url() == "http://proxy.example.net:3128"
    own = site_access_for(
        _source(user_agent=AGENT, proxy="https://p.example.net").site_access(), domain
    )
    assert (own.user_agent, own.proxy_url()) == (AGENT, "https://p.example.net")


def test_a_redirected_request_gets_the_headers_of_its_new_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The middleware takes its headers off a request when the response comes back, so
    that the redirect built from it carries nothing to the other host."""
    monkeypatch.setenv("NW_TEST_KEY", API_KEY)
    source = _source(headers_env={"X-Api-Key": "NW_TEST_KEY"}, proxy="http://p.example.net:1")

    class Spider:
        def source_of(self, request: Request) -> SourceConfig:
            return source

    crawler = type("Crawler", (), {"spider": Spider()})()
    middleware = SiteAccessMiddleware(crawler, {})  # type: ignore[arg-type]
    request = Request("https://news.example.com/feed")
    middleware.process_request(request)
    assert request.headers[b"X-Api-Key"] == API_KEY.encode()
    assert request.meta["proxy"] == "http://p.example.net:1"
    middleware.process_response(request, HtmlResponse(request.url, status=302))
    assert b"X-Api-Key" not in request.headers
    assert "proxy" not in request.meta
    redirected = request.replace(url="https://other.example.org/a")
    middleware.process_request(redirected)
    assert b"X-Api-Key" not in redirected.headers
    assert redirected.meta["proxy"] == "http://p.example.net:1"


# -- configuration errors -------------------------------------------------------------


def _config_error(tmp_path: Path, source: dict[str, Any], **top: Any) -> str:
    members = {"name": "members", "feed": "https://news.example.com/feed", **source}
    return config_error(tmp_path, members, **top)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            {"cookies_file": "missing.txt"},
            r"sources\[0\]\.cookies_file \(line 4\): cannot read .*missing\.txt: No such file",
            id="missing-cookies-file",
        ),
        pytest.param(
            {"cookies_file": "bad.txt"},
            r"sources\[0\]\.cookies_file \(line 4\): .*bad\.txt: line 5: expected 7 fields "
            r"separated by tabs .* found 2",
            id="cookies-file-bad-line",
        ),
        pytest.param(
            {"cookies_file": "plain.txt"},
            r"plain\.txt: line 1: not a Netscape cookies\.txt file",
            id="cookies-file-no-header",
        ),
        pytest.param(
            {"headers_env": {"X-Api-Key": "NW_TEST_UNSET"}},
            r"sources\[0\]\.headers_env\.X-Api-Key \(line 5\): the environment variable "
            r"NW_TEST_UNSET is not set",
            id="unset-variable",
        ),
        pytest.param(
            {"cookies_env": "NW_TEST_UNSET"},
            r"sources\[0\]\.cookies_env \(line 4\): the environment variable NW_TEST_UNSET",
            id="unset-cookies-variable",
        ),
        pytest.param(
            {"proxy": "ftp://proxy.example.net:21"},
            r"sources\[0\]\.proxy \(line 4\): a proxy URL starts with http://, https://, socks5://",
            id="bad-proxy-scheme",
        ),
        pytest.param(
            {"proxy": "socks4a://proxy.example.net:1080"},
            r"sources\[0\]\.proxy \(line 4\): socks4a proxies are not supported: newswatch "
            r"speaks SOCKS version 5 only; give the proxy as socks5://",
            id="socks4-proxy",
        ),
        pytest.param(
            {"proxy": f"http://me:{PROXY_PASSWORD}@proxy.example.net:3128"},
            r"sources\[0\]\.proxy \(line 4\): the proxy URL holds a password .*proxy_env",
            id="proxy-password-in-the-file",
        ),
        pytest.param(
            {"headers": {"Cookie": f"session={COOKIE}"}},
            r"sources\[0\]\.headers\.Cookie \(line 5\): .*cookies_file or cookies_env",
            id="cookie-header",
        ),
        pytest.param(
            {"headers": {"Authorization": f"Bearer {API_KEY}"}},
            r"sources\[0\]\.headers\.Authorization \(line 5\): .*give it in headers_env",
            id="token-in-the-file",
        ),
        pytest.param(
            {"headers": {"X-Note": f"a\nb{API_KEY}"}},
            r"sources\[0\]\.headers\.X-Note \(line 5\): a header value holds a line break",
            id="header-line-break",
        ),
    ],
)
def test_unusable_access_settings_are_config_errors(
    tmp_path: Path, source: dict[str, Any], expected: str
) -> None:
    (tmp_path / "bad.txt").write_text(
        cookies_txt("news.example.com", f"news.example.com\t{COOKIE}"), encoding="utf-8"
    )
    (tmp_path / "plain.txt").write_text(f"session={COOKIE}\n", encoding="utf-8")
    message = _config_error(tmp_path, source)
    assert re.search(expected, message), message
    for secret in (COOKIE, API_KEY, PROXY_PASSWORD):
        assert secret not in message


def test_a_host_entry_is_checked_with_its_key_path(tmp_path: Path) -> None:
    message = _config_error(
        tmp_path, {}, domains={"news.example.com": {"cookies_file": "gone.txt"}}
    )
    assert re.search(
        r"domains\.news\.example\.com\.cookies_file \(line \d+\): cannot read", message
    )


def test_the_configuration_repr_shows_no_header_value(monkeypatch: pytest.MonkeyPatch) -> None:
    source = _source(headers={"X-Token": API_KEY})
    assert API_KEY not in repr(source)
    assert API_KEY not in str(source)
    assert source.site_access().header_values() == {"X-Token": API_KEY}
