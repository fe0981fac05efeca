"""Every kind of source against the fixture site, polled politely and cheaply."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from conftest import run_newswatch, site_config, write_config
from newssite import Reply
from scrapy.http import HtmlResponse

from crawler.domain.config import load_config
from crawler.storage.store import Store
from spiders.middlewares import has_meta_refresh

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from newssite import NewsSite


def _crawl(
    site: NewsSite, folder: Path, sources: list[dict[str, Any]], **settings: Any
) -> tuple[subprocess.CompletedProcess[str], Store]:
    config = folder / "config.yaml"
    if not config.exists():
        write_config(folder, **site_config(site, folder, sources=sources, **settings))
    result = run_newswatch(config, "crawl")
    return result, Store.from_url(load_config(config).database)


def _stored_pages(store: Store) -> set[str]:
    return {article.url.rsplit("/", 1)[1] for article in store.articles()}


def _article_fetches(site: NewsSite, since: int = 0) -> list[str]:
    return [seen.path for seen in site.requests[since:] if "/articles/" in seen.path]


# -- each kind of source ----------------------------------------------------------


def test_site_source_discovers_and_remembers_its_feed(news_site: NewsSite, tmp_path: Path) -> None:
    sources = [{"name": "fixture", "site": news_site.url("/")}]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert _stored_pages(store) == {
        "army-pressures-isis.html",
        "palmyra-museum.html",
        "cup-final.html",
    }
    assert store.fetch_state("fixture").discovered_url == news_site.url("world/rss.xml")

    homepage_fetches = len(news_site.requests_for("/"))
    again, _ = _crawl(news_site, tmp_path, sources)
    assert again.returncode == 0, again.stderr
    assert len(news_site.requests_for("/")) == homepage_fetches  # the feed was remembered
    assert news_site.requests_for("world/rss.xml")[-1].status == 304


def test_site_source_looks_again_when_the_remembered_feed_is_gone(
    news_site: NewsSite, tmp_path: Path
) -> None:
    sources = [{"name": "fixture", "site": news_site.url("/")}]
    _crawl(news_site, tmp_path, sources)
    news_site.script("world/rss.xml", [Reply(410)])
    news_site.set_content(
        "index.html",
        (
            b'<html><head><link rel="alternate" type="application/atom+xml" '
            b'href="/tech/atom.xml"></head><body>moved</body></html>'
        ),
        "text/html",
    )
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert store.fetch_state("fixture").discovered_url == news_site.url("tech/atom.xml")
    assert {"memory-crisis.html", "satellite-palmyra.html"} <= _stored_pages(store)


def test_site_without_a_feed_is_a_clear_failure(news_site: NewsSite, tmp_path: Path) -> None:
    sources = [{"name": "nofeed", "site": news_site.url("sections/world.html")}]
    result, _ = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 1
    assert "no feed announced on the page" in result.stderr


def test_google_news_sitemap_follows_recent_entries_only(
    news_site: NewsSite, tmp_path: Path
) -> None:
    sources = [
        {"name": "news-sitemap", "sitemap": news_site.url("sitemaps/news.xml"), "max_age": "2d"}
    ]
    result, store = _crawl(news_site, tmp_path, sources, concurrent_requests_per_domain=1)
    assert result.returncode == 0, result.stderr
    assert _stored_pages(store) == {"palmyra-museum.html", "satellite-palmyra.html"}
    # Newest first: the 10-minute-old entry before the 2-hour-old one.
    assert _article_fetches(news_site) == [
        "/articles/satellite-palmyra.html",
        "/articles/palmyra-museum.html",
    ]


def test_sitemap_index_reads_recent_children_and_obeys_robots(
    news_site: NewsSite, tmp_path: Path
) -> None:
    sources = [{"name": "index", "sitemap": news_site.url("sitemaps/index.xml")}]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert _stored_pages(store) == {"memory-crisis.html"}
    assert news_site.requests_for("sitemaps/archive-2019.xml") == []  # outside max_age
    assert news_site.requests_for("private/draft.html") == []  # robots.txt Disallow
    assert "private/draft.html failed: Forbidden by robots.txt" in result.stderr


def test_listing_with_pagination(news_site: NewsSite, tmp_path: Path) -> None:
    sources = [
        {
            "name": "world-section",
            "listing": news_site.url("sections/world.html"),
            "links": "article.teaser h2 a",
            "pages": 2,
        }
    ]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert _stored_pages(store) == {
        "palmyra-museum.html",
        "army-pressures-isis.html",
        "cup-final.html",
    }
    assert news_site.requests_for("sections/world-3.html") == []  # beyond `pages`
    assert news_site.requests_for("subscribe.html") == []  # not matched by `links`
    assert "ref=" not in "".join(a.url for a in store.articles())


def test_listing_with_xpath_and_deny_pattern(news_site: NewsSite, tmp_path: Path) -> None:
    sources = [
        {
            "name": "world-section",
            "listing": news_site.url("sections/world.html"),
            "links": "//article//h2",
            "pages": 3,
            "deny": ["cup-final"],
        }
    ]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert _stored_pages(store) == {
        "palmyra-museum.html",
        "army-pressures-isis.html",
        "memory-crisis.html",
    }


def test_a_listing_of_a_page_built_by_javascript_says_so(
    news_site: NewsSite, tmp_path: Path
) -> None:
    sources = [{"name": "app", "listing": news_site.url("app/"), "links": "h3 a"}]
    result, store = _crawl(news_site, tmp_path, sources)
    assert store.count_articles() == 0
    assert (
        f"source app: no links match 'h3 a' on {news_site.url('app/')}; the page looks built "
        'by JavaScript (an empty <div id="root">, <noscript> asks for JavaScript): try '
        "render: browser" in result.stderr
    )


def test_allow_pattern_limits_a_feed(news_site: NewsSite, tmp_path: Path) -> None:
    sources = [{"name": "world", "feed": news_site.url("world/rss.xml"), "allow": ["palmyra"]}]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert _stored_pages(store) == {"palmyra-museum.html"}


# -- cheap re-polls -------------------------------------------------------------------


def test_unchanged_sources_cost_one_304_and_nothing_else(
    news_site: NewsSite, tmp_path: Path
) -> None:
    sources = [
        {"name": "feed", "feed": news_site.url("world/rss.xml")},
        {"name": "sitemap", "sitemap": news_site.url("sitemaps/news.xml")},
        {
            "name": "listing",
            "listing": news_site.url("sections/world.html"),
            "links": "article h2 a",
        },
    ]
    first, store = _crawl(news_site, tmp_path, sources)
    assert first.returncode == 0, first.stderr
    stored = store.count_articles()
    seen = len(news_site.requests)

    second, _ = _crawl(news_site, tmp_path, sources)
    assert second.returncode == 0, second.stderr
    polls = news_site.requests[seen:]  # robots.txt too is not fetched again within a day
    assert sorted(s.path for s in polls) == [
        "/sections/world.html",
        "/sitemaps/news.xml",
        "/world/rss.xml",
    ]
    assert all(s.status == 304 for s in polls)
    assert all("If-None-Match" in s.headers for s in polls)
    assert store.count_articles() == stored
    assert second.stdout.count("not modified (304)") == 3


def test_a_changed_feed_is_read_again(news_site: NewsSite, tmp_path: Path) -> None:
    sources = [{"name": "tech", "feed": news_site.url("tech/atom.xml")}]
    _crawl(news_site, tmp_path, sources)
    atom = news_site.file("tech/atom.xml").read_bytes()
    extra = (
        b"<entry><title>Palmyra museum reopens</title>"
        b'<link href="{base}/articles/palmyra-museum.html"/><id>urn:x:3</id>'
        b"<updated>2024-02-15T08:00:00Z</updated></entry></feed>"
    )
    news_site.set_content("tech/atom.xml", atom.replace(b"</feed>", extra))
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert news_site.requests_for("tech/atom.xml")[-1].status == 200
    assert "palmyra-museum.html" in _stored_pages(store)
    assert _article_fetches(news_site).count("/articles/palmyra-museum.html") == 1


def test_server_without_validators_costs_one_fetch_and_a_hash(
    news_site: NewsSite, tmp_path: Path
) -> None:
    news_site.validators = False
    sources = [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    _crawl(news_site, tmp_path, sources)
    seen = len(news_site.requests)
    result, _ = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    paths = [s.path for s in news_site.requests[seen:]]
    assert paths == ["/world/rss.xml"]
    assert "world: unchanged" in result.stdout


def test_failed_article_is_fetched_again_even_if_the_feed_is_unchanged(
    news_site: NewsSite, tmp_path: Path
) -> None:
    sources = [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    news_site.script("articles/cup-final.html", [Reply(404)])
    _, store = _crawl(news_site, tmp_path, sources)
    assert "cup-final.html" not in _stored_pages(store)
    news_site.script("articles/cup-final.html", [Reply(200)])
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert "cup-final.html" in _stored_pages(store)


# -- politeness and failures ------------------------------------------------------


def test_robots_txt_disallowed_feed_is_not_fetched(news_site: NewsSite, tmp_path: Path) -> None:
    sources = [
        {"name": "private", "feed": news_site.url("private/feed.xml")},
        {"name": "tech", "feed": news_site.url("tech/atom.xml")},
    ]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 1
    assert news_site.requests_for("private/feed.xml") == []
    assert "source private: feed" in result.stderr
    assert "Forbidden by robots.txt" in result.stderr
    assert _stored_pages(store) == {"memory-crisis.html", "satellite-palmyra.html"}


def test_robots_txt_is_fetched_once_a_day(news_site: NewsSite, tmp_path: Path) -> None:
    news_site.set_content("robots.txt", b"User-agent: *\nDisallow: /tech/\n", "text/plain")
    sources = [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    _, store = _crawl(news_site, tmp_path, sources)
    assert len(news_site.requests_for("robots.txt")) == 1
    origin = news_site.url("/").rstrip("/")
    cached = store.robots_txt(origin)
    assert cached is not None
    assert b"Disallow: /tech/" in cached[0]

    _crawl(news_site, tmp_path, sources)
    assert len(news_site.requests_for("robots.txt")) == 1  # the stored copy was used

    # A day later the copy is stale: fetched again, and the new rules apply.
    store.save_robots_txt(origin, cached[0], cached[1] - timedelta(hours=25))
    news_site.set_content("robots.txt", b"User-agent: *\nDisallow: /world/\n", "text/plain")
    news_site.set_content("world/rss.xml", news_site.file("world/rss.xml").read_bytes() + b"\n")
    result, _ = _crawl(news_site, tmp_path, sources)
    assert len(news_site.requests_for("robots.txt")) == 2
    assert "Forbidden by robots.txt" in result.stderr


def test_crawl_delay_spaces_requests(news_site: NewsSite, tmp_path: Path) -> None:
    news_site.set_content("robots.txt", b"User-agent: *\nCrawl-delay: 1\n", "text/plain")
    sources = [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    result, _ = _crawl(news_site, tmp_path, sources, concurrent_requests_per_domain=4)
    assert result.returncode == 0, result.stderr
    times = [s.at for s in news_site.requests if s.path != "/robots.txt"]
    assert len(times) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.9


def test_429_with_retry_after_is_waited_out(news_site: NewsSite, tmp_path: Path) -> None:
    news_site.script(
        "articles/palmyra-museum.html", [Reply(429, headers={"Retry-After": "2"}), Reply(200)]
    )
    sources = [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    tries = news_site.requests_for("articles/palmyra-museum.html")
    assert [t.status for t in tries] == [429, 200]
    assert tries[1].at - tries[0].at >= 1.9
    assert "palmyra-museum.html" in _stored_pages(store)


def test_long_retry_after_fails_the_poll_and_backs_off(news_site: NewsSite, tmp_path: Path) -> None:
    news_site.script("world/rss.xml", [Reply(503, headers={"Retry-After": "7200"})])
    sources = [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 1
    assert len(news_site.requests_for("world/rss.xml")) == 1  # no immediate retries
    assert "HTTP 503 (Retry-After 7200s)" in result.stderr
    assert store.source_state("world").consecutive_failures == 1


def test_503_then_200_is_retried(news_site: NewsSite, tmp_path: Path) -> None:
    news_site.script("world/rss.xml", [Reply(503), Reply(200)])
    sources = [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert [r.status for r in news_site.requests_for("world/rss.xml")] == [503, 200]
    assert len(_stored_pages(store)) == 3


def test_a_slow_server_times_out_and_the_rest_goes_on(news_site: NewsSite, tmp_path: Path) -> None:
    news_site.script("world/rss.xml", [Reply(200, delay=30)])
    sources = [
        {"name": "slow", "feed": news_site.url("world/rss.xml")},
        {"name": "tech", "feed": news_site.url("tech/atom.xml")},
    ]
    result, store = _crawl(news_site, tmp_path, sources, download_timeout="2s")
    # The timeout fired (the server would have answered after 30 s): no wall-clock
    # assert here, the log line says it.
    assert result.returncode == 1
    assert "source slow: feed" in result.stderr
    assert "timed out" in result.stderr
    assert _stored_pages(store) == {"memory-crisis.html", "satellite-palmyra.html"}


def _serve_feed(news_site: NewsSite, path: str, items: list[tuple[str, str]]) -> str:
    """Serve an RSS feed of (title, link) items at ``path``; return its URL."""
    entries = "".join(
        f"<item><title>{title}</title><link>{link}</link></item>" for title, link in items
    )
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Links</title>'
        f"{entries}</channel></rss>"
    )
    news_site.set_content(path, feed.encode(), "application/rss+xml")
    return news_site.url(path)


def test_redirect_to_the_canonical_url_is_stored_once(news_site: NewsSite, tmp_path: Path) -> None:
    canonical = news_site.url("articles/palmyra-museum.html")
    news_site.script("go/palmyra", [Reply(301, headers={"Location": canonical})])
    feed = _serve_feed(
        news_site,
        "short/rss.xml",
        [
            ("Palmyra", news_site.url("go/palmyra")),
            ("Palmyra again", f"{canonical}?utm_source=x"),
        ],
    )
    sources = [{"name": "short", "feed": feed}]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert [a.url for a in store.articles()] == [canonical]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'<meta http-equiv="refresh" content="5; url=/next">', True),
        (b"<META HTTP-EQUIV='Refresh' CONTENT='0;URL=https://example.org/a'>", True),
        (b'<noscript><meta http-equiv="refresh" content="0; url=/js"></noscript>', False),
        (b'<meta http-equiv="refresh" content="30">', False),  # reloads itself: no URL
        (b'<meta name="description" content="url=/not-a-refresh">', False),
    ],
)
def test_the_head_of_a_page_tells_whether_it_refreshes(head: bytes, expected: bool) -> None:
    response = HtmlResponse(
        "https://example.org/page",
        body=b"<html><head>" + head + b"</head><body>" + "é".encode() * 5000 + b"</body></html>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    assert has_meta_refresh(response, ["script", "noscript"]) is expected


def test_a_meta_refresh_page_leads_to_the_article(news_site: NewsSite, tmp_path: Path) -> None:
    # A moved story's old address often answers 200 with a refresh tag in its head;
    # the tag is read from the first bytes only (spiders.middlewares), so one past
    # them is ignored, as Scrapy would.
    canonical = news_site.url("articles/palmyra-museum.html")
    moved = (
        b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Moved</title>'
        b'<meta http-equiv="refresh" content="0; url=/articles/palmyra-museum.html">'
        b"</head><body><p>This story has moved.</p></body></html>"
    )
    late = (
        "<!DOCTYPE html><html><head><title>Late tag</title>"
        + "<!-- padding -->" * 400
        + '<meta http-equiv="refresh" content="0; url=/articles/cup-final.html">'
        "</head><body><p>Too late a tag to count.</p></body></html>"
    ).encode()
    news_site.set_content("old/palmyra.html", moved, "text/html; charset=utf-8")
    news_site.set_content("old/late.html", late, "text/html; charset=utf-8")
    feed = _serve_feed(
        news_site,
        "old/rss.xml",
        [
            ("Palmyra", news_site.url("old/palmyra.html")),
            ("Late", news_site.url("old/late.html")),
        ],
    )
    sources = [{"name": "old", "feed": feed}]
    result, store = _crawl(news_site, tmp_path, sources)
    assert result.returncode == 0, result.stderr
    assert sorted(a.url for a in store.articles()) == sorted(
        [canonical, news_site.url("old/late.html")]
    )
