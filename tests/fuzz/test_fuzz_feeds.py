"""Fuzzing spiders.feedparse.parse_feed: whatever the network sends, a ParsedFeed or a
FeedError (which the feed spider turns into one log line with the URL and the
reason), and entries a spider can crawl and a database can store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutate import (
    BROKEN_DATES,
    XML_SNIPPETS,
    Corpus,
    assert_clean_text,
    assert_crawlable_url,
    assert_sane_moment,
    mutated,
    mutated_json,
)

from spiders.feedparse import FeedError, ParsedFeed, parse_feed

FEEDS = Path(__file__).parent.parent / "fixtures" / "feeds"
FEED_FILES = sorted(
    path for path in FEEDS.glob("*/*") if path.parent.name != "expected" and path.is_file()
)
XML_CORPUS = Corpus(path.read_bytes() for path in FEED_FILES if path.suffix != ".json")
JSON_CORPUS = [json.loads(path.read_bytes()) for path in FEED_FILES if path.suffix == ".json"]
URL = "https://news.example/feeds/all.xml"
CONTENT_TYPES = [
    "",
    "application/rss+xml",
    "application/atom+xml; charset=utf-8",
    "text/xml; charset=iso-8859-1",
    "application/json",
    "application/feed+json",
    "text/html; charset=windows-1251",
    "text/xml; charset=bogus",
    "application/xml; charset=utf-16",
    'text/plain; charset="utf-7"',
    "application/rss+xml; charset=cp037",
]
# A fuzz test may run for many minutes with the long profile (NEWSWATCH_FUZZ=long).
LONG_TIMEOUT = pytest.mark.timeout(max(300, settings().max_examples))
# A mutated corpus feed is a whole real feed (up to ~1 MB) to parse: a fifth of the
# profile's examples (1,000 in the long one), as the extraction fuzzer does.
CORPUS_EXAMPLES = settings(max_examples=max(50, settings().max_examples // 5))


def check_feed(body: bytes, url: str = URL, content_type: str = "") -> ParsedFeed | None:
    """parse_feed's result satisfies the promises of ParsedFeed and FeedEntry, or it
    raised FeedError with a reason; None then."""
    try:
        feed = parse_feed(body, url, content_type)
    except FeedError as error:
        reason = str(error)  # the log line's reason
        assert_clean_text(reason, optional=False)
        assert reason.strip()
        return None
    assert isinstance(feed, ParsedFeed)
    assert feed.kind in {"rss", "atom", "json", None}
    for text in (feed.problem, feed.title, feed.encoding):
        assert_clean_text(text)
    if feed.link is not None:
        assert_crawlable_url(feed.link)
    for entry in feed.all_entries:
        assert entry.url == "" or assert_crawlable_url(entry.url) is None
        for text in (entry.title, entry.id, entry.author, entry.summary):
            assert_clean_text(text)
        assert entry.id
        assert_sane_moment(entry.published)
        assert_sane_moment(entry.updated)
    assert len(feed.entries) + feed.skipped == len(feed.all_entries)
    return feed


@LONG_TIMEOUT
@CORPUS_EXAMPLES
@given(body=mutated(XML_CORPUS), content_type=st.sampled_from(CONTENT_TYPES))
def test_mutated_corpus_feeds_give_a_feed_or_a_feed_error(body: bytes, content_type: str) -> None:
    check_feed(body, URL, content_type)


@LONG_TIMEOUT
@CORPUS_EXAMPLES
@given(body=mutated_json(JSON_CORPUS), content_type=st.sampled_from(CONTENT_TYPES))
def test_mutated_json_feeds_give_a_feed_or_a_feed_error(body: bytes, content_type: str) -> None:
    check_feed(body, "https://news.example/feed.json", content_type)


@LONG_TIMEOUT
@given(
    body=st.one_of(
        st.binary(max_size=2_000),
        st.text(max_size=500).map(lambda text: text.encode("utf-8", "replace")),
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_byte_noise_gives_a_feed_or_a_feed_error(body: bytes, content_type: str) -> None:
    check_feed(body, URL, content_type)


# --- feeds written from drawn values --------------------------------------------------

LINKS = st.one_of(
    st.sampled_from(
        [
            "https://news.example/a",
            "/relative/path",
            "//cdn.example/x",
            "javascript:alert(1)",
            "https://news.example:99999/x",
            "http://[::1/x",
            "http://[::1]:80/x",
            "https://a:b@c/",
            "https://news.example/\udcff",
            "https://\u00e9x.example/caf\u00e9",
            "http://" + "a" * 300,
            "https://xn--/",
            "https://a..b/",
            "http://0x7f.1/",
            "",
            " ",
            "\x00",
            "mailto:a@b",
            "https://news.example/a?b=1&amp;c=2",
            "https://news.example/%zz",
            "file:///etc/passwd",
        ]
    ),
    st.text(max_size=40),
    st.text(max_size=20).map(lambda path: "https://news.example/" + path),
)
TEXTS = st.one_of(st.text(max_size=60), st.sampled_from(XML_SNIPPETS))
DATES = st.one_of(
    st.sampled_from(BROKEN_DATES),
    st.text(max_size=30),
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S +0000")),
)


def _xml_text(value: str, raw: bool) -> str:
    """The value escaped for XML, or (sometimes) as it is, breaking the document."""
    return value if raw else escape(value)


@st.composite
def written_feeds(draw: st.DrawFn) -> bytes:
    """An RSS 2.0, Atom, RSS 1.0 or JSON Feed document written from drawn titles,
    links, dates and authors."""
    kind = draw(st.sampled_from(["rss", "atom", "rdf", "json"]))
    raw = draw(st.booleans())
    items: list[dict[str, Any]] = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "title": TEXTS,
                    "link": LINKS,
                    "date": DATES,
                    "author": TEXTS,
                    "summary": TEXTS,
                    "id": st.one_of(LINKS, TEXTS),
                }
            ),
            max_size=5,
        )
    )
    if kind == "json":
        document = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": draw(TEXTS),
            "home_page_url": draw(LINKS),
            "items": [
                {
                    "id": item["id"],
                    "url": item["link"],
                    "title": item["title"],
                    "date_published": item["date"],
                    "date_modified": item["date"],
                    "authors": [{"name": item["author"]}],
                    "content_html": item["summary"],
                }
                for item in items
            ],
        }
        return json.dumps(document, ensure_ascii=raw).encode("utf-8", "surrogatepass")

    def text(value: str) -> str:
        return _xml_text(value, raw)

    if kind == "atom":
        entries = "".join(
            f'<entry><title type="html">{text(item["title"])}</title>'
            f"<link href={quoteattr(item['link'])}/><id>{text(item['id'])}</id>"
            f"<published>{text(item['date'])}</published><updated>{text(item['date'])}"
            f"</updated><author><name>{text(item['author'])}</name></author>"
            f"<summary>{text(item['summary'])}</summary></entry>"
            for item in items
        )
        document = (
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{text(draw(TEXTS))}'
            f"</title>{entries}</feed>"
        )
    elif kind == "rdf":
        entries = "".join(
            f"<item rdf:about={quoteattr(item['link'])}><title>{text(item['title'])}</title>"
            f"<link>{text(item['link'])}</link><dc:date>{text(item['date'])}</dc:date>"
            f"<dc:creator>{text(item['author'])}</dc:creator></item>"
            for item in items
        )
        document = (
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>t</title></channel>{entries}</rdf:RDF>"
        )
    else:
        entries = "".join(
            f"<item><title>{text(item['title'])}</title><link>{text(item['link'])}</link>"
            f"<guid>{text(item['id'])}</guid><pubDate>{text(item['date'])}</pubDate>"
            f"<author>{text(item['author'])}</author><description>{text(item['summary'])}"
            "</description></item>"
            for item in items
        )
        document = (
            f'<rss version="2.0"><channel><title>{text(draw(TEXTS))}</title>'
            f"<link>{text(draw(LINKS))}</link>{entries}</channel></rss>"
        )
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "cp1252", "utf-32-be"]))
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'
    return (declaration + document).encode(encoding, "replace")


@LONG_TIMEOUT
@given(body=written_feeds())
def test_written_feeds_give_a_feed_or_a_feed_error(body: bytes) -> None:
    check_feed(body, URL)
