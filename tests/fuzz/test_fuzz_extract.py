"""Fuzzing article extraction (spiders.extract.extract_page, what the spider and
``newswatch extract`` run): mutated corpus pages give an article, never the
fallback that logs a traceback, with fields a database and a digest can hold."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutate import (
    BOMS,
    BROKEN_DATES,
    DEPTHS,
    ENCODING_LABELS,
    RAW_JSON_VALUES,
    Corpus,
    add_bom,
    assert_clean_text,
    assert_crawlable_url,
    assert_sane_moment,
    byte_noise,
    deep_nesting,
    drop_element,
    duplicate_element,
    huge_attribute,
    json_values,
    mutated,
    reencode,
    reorder_elements,
    replace_text,
    truncate,
)

from crawler.domain.items import ExtractedArticle
from spiders.extract import extract_page

PAGES = Path(__file__).parent.parent / "fixtures" / "extraction"
CORPUS = Corpus(gzip.decompress(path.read_bytes()) for path in sorted(PAGES.glob("*.html.gz")))
URL = "https://news.example.com/2024/05/04/harbour-bridge-reopens.html"
CONTENT_TYPES = [
    None,
    "text/html",
    "text/html; charset=utf-8",
    "text/html; charset=iso-8859-1",
    "text/html; charset=windows-1251",
    "text/html; charset=bogus",
    "text/html; charset=utf-16",
    "text/html; charset=cp037",
    "application/xhtml+xml",
    "text/plain; charset=shift_jis",
]
# Extraction costs ~20-50 ms a page: a third of the profile's examples keeps the CI
# run short, and the long profile still reads over a thousand pages per test.
EXAMPLES = settings(max_examples=max(50, settings().max_examples // 3))
LONG_TIMEOUT = pytest.mark.timeout(max(300, settings().max_examples))


def _insert_in_head(page: bytes, markup: bytes) -> bytes:
    at = page.find(b"</head>")
    return page[:at] + markup + page[at:] if at >= 0 else markup + page


def _insert_in_body(page: bytes, markup: bytes) -> bytes:
    at = page.find(b"<body")
    at = page.find(b">", at) + 1 if at >= 0 else 0
    return page[:at] + markup + page[at:]


def duplicate_body(draw: st.DrawFn, page: bytes) -> bytes:
    start, end = page.find(b"<body"), page.rfind(b"</body>")
    if start < 0 or end < start:
        return page
    copies = draw(st.sampled_from([1, 2, 10]))
    return page[: end + 7] + page[start : end + 7] * copies + page[end + 7 :]


@st.composite
def broken_jsonld(draw: st.DrawFn) -> bytes:
    """A JSON-LD block for an article node with values of the wrong type, dates out
    of range, deep nesting, huge numbers, or JSON that does not parse."""
    node = {
        "@context": "https://schema.org",
        "@type": draw(
            st.sampled_from(
                [
                    "NewsArticle",
                    ["Article", "NewsArticle"],
                    5,
                    None,
                    "https://schema.org/NewsArticle",
                    {"@id": "x"},
                ]
            )
        ),
        "headline": draw(json_values()),
        "datePublished": draw(st.one_of(st.sampled_from(BROKEN_DATES), json_values())),
        "dateModified": draw(st.one_of(st.sampled_from(BROKEN_DATES), json_values())),
        "author": draw(json_values()),
        "inLanguage": draw(json_values()),
        "image": draw(json_values()),
        "keywords": draw(json_values()),
        "articleSection": draw(json_values()),
        "description": draw(json_values()),
        "mainEntityOfPage": draw(st.one_of(json_values(), st.just({"@id": URL}))),
    }
    text = json.dumps(draw(st.sampled_from([node, [node], {"@graph": [node]}, {"@graph": node}])))
    raw = draw(st.sampled_from(["", *RAW_JSON_VALUES]))
    if raw:
        key = draw(st.sampled_from(["headline", "datePublished", "author", "@type"]))
        text = text.replace(f'"{key}": ', f'"{key}": {raw}, "_{key}": ', 1)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return (
        b'<script type="application/ld+json">'
        + text.encode("utf-8", "surrogatepass")
        + b"</script>"
    )


def inject_jsonld(draw: st.DrawFn, page: bytes) -> bytes:
    return _insert_in_head(page, draw(broken_jsonld()))


META_DATE_KEYS = [
    "article:published_time",
    "article:modified_time",
    "og:updated_time",
    "date",
    "pubdate",
    "DC.date.issued",
    "datePublished",
    "lastmod",
]


def conflicting_dates(draw: st.DrawFn, page: bytes) -> bytes:
    tags = b"".join(
        f'<meta property="{key}" content="{date}">'.encode("utf-8", "surrogatepass")
        for key, date in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(META_DATE_KEYS),
                    st.one_of(st.sampled_from(BROKEN_DATES), st.datetimes().map(str)),
                ),
                min_size=1,
                max_size=6,
            )
        )
    )
    visible = draw(
        st.sampled_from(
            [
                b"",
                b"<p>Published: 1 January 0001</p>",
                b"<p>Updated : 31 Dec 9999 23:59 IST</p>",
                b"<p>Posted: 10000-01-01</p>",
                b'<time datetime="0000-00-00">never</time>',
            ]
        )
    )
    return _insert_in_body(_insert_in_head(page, tags), visible)


def declare_charset(draw: st.DrawFn, page: bytes) -> bytes:
    label = draw(st.sampled_from(ENCODING_LABELS)).encode("latin-1", "replace")
    return _insert_in_head(page, b'<meta charset="' + label + b'">').replace(
        b'<meta charset="utf-8">', b"", 1
    )


def null_bytes(draw: st.DrawFn, page: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(page)))
        page = page[:at] + b"\x00" * draw(st.sampled_from([1, 3, 1000])) + page[at:]
    return page


def html_snippets(draw: st.DrawFn, page: bytes) -> bytes:
    at = draw(st.integers(0, len(page)))
    snippet = draw(
        st.sampled_from(
            [
                b"<",
                b"</div>" * 50,
                b"<div>" * 50,
                b"<!--",
                b"<![CDATA[",
                b"<script>",
                b"<style>",
                b"</html>",
                b"<html>",
                b"<body>",
                b"<head>",
                b"<svg><foreignObject>",
                b"<math>",
                b"<table><tr><td>",
                b"<template>",
                b"<noscript>",
                b"&#xD800;",
                b"&#0;",
                b"&#99999999;",
                b"&amp",
                b"\xef\xbf\xbe",
                b"\xed\xa0\x80",
                b"\xff",
                b"\xc3",
                b"<?xml version='1.0'?>",
                b'<meta http-equiv="refresh" content="0;url=javascript:x">',
                b'<link rel="canonical" href="http://[::1">',
                b'<meta property="og:url" content="https://news.example.com:99999/x">',
                b'<meta property="og:image" content="https://\xed\xa0\x80/x.jpg">',
                b'<html lang="\x00">',
                b'<blockquote class="twitter-tweet">' * 20,
                b'<p><span class="tooltip">' * 20,
                b'<div class="article-body">' * 30,
            ]
        )
    )
    return page[:at] + snippet + page[at:]


HTML_MUTATIONS = (
    truncate,
    drop_element,
    duplicate_element,
    reorder_elements,
    replace_text,
    huge_attribute,
    deep_nesting,
    add_bom,
    reencode,
    byte_noise,
    duplicate_body,
    inject_jsonld,
    conflicting_dates,
    declare_charset,
    null_bytes,
    html_snippets,
)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def extraction_failures() -> Iterator[list[logging.LogRecord]]:
    """The warnings extract_page logs when it fell back to an empty article."""
    handler = _Records()
    logger = logging.getLogger("spiders.extract")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def check_article(body: bytes, url: str = URL, content_type: str | None = None) -> None:
    with extraction_failures() as failures:
        article = extract_page(body, url, content_type)
    assert [
        record.getMessage() for record in failures if record.exc_info is not None
    ] == []  # no traceback: nothing crashed inside
    assert isinstance(article, ExtractedArticle)
    assert_crawlable_url(article.url)
    for text in (article.title, article.text):
        assert_clean_text(text, optional=False)
    for text in (
        article.description,
        article.section,
        article.language,
        *article.authors,
        *article.keywords,
    ):
        assert_clean_text(text)
    if article.image is not None:
        assert_crawlable_url(article.image)
    assert_sane_moment(article.published)
    assert_sane_moment(article.updated)


@LONG_TIMEOUT
@EXAMPLES
@given(
    body=mutated(CORPUS, HTML_MUTATIONS, max_mutations=3),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_mutated_corpus_pages_give_an_article(body: bytes, content_type: str | None) -> None:
    check_article(body, URL, content_type)


@LONG_TIMEOUT
@EXAMPLES
@given(
    page=st.sampled_from(CORPUS),
    jsonld=broken_jsonld(),
    dates=st.lists(st.sampled_from(BROKEN_DATES), max_size=4),
)
def test_broken_metadata_gives_an_article(page: bytes, jsonld: bytes, dates: list[str]) -> None:
    metas = "".join(
        f'<meta property="article:published_time" content="{date}">' for date in dates
    ).encode("utf-8", "surrogatepass")
    check_article(_insert_in_head(page, jsonld + metas))


@LONG_TIMEOUT
@EXAMPLES
@given(
    body=st.one_of(
        st.binary(max_size=3_000),
        st.sampled_from(BOMS).flatmap(
            lambda bom: st.binary(max_size=500).map(lambda noise: bom + b"<html>" + noise)
        ),
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_byte_noise_gives_an_article(body: bytes, content_type: str | None) -> None:
    check_article(body, URL, content_type)


@pytest.mark.parametrize("depth", DEPTHS)
def test_deeply_nested_page_gives_an_article(depth: int) -> None:
    page = CORPUS[0]
    at = page.find(b"<body")
    check_article(page[:at] + b"<div>" * depth + page[at:])


@pytest.mark.parametrize(
    "body",
    [b"<?", b"<?xml", b"<?php echo 1; ?>", b"  <?  "],
    ids=["lt-question", "xml-start", "php", "spaces"],
)
def test_a_lone_processing_instruction_gives_an_article(body: bytes) -> None:
    """Found by the fuzzer: ``<?`` alone made lxml raise ParserError ("Document is
    empty"), logged as a failed extraction with its traceback."""
    check_article(body)


@pytest.mark.parametrize(
    "href",
    [
        "https://news.example.com:99999/x",
        "https://news.example.com:x/a",
        "https://[news.example.com/a",
    ],
    ids=["port-out-of-range", "port-not-a-number", "broken-ipv6"],
)
def test_a_canonical_url_too_broken_to_canonicalise_is_ignored(href: str) -> None:
    """Found by the fuzzer (long profile): an og:url on the page's own site with a port
    out of range became the article's URL, which no request can be made for."""
    page = CORPUS[0]
    check_article(f'<meta property="og:url" content="{href}">'.encode() + page)
    check_article(page.replace(b"<head", f'<head><link rel="canonical" href="{href}">'.encode(), 1))


@pytest.mark.parametrize(
    "date",
    ["Tue, 13 Feb 2024 21:20:00 +9999", "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00-2400"],
    ids=["rfc822-plus-9999", "iso-plus-24h", "minus-24h"],
)
def test_a_time_zone_offset_of_a_day_or_more_is_no_time(date: str) -> None:
    """Found by the fuzzer: dateutil builds such an offset, and datetime.utcoffset()
    then raised ValueError ("offset must be a timedelta strictly between …")."""
    jsonld = (
        '<script type="application/ld+json">{"@type": "NewsArticle", '
        f'"datePublished": "{date}"}}</script>'
    ).encode()
    meta = f'<meta property="article:published_time" content="{date}">'.encode()
    check_article(_insert_in_head(CORPUS[0], jsonld + meta))


def test_a_lone_surrogate_written_in_json_ld_is_replaced() -> None:
    """Found by the fuzzer (long profile): ``"headline": "\\ud800"`` in JSON-LD made a
    title that UTF-8, and so the database, cannot hold."""
    jsonld = (
        b'<script type="application/ld+json">{"@type": "NewsArticle", '
        b'"headline": "\\ud800 Bridge \\udfff", "author": {"name": "\\ud83d"}}</script>'
    )
    check_article(_insert_in_head(CORPUS[0], jsonld))
