"""Untrusted text in the digest and the web UI: everything a web page or a feed says
is shown inert.

One service crawls a hostile page (a 10,000-character headline full of markup and
bidi overrides, a 10,000-character author and paragraph, a ``javascript:``
canonical link) next to articles stored with ``javascript:``, ``data:`` and
attribute-breaking URLs, under a rule whose name carries markup and header-like
text and a subject template that carries CRLF and header lines. Then the .eml it
writes and every page of its web UI must have: no script element, no
event-handler attribute, no link but http(s) or the UI's own, the markup shown as
text, no bidi control character, the long fields cut to their limits, and headers
that were never split.

(tests/test_render.py, tests/test_web.py and tests/test_browser.py check the pieces
and a browser's view; this is the whole path, from the web page to the reader.)
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import urllib.request
from typing import TYPE_CHECKING

import lxml.html
import pytest
from conftest import site_config, write_config
from newsroom import service_running, wait_for
from sqlalchemy import create_engine, text

from alerts.rules import RuleMatch
from crawler.domain.config import ConfigError, load_config
from crawler.domain.items import ExtractedArticle
from crawler.storage.store import ArticleRecord, Store

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

BIDI_CONTROLS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
MARKUP = '<script>alert("t")</script><img src=x onerror=alert(2)> "><b onmouseover="alert(3)">'
# Displays as "Palmyra exe.txt" in a bidi-unaware view if the override is kept.
SPOOF = "Palmyra \u202etxt.exe\u202c \u2066isolated\u2069 \u200fmark"
LONG_TITLE = f"{MARKUP} {SPOOF} " + "siege " * 1700  # about 10,000 characters
LONG_AUTHOR = '<b onmouseover="alert(4)">Mallory</b> ' + "mallory " * 1250
LONG_PARAGRAPH = "Palmyra " + "ruins " * 1700
# A rule name with a line break is refused at load (test below): this one carries
# markup and header-like text on its one line.
RULE = "syria Bcc: victim@example.org <b>rule</b>"
SUBJECT = "newswatch {count} new: {rules}\r\nX-Injected: yes"
WEB_UI_LINE = re.compile(r"web UI at http://127\.0\.0\.1:(\d+)/")
# Stored directly, as a compromised feed or a bug elsewhere might leave them.
BAD_URLS = {
    "javascript": "javascript:alert(5)",
    "data": "data:text/html,<script>alert(6)</script>",
    "quotes": 'https://evil.example/a"onmouseover="alert(7)',
}

PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(LONG_TITLE)}</title>
<meta property="og:title" content="{html.escape(LONG_TITLE)}">
<meta property="og:type" content="article">
<meta property="og:url" content="javascript:alert(8)">
<link rel="canonical" href="javascript:alert(9)">
<meta property="article:published_time" content="2024-02-13T08:00:00+00:00">
<meta name="author" content="{html.escape(LONG_AUTHOR)}">
</head><body><main><article>
<h1>{html.escape(LONG_TITLE)}</h1>
<p>Fighting resumed near Palmyra on Tuesday, {html.escape(MARKUP)} witnesses said, as
government forces pushed towards the ancient city {SPOOF} from the west.</p>
<p>The advance on Palmyra follows weeks of air strikes on positions held by the group in
the desert around the city, according to monitors who track the conflict closely.</p>
<p>{LONG_PARAGRAPH}</p>
</article></main></body></html>
""".encode()

FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Evil</title><link>{base}/</link>
<item><title>&lt;script&gt;alert("feed")&lt;/script&gt; Palmyra</title>
<link>{base}/untrusted/page.html?x=%22onmouseover%3D%22alert(10)</link>
<pubDate>Tue, 13 Feb 2024 08:00:00 GMT</pubDate></item>
<item><title>Palmyra javascript link</title><link>javascript:alert(11)</link></item>
</channel></rss>
"""


def _assert_inert(page: str, where: str) -> str:
    """The checks every HTML document must pass; returns its visible text."""
    document = lxml.html.document_fromstring(page)
    assert document.xpath("//script") == [], where
    assert document.xpath("//@*[starts-with(name(), 'on')]") == [], where
    assert document.xpath("//iframe | //object | //embed | //img[@onerror]") == [], where
    for link in document.xpath("//@href | //@src | //@action"):
        value = str(link).strip().lower()
        assert value.startswith(("http://", "https://", "/", "mailto:", "data:,")), (where, value)
    assert not set(BIDI_CONTROLS) & set(page), where
    text = document.text_content()
    assert text.count("siege") <= 60, where  # the 10,000-character title, cut to 300
    assert text.count("mallory") <= 60, where
    assert text.count("ruins") <= 60, where
    return text


def _fetch(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        assert response.status == 200, path
        return response.read().decode()


@pytest.mark.slow
def test_hostile_text_is_inert_in_the_digest_and_the_web_ui(
    news_site: NewsSite, tmp_path: Path
) -> None:
    news_site.set_content("untrusted/rss.xml", FEED, "application/rss+xml")
    news_site.set_content("untrusted/page.html", PAGE, "text/html; charset=utf-8")
    settings = site_config(news_site, tmp_path)
    source = f"evil\u202e outlet <b>{BIDI_CONTROLS}</b>"
    settings["sources"] = [{"name": source, "feed": news_site.url("untrusted/rss.xml")}]
    settings["rules"] = [{"name": RULE, "keywords": ["Palmyra"]}]
    settings["digest"] = {"schedule": "*/2 * * * * *", "subject": SUBJECT, "recipients": []}
    settings["recipients"] = [
        {"email": "ana@example.com"},
        {"email": "ben@example.com", "schedule": "0 7 1 1 *"},  # a preview, never sent
    ]
    config = write_config(tmp_path, **settings)
    store = Store.from_url(settings["database"])
    store.upgrade()
    store.sync_sources(load_config(config).sources)
    store.insert_articles(
        [
            (
                ArticleRecord(
                    source,
                    ExtractedArticle(
                        url=url,
                        title=f"Palmyra {name} link {MARKUP}",
                        text=f"Palmyra {name} {SPOOF}",
                    ),
                ),
                [RuleMatch(RULE, ("Palmyra",))],
            )
            for name, url in BAD_URLS.items()
        ]
    )
    store.close()

    log = tmp_path / "service.log"
    outbox = tmp_path / "outbox"

    def delivered() -> bool:
        engine = create_engine(settings["database"])
        with engine.connect() as connection:
            items = connection.execute(
                text("SELECT count(*) FROM delivery_items WHERE recipient = 'ana@example.com'")
            ).scalar()
            unsent = connection.execute(
                text("SELECT count(*) FROM deliveries WHERE sent_at IS NULL")
            ).scalar()
        engine.dispose()
        return items == len(BAD_URLS) + 1 and unsent == 0

    with service_running(config, log):
        wait_for(lambda: WEB_UI_LINE.search(log.read_text()), 60, "the web UI")
        port = int(WEB_UI_LINE.search(log.read_text()).group(1))  # type: ignore[union-attr]
        wait_for(delivered, 60, "the crawl and the digest")
        pages = {
            path: _fetch(port, path)
            for path in (
                "/",
                "/matches",
                "/digests",
                "/search?q=Palmyra",
                "/preview?recipient=ben%40example.com",
            )
        }

    # The digests as a mail client gets them.
    shown_in_digests = ""
    for eml in outbox.glob("*.eml"):
        raw = eml.read_bytes()
        headers = raw.partition(b"\n\n")[0]
        # One header per line (folded lines start with a space), none of them injected.
        assert all(re.match(rb"[A-Za-z-]+:( |$)|[ \t]", line) for line in headers.splitlines())
        assert b"\nBcc:" not in headers
        assert b"\nX-Injected:" not in headers
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["Bcc"] is None
        assert message["X-Injected"] is None
        subject = message["Subject"].strip()
        assert "\n" not in subject
        assert "\r" not in subject
        assert re.match(r"newswatch \d new: syria Bcc: victim@example.org", subject)
        digest_html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        digest_text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        shown_in_digests += _assert_inert(digest_html, eml.name)
        assert "&lt;script&gt;" in digest_html
        assert not set(BIDI_CONTROLS) & set(digest_text)
        assert digest_text.count("siege") <= 60
        assert "javascript:" not in digest_text.lower()
        assert "data:text" not in digest_text
        assert "\nBcc:" not in digest_text  # the rule's name stays on its line
    assert '<script>alert("t")</script>' in shown_in_digests  # the markup shown as text
    assert "siege siege" in shown_in_digests  # the long title, cut

    for path, page in pages.items():
        shown = _assert_inert(page, path)
        if path in ("/matches", "/search?q=Palmyra", "/preview?recipient=ben%40example.com"):
            assert '<script>alert("t")</script>' in shown, path
            assert "Palmyra javascript link" in shown, path  # listed, but not a link
    # A quote in a URL stays inside the href: no attribute of its own.
    for path in ("/matches", "/preview?recipient=ben%40example.com"):
        [link] = lxml.html.document_fromstring(pages[path]).xpath(
            '//a[contains(@href, "evil.example")]'
        )
        assert link.get("href") == BAD_URLS["quotes"]
        assert link.get("onmouseover") is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("sender", "news@example.org\r\nBcc: victim@example.org", id="From-CRLF"),
        pytest.param("sender", "news@example.org\nBcc: victim@example.org", id="From-LF"),
        pytest.param("recipients", ["ana@example.org\r\nBcc: victim@example.org"], id="To-CRLF"),
    ],
)
def test_header_lines_in_addresses_are_refused_at_load(
    tmp_path: Path, key: str, value: object
) -> None:
    config = write_config(tmp_path, digest={key: value})
    with pytest.raises(ConfigError, match=rf"digest\.{key}"):
        load_config(config)


@pytest.mark.parametrize(
    "name",
    [
        "syria\r\nBcc: victim@example.org",
        "syria\nX-Injected: yes",
        "syria\u2028Bcc: victim@example.org",
    ],
    ids=["CRLF", "LF", "line-separator"],
)
def test_a_rule_name_with_a_line_break_is_refused_at_load(tmp_path: Path, name: str) -> None:
    """A rule's name is a digest heading and goes into the subject through {rules}."""
    config = write_config(tmp_path, rules=[{"name": name, "keywords": ["Palmyra"]}])
    with pytest.raises(
        ConfigError, match=r"rules\[0\]\.name \(line \d+\): expected text on one line"
    ):
        load_config(config)
