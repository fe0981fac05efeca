"""Sources whose section pages are built by JavaScript, rendered in the system's Chromium.

The fixture section page holds no article link: its script fetches a JSON file
from the same server and writes the links into the page, as many news sites'
front ends do. Polls run as a user runs them (``newswatch crawl``), with the same
Chromium the browser tests use.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from conftest import CHROMIUM, run_newswatch, site_config, write_config
from newssite import NewsSite, Reply, SeenRequest

from crawler.domain.config import ConfigError, load_config
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

ARTICLES = ["articles/cup-final.html", "articles/palmyra-museum.html"]

SCRIPT_BUILT_SECTION = b"""<!doctype html>
<html><head><title>World</title></head>
<body>
  <header><a href="/">Home</a></header>
  <img src="/js/banner.jpg" alt="">
  <main id="root"></main>
  <script>
    fetch("/js/stories.json")
      .then((response) => response.json())
      .then((stories) => {
        const list = document.createElement("ul");
        list.className = "stories";
        for (const story of stories) {
          const item = document.createElement("li");
          const link = document.createElement("a");
          link.href = story.url;
          link.textContent = story.title;
          item.append(link);
          list.append(item);
        }
        document.getElementById("root").append(list);
      });
  </script>
</body></html>
"""

NEVER_LOADS = b"""<!doctype html>
<html><head><title>Slow</title></head>
<body>
  <p>The page's script never arrives.</p>
  <script src="/slow/never.js"></script>
  <ul class="stories"><li><a href="/articles/cup-final.html">Cup final</a></li></ul>
</body></html>
"""

NEVER_LETS_GO = b"""<!doctype html>
<html><head><title>Busy</title></head>
<body>
  <ul class="stories"><li><a href="/articles/cup-final.html">Cup final</a></li></ul>
  <script>while (true) {}</script>
</body></html>
"""

PAPERS = b"""<!doctype html>
<html><head><title>Papers</title></head>
<body><ul class="stories">
  <li><a href="/papers/report.pdf">The annual report</a></li>
  <li><a href="/articles/cup-final.html">Cup final</a></li>
</ul></body></html>
"""

SCRIPT_WRITTEN_ARTICLE = b"""<!doctype html>
<html lang="en"><head><title>Dam talks resume on the Mekong</title>
<meta property="article:published_time" content="2024-02-14T09:00:00+00:00"></head>
<body><article><h1>Dam talks resume on the Mekong</h1><div id="body"></div></article>
<script>
  const paragraphs = [
    "Negotiators from four countries met in Vientiane on Wednesday to resume talks on the "
    + "operation of hydropower dams along the Mekong river, after a dry season that left "
    + "fishing communities downstream with record low water levels.",
    "The meeting, the first in eighteen months, was called after farmers in the delta "
    + "reported salt water reaching rice fields forty kilometres inland, officials said.",
    "Delegates agreed to share daily water level readings from every dam on the main stream "
    + "and to meet again before the monsoon, according to a joint statement.",
  ];
  document.getElementById("body").innerHTML =
    paragraphs.map((text) => "<p>" + text + "</p>").join("");
