"""Sources behind a SOCKS5 proxy (``proxy: socks5://…`` or ``proxy_env``): polled with
``newswatch crawl`` through a loopback SOCKS5 server (tests/socksproxy.py), the
proxy's password in no output; a proxy that refuses or is not there is one clear
line; what cannot work is refused when the configuration is read."""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING, Any

import pytest
from conftest import run_newswatch, site_config, write_config
from secretscan import config_error
from socksproxy import Socks5Proxy

from crawler.domain.config import load_config
from crawler.orchestration.doctor import diagnose
from crawler.storage.store import Store
from spiders.access import SiteAccess
from spiders.browser import context_options
from spiders.settings import cluster_settings
from spiders.socks import SOCKS_HANDLERS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from newssite import NewsSite

PASSWORD = "socks-pass-9d1f7a3e"
USER = "newswatch"
ARTICLES = {"army-pressures-isis.html", "palmyra-museum.html", "cup-final.html"}


@pytest.fixture
def socks_proxy() -> Iterator[Socks5Proxy]:
    proxy = Socks5Proxy(login=(USER, PASSWORD))
    yield proxy
    proxy.stop()


def _free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _crawl(site: NewsSite, folder: Path, level: str, **source: Any) -> tuple[str, Store]:
    feed = {"name": "world", "feed": site.url("world/rss.xml"), "every": "1h", **source}
    config = write_config(folder, **site_config(site, folder, sources=[feed]))
    result = run_newswatch(config, "--log-level", level, "crawl")
    return result.stdout + result.stderr, Store.from_url(load_config(config).database)


