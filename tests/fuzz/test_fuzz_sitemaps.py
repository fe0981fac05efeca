"""Fuzzing spiders.sitemaps.parse_sitemap: whatever the network sends, a Sitemap or a
SitemapError (which the sitemap spider turns into one log line with the URL and the
reason), with entries the spider can follow."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutate import (
    BROKEN_DATES,
    XML_MUTATIONS,
    XML_SNIPPETS,
    Corpus,
    assert_clean_text,
    assert_crawlable_url,
    assert_sane_moment,
    gzip_it,
    mutated,
)

from spiders.sitemaps import Sitemap, SitemapError, parse_sitemap, recent_first

SITEMAPS = Path(__file__).parent.parent / "fixtures" / "site" / "sitemaps"
NOW = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)


def _render(template: str) -> bytes:
    """A fixture site sitemap with its placeholders filled in, as the site serves it."""

    def moment(match: re.Match[str]) -> str:
        return (NOW - timedelta(seconds=int(match.group(1)))).isoformat()

    text = template.replace("{base}", "https://news.example")
    return re.sub(r"\{now-(\d+)\}", moment, text).encode("utf-8")


FIXTURES = [_render(path.read_text(encoding="utf-8")) for path in sorted(SITEMAPS.glob("*.xml"))]
GOOGLE_NEWS = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://news.example/world/2024/05/04/bridge.html</loc>
    <lastmod>2024-05-04T09:15:00+02:00</lastmod>
    <news:news><news:publication><news:name>Example</news:name>
      <news:language>en</news:language></news:publication>
      <news:publication_date>2024-05-04T09:00:00+02:00</news:publication_date>
      <news:title>Harbour bridge reopens &amp; traffic returns</news:title></news:news>
    <image:image><image:loc>https://cdn.example/bridge.jpg</image:loc></image:image></url>
  <url><loc>https://news.example/city/council.html</loc><lastmod>2024-05-03</lastmod>
    <changefreq>hourly</changefreq><priority>0.8</priority></url>
  <url><loc>https://news.example/undated.html</loc></url>
</urlset>"""
CORPUS = Corpus([*FIXTURES, GOOGLE_NEWS])
SITEMAP_MUTATIONS = (*XML_MUTATIONS, gzip_it)
LONG_TIMEOUT = pytest.mark.timeout(max(300, settings().max_examples))


def check_sitemap(body: bytes) -> Sitemap | None:
    """parse_sitemap's result holds only entries the spider can follow, or it raised
    SitemapError with a reason; None then."""
    try:
        sitemap = parse_sitemap(body, max_size=10 * 1024 * 1024)
    except SitemapError as error:
        reason = str(error)  # the log line's reason
        assert_clean_text(reason, optional=False)
        assert reason.strip()
        return None
    assert isinstance(sitemap, Sitemap)
    for entry in sitemap.entries:
        assert_crawlable_url(entry.url)
        assert_clean_text(entry.title)
        assert_sane_moment(entry.lastmod)
        assert_sane_moment(entry.published)
    recent = recent_first(sitemap.entries, timedelta(days=2), NOW)
    assert len(recent) <= len(sitemap.entries)
    return sitemap


@LONG_TIMEOUT
@given(body=mutated(CORPUS, SITEMAP_MUTATIONS))
def test_mutated_sitemaps_give_a_sitemap_or_a_sitemap_error(body: bytes) -> None:
    check_sitemap(body)


@LONG_TIMEOUT
@given(
    body=st.one_of(
        st.binary(max_size=2_000), st.binary(max_size=200).map(lambda noise: b"\x1f\x8b" + noise)
    )
)
def test_byte_noise_gives_a_sitemap_or_a_sitemap_error(body: bytes) -> None:
    check_sitemap(body)


LOCS = st.one_of(
    st.sampled_from(
        [
            "https://news.example/a",
            "/relative",
            "news.example/a",
            "javascript:alert(1)",
            "https://news.example:99999/a",
            "http://[::1/a",
            "https://a.example/\udcff",
            "",
            "ftp://news.example/a",
            "https://news.example/a b",
            "https://" + "a" * 64 + ".example/",
            "https://news.example/a\x00",
            "HTTPS://NEWS.EXAMPLE/A",
        ]
    ),
    st.text(max_size=30).map(lambda path: "https://news.example/" + path),
    st.text(max_size=30),
)
DATES = st.one_of(
    st.sampled_from(BROKEN_DATES),
    st.text(max_size=30),
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
)


@st.composite
def written_sitemaps(draw: st.DrawFn) -> bytes:
    """A urlset, Google News urlset or sitemap index written from drawn values."""
    kind = draw(st.sampled_from(["urlset", "news", "sitemapindex"]))
    raw = draw(st.booleans())

    def text(value: str) -> str:
        return value if raw else escape(value)

    child = "sitemap" if kind == "sitemapindex" else "url"
    entries = []
    for loc, lastmod, published, title in draw(
        st.lists(
            st.tuples(
                LOCS, DATES, DATES, st.one_of(st.text(max_size=40), st.sampled_from(XML_SNIPPETS))
            ),
            max_size=5,
        )
    ):
        news = (
            (
                f"<news:news><news:publication_date>{text(published)}</news:publication_date>"
                f"<news:title>{text(title)}</news:title></news:news>"
            )
            if kind == "news"
            else ""
        )
        entries.append(
            f"<{child}><loc>{text(loc)}</loc><lastmod>{text(lastmod)}</lastmod>{news}</{child}>"
        )
    root = "sitemapindex" if kind == "sitemapindex" else "urlset"
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><{root} '
        'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
        f"{''.join(entries)}</{root}>"
    ).encode("utf-8", "surrogatepass")
    return gzip_it(draw, document) if draw(st.booleans()) else document


@LONG_TIMEOUT
@given(body=written_sitemaps())
def test_written_sitemaps_give_a_sitemap_or_a_sitemap_error(body: bytes) -> None:
    check_sitemap(body)


def test_a_character_reference_to_a_lone_surrogate_is_an_unreadable_field() -> None:
    """Found by the fuzzer: ``&#xD800;`` in a news:title (or a loc) is kept by lxml's
    recovering parse, whose ``.text`` then raised UnicodeDecodeError."""
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
        b"<url><loc>https://news.example/a</loc><news:news>"
        b"<news:title>&#xD800;</news:title></news:news></url>"
        b"<url><loc>https://news.example/&#xD800;</loc></url></urlset>"
    )
    sitemap = parse_sitemap(body)
    assert [(entry.url, entry.title) for entry in sitemap.entries] == [
        ("https://news.example/a", None)
    ]