</script></body></html>
"""


@pytest.fixture
def other_site() -> Iterator[NewsSite]:
    """Another host: 127.0.0.2, a loopback address fetch_policy can deny alone."""
    site = NewsSite(host="127.0.0.2").start()
    yield site
    site.stop()


def _serve_section(site: NewsSite, delay: float = 0.3) -> None:
    stories = [{"url": site.url(path), "title": path.rsplit("/", 1)[1]} for path in ARTICLES]
    site.set_content("js/index.html", SCRIPT_BUILT_SECTION, "text/html; charset=utf-8")
    # The data arrives a moment after the page: the page is read once the links are there.
    site.script("js/stories.json", [Reply(delay=delay)])
    site.set_content("js/stories.json", json.dumps(stories).encode(), "application/json")
    site.set_content("js/banner.jpg", b"\xff\xd8\xff\xe0 not really a picture", "image/jpeg")


def _listing(site: NewsSite, name: str = "world", **extra: Any) -> dict[str, Any]:
    return {"name": name, "listing": site.url("js/"), "links": "ul.stories a", **extra}


def _crawl(
    site: NewsSite, folder: Path, sources: list[dict[str, Any]], **settings: Any
) -> tuple[subprocess.CompletedProcess[str], Store]:
    config = write_config(folder, **site_config(site, folder, sources=sources, **settings))
    result = run_newswatch(config, "crawl")
    return result, Store.from_url(load_config(config).database)


def _header_names(seen: SeenRequest) -> set[str]:
    return {name.lower() for name in seen.headers}


T = TypeVar("T")


def _in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a loop of its own, in a thread of its own: a test run may
    hold a running loop in this thread (the asyncio reactor of an in-process test)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result(timeout=120)


def _stored(store: Store) -> set[str]:
    return {article.url.split("/", 3)[3] for article in store.articles()}


def test_a_script_built_section_page_is_read_in_the_browser(
    news_site: NewsSite, tmp_path: Path
) -> None:
    _serve_section(news_site)
    result, store = _crawl(news_site, tmp_path, [_listing(news_site, render="browser")])
    assert result.returncode == 0, result.stderr
    assert _stored(store) == set(ARTICLES)
    # The page and its data went through the browser, the articles through Scrapy;
    # the picture was never asked for.
    assert news_site.requests_for("js/stories.json")
    assert not news_site.requests_for("js/banner.jpg")
    page = {name.lower(): value for name, value in news_site.requests_for("js/")[0].headers.items()}
    assert page["user-agent"].startswith("newswatch/")
    # robots.txt was asked for first, as for any other page.
    assert news_site.paths_requested().index("/robots.txt") < news_site.paths_requested().index(
        "/js/"
    )


def test_without_the_browser_the_same_page_has_no_links(
    news_site: NewsSite, tmp_path: Path
) -> None:
    _serve_section(news_site)
    result, store = _crawl(news_site, tmp_path, [_listing(news_site)])
    assert result.returncode == 0, result.stderr
    assert _stored(store) == set()
    assert not news_site.requests_for("js/stories.json")
    assert "no links match 'ul.stories a'" in result.stderr
    assert "the page looks built by JavaScript" in result.stderr
    assert "try render: browser" in result.stderr

    doctor = run_newswatch(tmp_path / "config.yaml", "sources", "doctor", "world")
    assert "looks built by JavaScript" in doctor.stdout + doctor.stderr


def test_a_page_that_never_finishes_loading_is_cut_and_the_rest_goes_on(
    news_site: NewsSite, tmp_path: Path
) -> None:
    _serve_section(news_site)
    news_site.set_content("slow/index.html", NEVER_LOADS, "text/html; charset=utf-8")
    news_site.script("slow/never.js", [Reply(delay=60)])
    sources = [
        {"name": "slow", "listing": news_site.url("slow/"), "links": "ul.stories a"},
        _listing(news_site),
        {"name": "feed", "feed": news_site.url("world/rss.xml")},
    ]
    sources[0]["render"] = sources[1]["render"] = "browser"
    started = time.monotonic()
    result, store = _crawl(news_site, tmp_path, sources, browser={"page_timeout": "2s"})
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "was still loading after 2s (browser.page_timeout)" in result.stderr
    # The other sources were polled and stored all the same, well within the
    # never-ending script's minute.
    assert set(ARTICLES) <= _stored(store)
    assert "articles/army-pressures-isis.html" in _stored(store)
    assert elapsed < 45
    # Both rendered sources used the one browser the crawl started.
    assert result.stderr.count("browser started") == 1, result.stderr


def test_a_page_that_never_lets_go_or_never_answers_is_given_up_in_one_line(
    news_site: NewsSite, tmp_path: Path
) -> None:
    # A script that never yields holds the page's main thread: the page cannot even
    # be read. A server that never answers holds the navigation.
    news_site.set_content("busy/index.html", NEVER_LETS_GO, "text/html; charset=utf-8")
    news_site.script("silent/", [Reply(delay=120)])
    sources = [
        {"name": "busy", "listing": news_site.url("busy/"), "links": "ul.stories a"},
        {"name": "silent", "listing": news_site.url("silent/"), "links": "ul.stories a"},
        {"name": "feed", "feed": news_site.url("world/rss.xml")},
    ]
    sources[0]["render"] = sources[1]["render"] = "browser"
    result, store = _crawl(news_site, tmp_path, sources, browser={"page_timeout": "2s"})
    assert result.returncode == 1, result.stderr
    assert "busy: FAILED: browser: the page was still busy after 16s" in result.stdout
    assert "silent: FAILED: browser: Page.goto: Timeout 2000ms exceeded." in result.stdout
    assert "feed: 3 links, 3 new: 3 stored" in result.stdout
    assert "Traceback" not in result.stderr
    assert "articles/army-pressures-isis.html" in _stored(store)


def test_an_error_page_is_not_waited_for_and_a_rendered_pdf_is_no_article(
    news_site: NewsSite, tmp_path: Path
) -> None:
    news_site.set_content("papers/index.html", PAPERS, "text/html; charset=utf-8")
    news_site.set_content("papers/report.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")
    sources = [
        {"name": "gone", "listing": news_site.url("status/404"), "links": "ul.stories a"},
        {"name": "papers", "listing": news_site.url("papers/"), "links": "ul.stories a"},
    ]
    sources[0]["render"] = sources[1]["render"] = "browser"
    sources[1]["render_articles"] = True
    started = time.monotonic()
    result, store = _crawl(news_site, tmp_path, sources, browser={"page_timeout": "90s"})
    assert "gone: FAILED: HTTP 404" in result.stdout, result.stderr
    # The 404 page never shows the links: waiting for them would take page_timeout.
    assert time.monotonic() - started < 90
    # Chromium shows a PDF in a page of its own: that page is not the article.
    assert "report.pdf skipped: not a text page (application/pdf)" in result.stderr
    assert _stored(store) == {"articles/cup-final.html"}


def test_article_pages_written_by_script_are_rendered_too(
    news_site: NewsSite, tmp_path: Path
) -> None:
    _serve_section(news_site)
    stories = [{"url": news_site.url("js/mekong.html"), "title": "Mekong"}]
    news_site.set_content("js/stories.json", json.dumps(stories).encode(), "application/json")
    news_site.set_content("js/mekong.html", SCRIPT_WRITTEN_ARTICLE, "text/html; charset=utf-8")
    result, store = _crawl(
        news_site, tmp_path, [_listing(news_site, render="browser", render_articles=True)]
    )
    assert result.returncode == 0, result.stderr
    (article,) = store.articles()
    assert article.title == "Dam talks resume on the Mekong"
    assert "salt water reaching rice fields" in article.body


def test_sources_add_renders_a_script_built_page_to_find_its_links(
    news_site: NewsSite, tmp_path: Path
) -> None:
    _serve_section(news_site)
    stories = [
        {"url": news_site.url(f"articles/{page}"), "title": title}
        for page, title in [
            ("cup-final.html", "Cup final ends in a penalty shoot-out after extra time"),
            ("palmyra-museum.html", "Palmyra museum reopens its doors to visitors"),
            ("army-pressures-isis.html", "Army presses on towards the old city at dawn"),
            ("memory-crisis.html", "Memory chip makers warn of a shortage this year"),
        ]
    ]
    news_site.set_content("js/stories.json", json.dumps(stories).encode(), "application/json")
    config = write_config(tmp_path, **site_config(news_site, tmp_path, sources=[]))
    added = run_newswatch(config, "sources", "add", news_site.url("js/"), "--yes")
    assert added.returncode == 0, added.stdout + added.stderr
    assert "as Chromium renders it" in added.stdout
    assert "`render: browser`" in added.stdout
    (source,) = load_config(config).sources
    assert (source.kind, source.render, source.links) == ("listing", "browser", "ul.stories a")

    crawled = run_newswatch(config, "crawl")
    assert crawled.returncode == 0, crawled.stderr
    store = Store.from_url(load_config(config).database)
    assert _stored(store) == {
        f"articles/{page}"
        for page in [
            "cup-final.html",
            "palmyra-museum.html",
            "army-pressures-isis.html",
            "memory-crisis.html",
        ]
    }


def test_a_cookie_gated_script_built_page_gets_its_cookie_in_the_browser(
    news_site: NewsSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_section(news_site)
    secret = "members-only-7f3c9a"
    served = news_site.respond

    def gated(raw_path: str, headers: dict[str, str]) -> Reply:
        # The page and the data its script fetches both want the member's cookie.
        cookie = {name.lower(): value for name, value in headers.items()}.get("cookie", "")
        if raw_path.startswith("/js/") and f"session={secret}" not in cookie:
            return Reply(403, b"members only", {"Content-Type": "text/plain"})
        return served(raw_path, headers)

    monkeypatch.setattr(news_site, "respond", gated)
    monkeypatch.setenv("NW_TEST_SESSION", f"session={secret}")
    source = _listing(news_site, render="browser", cookies_env="NW_TEST_SESSION")
    result, store = _crawl(news_site, tmp_path, [source])
    assert result.returncode == 0, result.stderr
    assert _stored(store) == set(ARTICLES)
    assert news_site.requests_for("js/stories.json")[-1].status == 200
    assert secret not in result.stderr + result.stdout


def test_render_browser_needs_a_listing_and_a_chromium(news_site: NewsSite, tmp_path: Path) -> None:
    feed = {"name": "feed", "feed": news_site.url("world/rss.xml"), "render": "browser"}
    config = write_config(tmp_path, **site_config(news_site, tmp_path, sources=[feed]))
    with pytest.raises(ConfigError, match="render: browser applies to listing sources"):
        load_config(config)

    settings = site_config(
        news_site,
        tmp_path,
        sources=[_listing(news_site, render="browser")],
        browser={"executable": str(tmp_path / "no-such-chromium")},
    )
    config = write_config(tmp_path, **settings)
    with pytest.raises(ConfigError, match=r"browser\.executable \(line \d+\).*not an executable"):
        load_config(config)


def test_a_service_without_browser_sources_never_imports_playwright(
    news_site: NewsSite, tmp_path: Path
) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    probe = (
        "import sys\n"
        "from crawler.faces.cli import main\n"
        f"code = main(['--config', {str(config)!r}, 'crawl'])\n"
        "print('playwright loaded' if 'playwright' in sys.modules else 'no playwright')\n"
        "sys.exit(code or 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "no playwright" in result.stdout
    assert Store.from_url(load_config(config).database).articles()


def test_the_browser_is_shared_bounded_and_closed_when_idle() -> None:
    from spiders.browser_host import BrowserHost
    from spiders.failures import BrowserBusyError
    from spiders.rendering import CHROMIUM_ARGS

    options = {"executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}

    async def scenario() -> list[str]:
        seen = []
        host = BrowserHost()
        host.configure(max_pages=2, idle_close=0.3)
        first = await host.lease(options)
        second = await host.lease(options)
        seen.append(f"one browser for two polls: {first is second}, {host.launches}")
        slots = [await host.page_slot(1.0), await host.page_slot(1.0)]
        try:
            await host.page_slot(0.2)
        except BrowserBusyError as busy:
            seen.append(str(busy))
        slots[0].release()
        slots[0].release()  # twice: still one place given back
        slots.append(await host.page_slot(0.2))
        host.release()
        await asyncio.sleep(0.5)
        seen.append(f"running with a poll still on it: {host.running}")
        host.release()
        await asyncio.sleep(0.8)
        seen.append(f"running after the idle time: {host.running}")
        await host.lease(options)
        seen.append(f"started again on need: {host.running}, {host.launches}")
        host.release()
        await host.close()
        return seen

    assert _in_own_loop(scenario()) == [
        "one browser for two polls: True, 1",
        "no browser page free within 0s: 2 pages were rendering (browser.max_pages)",
        "running with a poll still on it: True",
        "running after the idle time: False",
        "started again on need: True, 2",
    ]


# Chromium follows a redirect itself, without Playwright's route: the page's
# credentials must never be given to a request it goes on with.
def test_a_redirect_to_another_host_gets_no_credentials(
    news_site: NewsSite, other_site: NewsSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_section(other_site)
    news_site.script("moved/", [Reply(302, b"moved", {"Location": other_site.url("js/")})])
    monkeypatch.setenv("NW_TEST_KEY", "api-key-4242")
    listing = news_site.url("moved/").replace("http://", "http://reader:s3cret@")
    source = {
        "name": "world",
        "listing": listing,
        "links": "ul.stories a",
        "render": "browser",
        "headers_env": {"X-Api-Key": "NW_TEST_KEY"},
    }
    result, store = _crawl(news_site, tmp_path, [source])
    assert result.returncode == 0, result.stderr
    first = _header_names(news_site.requests_for("moved/")[0])
    assert {"authorization", "x-api-key"} <= first, result.stderr
    # The redirect was followed and the page read there, without the credentials.
    assert other_site.requests_for("js/"), result.stderr
    assert other_site.requests_for("js/stories.json")
    assert not [
        seen.path
        for seen in other_site.requests
        if {"authorization", "x-api-key"} & _header_names(seen)
    ]
    assert len(store.articles()) == len(ARTICLES)


def test_a_browser_source_cannot_be_held_to_a_fetch_policy(
    news_site: NewsSite, tmp_path: Path
) -> None:
    # Chromium follows redirects itself, to any address: the combination is refused.
    settings = site_config(
        news_site,
        tmp_path,
        sources=[_listing(news_site, render="browser")],
        fetch_policy={"deny_networks": ["10.0.0.0/8"]},
    )
    config = write_config(tmp_path, **settings)
    with pytest.raises(ConfigError, match=r"sources\[0\]\.render \(line \d+\): .*fetch_policy"):
        load_config(config)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Page.goto: net::ERR_NAME_NOT_RESOLVED at http://gone.example/", "dns"),
        ("Page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:9/", "connect"),
        ("Page.goto: net::ERR_CONNECTION_RESET at http://example.org/", "connect"),
        ("Page.goto: net::ERR_CERT_DATE_INVALID at https://example.org/", "tls"),
        ("Page.goto: net::ERR_CONNECTION_TIMED_OUT at http://example.org/", "timeout"),
        ("Page.goto: Target page, context or browser has been closed", "other"),
    ],
    ids=["dns", "refused", "reset", "certificate", "connect-timeout", "closed"],
)
def test_a_browser_failure_has_its_class_and_one_line(message: str, kind: str) -> None:
    from playwright.async_api import Error as PlaywrightError
    from twisted.python.failure import Failure

    from spiders.base import describe_failure
    from spiders.failures import classify_failure

    failure = Failure(PlaywrightError(message + "\nCall log:\n  - navigating"))
    assert classify_failure(failure) == (kind, None)
    assert describe_failure(failure) == f"browser: {message}"


def test_a_chromium_that_will_not_start_says_why_in_one_line(tmp_path: Path) -> None:
    from spiders.browser_host import BrowserHost
    from spiders.failures import BrowserLaunchError

    # A Chromium that was there when the configuration was read, broken since
    # (an upgrade half done): it starts, complains and exits.
    broken = tmp_path / "chromium"
    broken.write_text(
        "#!/bin/sh\necho 'error while loading shared libraries: libnss3.so' >&2\nexit 127\n"
    )
    broken.chmod(0o755)

    async def scenario() -> tuple[str, bool]:
        host = BrowserHost()
        host.configure(max_pages=1, idle_close=1.0)
        try:
            await host.lease({"executable_path": str(broken), "headless": True})
        except BrowserLaunchError as error:
            return str(error), host.running
        return "started", host.running

    message, running = _in_own_loop(scenario())
    assert message == (
        f"browser: {broken} could not be started: "
        "error while loading shared libraries: libnss3.so (exit code 127)"
    )
    assert not running


def test_sources_add_gives_up_a_page_whose_scripts_never_let_go(
    news_site: NewsSite, tmp_path: Path
) -> None:
    page = b'<!doctype html><html><body><div id="root"></div><script>while (true) {}</script>'
    news_site.set_content("busy/index.html", page, "text/html; charset=utf-8")
    config = write_config(tmp_path, **site_config(news_site, tmp_path, sources=[]))
    added = run_newswatch(config, "sources", "add", news_site.url("busy/"), "--yes")
    assert added.returncode == 1, added.stdout + added.stderr
    assert "could not be rendered in Chromium: browser: the page was still busy" in added.stderr
    assert "Traceback" not in added.stderr
    assert load_config(config).sources == []
