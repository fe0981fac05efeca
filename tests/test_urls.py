"""Canonical URLs: one key per article whatever link led to it."""

from __future__ import annotations

import pytest

from crawler.urls import canonicalize_url, is_tracking_parameter, is_web_url, same_site

CANONICAL = [
    ("https://News.Example.com/a/b.html", "https://news.example.com/a/b.html"),
    ("HTTP://news.example.com:80/a", "http://news.example.com/a"),
    ("https://news.example.com:443/a", "https://news.example.com/a"),
    ("https://news.example.com:8443/a", "https://news.example.com:8443/a"),
    ("https://news.example.com/a#comments", "https://news.example.com/a"),
    ("https://news.example.com/a?b=2&a=1", "https://news.example.com/a?a=1&b=2"),
    ("https://news.example.com/a?utm_source=rss&utm_medium=feed", "https://news.example.com/a"),
    ("https://news.example.com/a?id=7&utm_campaign=x&fbclid=Ab1", "https://news.example.com/a?id=7"),
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
    [("utm_source", True), ("utm_anything", True), ("fbclid", True), ("gclid", True),
     ("id", False), ("page", False), ("q", False), ("reference", False)],
)
def test_tracking_parameters(name: str, tracking: bool) -> None:
    assert is_tracking_parameter(name) is tracking


def test_same_site_ignores_www() -> None:
    assert same_site("https://www.news.example/a", "https://news.example/b")
    assert not same_site("https://news.example/a", "https://other.example/a")
    assert not same_site("file:///etc/passwd", "file:///etc/passwd")


@pytest.mark.parametrize(
    ("url", "ok"),
    [("https://a.example/x", True), ("http://a.example", True), ("javascript:alert(1)", False),
     ("file:///etc/passwd", False), ("mailto:x@example.com", False), ("/relative", False)],
)
def test_only_web_urls(url: str, ok: bool) -> None:
    assert is_web_url(url) is ok
