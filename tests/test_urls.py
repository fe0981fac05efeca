"""Canonical URLs: one key per article whatever link led to it."""

from __future__ import annotations

import pytest

from crawler.domain.urls import canonicalize_url, is_tracking_parameter, is_web_url, same_site

CANONICAL = [
    ("https://News.Example.com/a/b.html", "https://news.example.com/a/b.html"),
    ("HTTP://news.example.com:80/a", "http://news.example.com/a"),
    ("https://news.example.com:443/a", "https://news.example.com/a"),
    ("https://news.example.com:8443/a", "https://news.example.com:8443/a"),
    ("https://news.example.com/a#comments", "https://news.example.com/a"),
    ("https://news.example.com/a?b=2&a=1", "https://news.example.com/a?a=1&b=2"),
    ("https://news.example.com/a?utm_source=rss&utm_medium=feed", "https://news.example.com/a"),
    (
        "https://news.example.com/a?id=7&utm_campaign=x&fbclid=Ab1",
        "https://news.example.com/a?id=7",
    ),
    ("https://news.example.com/a?gclid=1&mc_cid=2&mc_eid=3", "https://news.example.com/a"),
    ("https://news.example.com/a?ref=homepage", "https://news.example.com/a"),
    ("https://news.example.com/a?UTM_Source=x", "https://news.example.com/a"),
    ("https://news.example.com", "https://news.example.com/"),
    ("https://news.example.com/caf%C3%A9", "https://news.example.com/caf%C3%A9"),
    ("https://news.example.com/café", "https://news.example.com/caf%C3%A9"),
    ("  https://news.example.com/a  ", "https://news.example.com/a"),
    ("https://news.example.com/a/", "https://news.example.com/a/"),
]


@pytest.mark.parametrize(("url", "expected"), CANONICAL, ids=[c[0].strip() for c in CANONICAL])
def test_canonicalize_url(url: str, expected: str) -> None:
    assert canonicalize_url(url) == expected


def test_canonicalize_is_idempotent() -> None:
    for url, _ in CANONICAL:
        once = canonicalize_url(url)
        assert canonicalize_url(once) == once


@pytest.mark.parametrize(
    ("name", "tracking"),
    [
        ("utm_source", True),
        ("utm_anything", True),
        ("fbclid", True),
        ("gclid", True),
        ("id", False),
        ("page", False),
        ("q", False),
        ("reference", False),
    ],
)
def test_tracking_parameters(name: str, tracking: bool) -> None:
    assert is_tracking_parameter(name) is tracking


def test_same_site_ignores_www() -> None:
    assert same_site("https://www.news.example/a", "https://news.example/b")
    assert not same_site("https://news.example/a", "https://other.example/a")
    assert not same_site("file:///etc/passwd", "file:///etc/passwd")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://a.example/x", True),
        ("http://a.example", True),
        ("javascript:alert(1)", False),
        ("file:///etc/passwd", False),
        ("mailto:x@example.com", False),
        ("/relative", False),
    ],
)
def test_only_web_urls(url: str, ok: bool) -> None:
    assert is_web_url(url) is ok