def test_a_feed_is_polled_through_a_socks_proxy_with_a_login(
    news_site: NewsSite,
    socks_proxy: Socks5Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The feed is asked for as ``localhost``: with socks5h the proxy gets the name and
    connects; every page of the poll went through it, and its password is in no line
    of the DEBUG output."""
    monkeypatch.setenv("NW_TEST_SOCKS", socks_proxy.url(USER, PASSWORD).replace("5:", "5h:"))
    site_url = news_site.url("world/rss.xml").replace("127.0.0.1", "localhost")
    output, store = _crawl(news_site, tmp_path, "DEBUG", feed=site_url, proxy_env="NW_TEST_SOCKS")

    stored = {article.url.rsplit("/", 1)[1] for article in store.articles()}
    assert stored == ARTICLES, output[-3000:]
    port = int(news_site.url("").split(":")[2].split("/")[0])
    # The feed's host reached the proxy as a name, the articles' as written in the feed.
    assert ("localhost", port) in socks_proxy.connects
    # Every request the site saw came through the proxy.
    assert news_site.requests
    for seen in news_site.requests:
        assert f"GET {seen.path} HTTP/1.1".encode() in socks_proxy.relayed, seen.path
    assert PASSWORD not in output
    assert "experimental" not in output  # said once, in the README, not at every poll


@pytest.mark.parametrize(
    ("proxy", "expected"),
    [
        pytest.param(
            "dead",
            r"cannot connect to the SOCKS proxy 127\.0\.0\.1:\d+: connection refused",
            id="nothing-listens",
        ),
        pytest.param(
            "wrong-password",
            r"the SOCKS proxy 127\.0\.0\.1:\d+ refused the user name and password",
            id="wrong-password",
        ),
        pytest.param(
            "no-login",
            r"the SOCKS proxy 127\.0\.0\.1:\d+ wants a user name and password",
            id="login-missing",
        ),
    ],
)
def test_a_socks_proxy_that_fails_is_one_clear_poll_error(
    news_site: NewsSite,
    socks_proxy: Socks5Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    proxy: str,
    expected: str,
) -> None:
    urls = {
        "dead": f"socks5://127.0.0.1:{_free_port()}",
        "wrong-password": socks_proxy.url(USER, "not-" + PASSWORD),
        "no-login": socks_proxy.url(),
    }
    monkeypatch.setenv("NW_TEST_SOCKS", urls[proxy])
    output, store = _crawl(news_site, tmp_path, "INFO", proxy_env="NW_TEST_SOCKS")

    failed = [line for line in output.splitlines() if "source world: feed" in line]
    assert failed, output[-3000:]
    assert re.search(expected, failed[0]), failed[0]
    assert not store.articles()
    assert not news_site.requests  # nothing reached the site past the proxy
    assert "Traceback" not in output
    assert PASSWORD not in output


def test_sources_doctor_fetches_through_the_socks_proxy(
    news_site: NewsSite,
    socks_proxy: Socks5Proxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NW_TEST_SOCKS", socks_proxy.url(USER, PASSWORD))
    source = {"name": "world", "feed": news_site.url("world/rss.xml"), "proxy_env": "NW_TEST_SOCKS"}
    config = load_config(
        write_config(tmp_path, **site_config(news_site, tmp_path, sources=[source]))
    )
    steps = {step.name: step for step in diagnose(config.sources[0], config)}
    assert steps["Fetch"].result == "ok", steps
    assert steps["Parse"].detail.startswith("rss with")
    assert steps["Article"].result in ("ok", "warn")
    assert len(socks_proxy.connects) >= 3  # robots.txt, the feed, an article
    assert all(PASSWORD not in step.detail for step in steps.values())

    monkeypatch.setenv("NW_TEST_SOCKS", socks_proxy.url(USER, "wrong"))
    steps = {step.name: step for step in diagnose(config.sources[0], config)}
    assert steps["Fetch"].result == "failed"
    assert re.search(r"refused the user name and password", steps["Fetch"].detail)


@pytest.mark.parametrize(
    ("source", "top", "expected"),
    [
        pytest.param(
            {"proxy": f"socks5://me:{PASSWORD}@127.0.0.1:1080"},
            {},
            r"sources\[0\]\.proxy \(line \d+\): the proxy URL holds a password .*proxy_env",
            id="password-in-the-file",
        ),
        pytest.param(
            {"proxy": "socks4://127.0.0.1:1080"},
            {},
            r"sources\[0\]\.proxy \(line \d+\): socks4 proxies are not supported",
            id="socks4",
        ),
        pytest.param(
            {"proxy_env": "NW_TEST_SOCKS", "render": "browser"},
            {},
            r"sources\[0\]\.render \(line \d+\): source members: Chromium, which renders "
            r"its pages, cannot log in to a SOCKS proxy",
            id="browser-and-socks-login",
        ),
        pytest.param(
            {"render": "browser"},
            {"domains": {"news.example.com": {"proxy_env": "NW_TEST_SOCKS"}}},
            r"sources\[0\]\.render \(line \d+\): source members: Chromium.* cannot log in "
            r"to a SOCKS proxy",
            id="browser-and-the-host-s-socks-login",
        ),
    ],
)
def test_socks_settings_that_cannot_work_are_config_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: dict[str, Any],
    top: dict[str, Any],
    expected: str,
) -> None:
    monkeypatch.setenv("NW_TEST_SOCKS", f"socks5://me:{PASSWORD}@127.0.0.1:1080")
    listing = {"name": "members", "listing": "https://news.example.com/", "links": "a"}
    message = config_error(tmp_path, {**listing, **source}, **top)
    assert re.search(expected, message), message
    assert PASSWORD not in message


def test_the_browser_gets_a_socks_proxy_chromium_knows(tmp_path: Path) -> None:
    """Chromium knows socks5:// (it sends the site's name to the proxy), not socks5h://."""
    access = SiteAccess(origin=None, proxy="socks5h://127.0.0.1:1080")
    assert context_options(access)["proxy"] == {"server": "socks5://127.0.0.1:1080"}


def test_a_scale_out_worker_sends_socks_requests_to_the_httpx_handler(
    news_site: NewsSite, tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path, **site_config(news_site, tmp_path)))
    assert cluster_settings(config, "w1")["DOWNLOAD_HANDLERS"] == SOCKS_HANDLERS
