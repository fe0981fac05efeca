"""`newswatch sources doctor NAME` on the fixture site on loopback: each step of a
diagnostic poll says what it saw, and the first step that fails is named."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conftest import run_newswatch, write_config
from newssite import NewsSite, Reply

if TYPE_CHECKING:
    from pathlib import Path


def _doctor(tmp_path: Path, name: str, sources: list[dict[str, str]]) -> tuple[int, list[str]]:
    config = write_config(
        tmp_path, sources=sources, user_agent_contact="https://example.org/newswatch-tests"
    )
    result = run_newswatch(config, "sources", "doctor", name)
    assert not result.stderr.strip(), result.stderr  # no traceback, nothing on stderr
    return result.returncode, result.stdout.splitlines()


def test_a_healthy_feed_passes_every_step(news_site: NewsSite, tmp_path: Path) -> None:
    code, lines = _doctor(
        tmp_path, "world", [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    )
    assert code == 0, lines
    steps = [line.split("]", 1)[1].split(":", 1)[0].strip() for line in lines[1:-1]]
    assert steps == ["DNS", "robots.txt", "Fetch", "Parse", "Article"]
    assert all(line.startswith("  [ok  ]") for line in lines[1:-1]), lines
    assert "rss with 3 entries, newest 2024-02-12 08:30 UTC" in lines[4]
    assert '"Army pressures ISIS in central Syria"' in lines[5]
    assert "characters of body, published 2016-03-30 01:46 UTC, language en" in lines[5]
    assert news_site.requests_for("robots.txt")


def test_the_failing_step_is_named(news_site: NewsSite, tmp_path: Path) -> None:
    sources = [
        {"name": "world", "feed": news_site.url("world/rss.xml")},
        {"name": "closed", "feed": "http://127.0.0.1:9/feed.xml"},
        {"name": "page", "feed": news_site.url("index.html")},
    ]
    news_site.script("world/rss.xml", [Reply(403, body=b"<html>Forbidden</html>")])
    code, lines = _doctor(tmp_path, "world", sources)
    assert code == 1
    assert "[FAIL] Fetch: HTTP 403: the site refuses newswatch (blocked)" in lines[3]
    assert len(lines) == 5  # nothing after the fetch that failed

    code, lines = _doctor(tmp_path, "closed", sources)
    assert code == 1
    assert "[FAIL] Fetch: cannot connect" in "\n".join(lines)

    news_site.set_content(
        "index.html",
        b'<html><head><link rel="alternate" type="application/atom+xml" '
        b'href="/tech/atom.xml"></head><body>a page</body></html>',
        "text/html",
    )
    code, lines = _doctor(tmp_path, "page", sources)
    assert code == 1
    parse = next(line for line in lines if "Parse" in line)
    assert "[FAIL] Parse: not a feed" in parse
    assert f"the page advertises: {news_site.url('tech/atom.xml')}" in parse

    news_site.script(
        "world/rss.xml", [Reply(301, headers={"Location": news_site.url("tech/atom.xml")})]
    )
    code, lines = _doctor(tmp_path, "world", sources)
    fetch = next(line for line in lines if "Fetch" in line)
    assert "[WARN] Fetch: HTTP 200 after a permanent redirect" in fetch
    assert f"update the source's URL to {news_site.url('tech/atom.xml')}" in fetch

    code, lines = _doctor(tmp_path, "nope", sources)
    assert code == 2
    assert lines == [
        "newswatch: no source 'nope' in the configuration (sources: world, closed, page)"
    ]


def test_a_listing_source_is_read_with_its_selector(news_site: NewsSite, tmp_path: Path) -> None:
    page = news_site.url("latest/")
    sources = [
        {"name": "latest", "listing": page, "links": "h3 a"},
        {"name": "stale", "listing": page, "links": "div.headlines a"},
        {"name": "app", "listing": news_site.url("app/"), "links": "h3 a"},
    ]
    code, lines = _doctor(tmp_path, "latest", sources)
    assert code == 0, lines
    assert "[ok  ] Parse: an HTML page; 4 article links match 'h3 a'" in lines[4]
    assert lines[5].startswith(
        f"  [ok  ] Article: {news_site.url('articles/satellite-palmyra.html')}: "
        '"Satellite images show damage'
    )

    code, lines = _doctor(tmp_path, "stale", sources)
    assert code == 1
    assert lines[4] == (
        "  [FAIL] Parse: an HTML page; no links match 'div.headlines a'; the page's article "
        "links look like `links: h3 a` (4 links)"
    )

    code, lines = _doctor(tmp_path, "app", sources)
    assert code == 1
    assert lines[4] == (
        "  [FAIL] Parse: an HTML page; no links match 'h3 a': the page looks built by "
        'JavaScript (an empty <div id="root">, <noscript> asks for JavaScript); try render: '
        "browser"
    )