# Real-world URL pairs: (as linked from feeds, social posts and newsletters, the key
# it is stored under).
REAL_WORLD = [
    (
        "https://www.bbc.co.uk/news/world-middle-east-35919587?at_medium=RSS&at_campaign=KARANGA",
        "https://www.bbc.co.uk/news/world-middle-east-35919587",
    ),
    (
        "https://www.theguardian.com/world/2016/mar/27/palmyra-syria?CMP=share_btn_tw",
        "https://www.theguardian.com/world/2016/mar/27/palmyra-syria?CMP=share_btn_tw",
    ),
    (
        "https://amp.theguardian.com/world/2016/mar/27/palmyra-syria",
        "https://theguardian.com/world/2016/mar/27/palmyra-syria",
    ),
    (
        "https://www.nytimes.com/2016/03/28/world/middleeast/palmyra.html?smid=tw-share",
        "https://www.nytimes.com/2016/03/28/world/middleeast/palmyra.html",
    ),
    (
        "https://www.nytimes.com/2016/03/28/world/middleeast/palmyra.html?_r=0#story-continues-1",
        "https://www.nytimes.com/2016/03/28/world/middleeast/palmyra.html?_r=0",
    ),
    (
        "https://edition.cnn.com/2016/03/27/middleeast/syria-palmyra/index.html?utm_term=link",
        "https://edition.cnn.com/2016/03/27/middleeast/syria-palmyra/index.html",
    ),
    (
        "https://amp.cnn.com/cnn/2016/03/27/middleeast/syria-palmyra/index.html",
        "https://cnn.com/cnn/2016/03/27/middleeast/syria-palmyra/index.html",
    ),
    (
        "https://www.reuters.com/article/us-mideast-crisis-syria-idUSKCN0WT0R3?feedType=RSS",
        "https://www.reuters.com/article/us-mideast-crisis-syria-idUSKCN0WT0R3?feedType=RSS",
    ),
    (
        "https://www.aljazeera.com/news/2016/3/27/syrian-army-retakes-palmyra?fbclid=IwAR0x",
        "https://www.aljazeera.com/news/2016/3/27/syrian-army-retakes-palmyra",
    ),
    (
        "https://www.washingtonpost.com/world/palmyra/2016/03/27/abc_story.html?outputType=amp",
        "https://www.washingtonpost.com/world/palmyra/2016/03/27/abc_story.html",
    ),
    (
        "https://www.thehindu.com/news/international/palmyra/article8402144.ece/amp/",
        "https://www.thehindu.com/news/international/palmyra/article8402144.ece/",
    ),
    (
        "https://indianexpress.com/article/world/palmyra-4/lite/?amp",
        "https://indianexpress.com/article/world/palmyra-4/lite/",
    ),
    (
        "https://www.deccanchronicle.com/world/middle-east/300316/army-pressures-isis.html?"
        "utm_source=dlvr.it&utm_medium=twitter",
        "https://www.deccanchronicle.com/world/middle-east/300316/army-pressures-isis.html",
    ),
    (
        "https://www.lemonde.fr/international/article/2016/03/27/palmyre_4890.html?xtor=RSS-3208",
        "https://www.lemonde.fr/international/article/2016/03/27/palmyre_4890.html?xtor=RSS-3208",
    ),
    (
        "https://www.spiegel.de/ausland/syrien-palmyra-a-1084258.html#ref=rss",
        "https://www.spiegel.de/ausland/syrien-palmyra-a-1084258.html",
    ),
    (
        "https://www.independent.co.uk/news/world/palmyra-a6955721.html?amp",
        "https://www.independent.co.uk/news/world/palmyra-a6955721.html",
    ),
    (
        "https://www.independent.co.uk/news/world/palmyra-a6955721.amp.html",
        "https://www.independent.co.uk/news/world/palmyra-a6955721.html",
    ),
    (
        "https://www.france24.com/en/20160327-syria-palmyra?ref=tw_i&gclid=abc",
        "https://www.france24.com/en/20160327-syria-palmyra",
    ),
    (
        "https://apnews.com/article/palmyra-syria-0d1e?utm_source=homepage&utm_medium=TopNews",
        "https://apnews.com/article/palmyra-syria-0d1e",
    ),
    (
        "https://www.dw.com/en/palmyra/a-19146521?maca=en-rss-en-world-4025-rdf",
        "https://www.dw.com/en/palmyra/a-19146521?maca=en-rss-en-world-4025-rdf",
    ),
    (
        "https://www.npr.org/2016/03/27/472055271/palmyra?ft=nprml&f=1004",
        "https://www.npr.org/2016/03/27/472055271/palmyra?f=1004&ft=nprml",
    ),
    (
        "https://news.example.com/story?id=42&mc_cid=123&mc_eid=456",
        "https://news.example.com/story?id=42",
    ),
    (
        "https://news.example.com/story?id=42&msclkid=abc&yclid=def&igshid=ghi",
        "https://news.example.com/story?id=42",
    ),
    ("https://news.example.com:443/story", "https://news.example.com/story"),
    ("http://news.example.com:80/story", "http://news.example.com/story"),
]


@pytest.mark.parametrize(("url", "expected"), REAL_WORLD, ids=[u for u, _ in REAL_WORLD])
def test_real_world_urls(url: str, expected: str) -> None:
    assert canonicalize_url(url) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://m.bbc.co.uk/news/x", "https://www.bbc.co.uk/news/x"),
        ("https://mobile.example.com/a", "https://example.com/a"),
        ("https://amp.theguardian.com/a", "https://www.theguardian.com/a"),
    ],
)
def test_mobile_and_amp_hosts_are_the_same_site(a: str, b: str) -> None:
    # The page's own rel=canonical on the main host is then taken as its URL.
    assert same_site(a, b)
