"""spiders/feedparse/: JSON Feed, charsets, broken XML, hostile XML, links and dates."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spiders.feedparse import FeedError, ParsedFeed, parse_feed

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
URL = "https://news.example/feed"


def _rss(
    items: str,
    *,
    prolog: str = '<?xml version="1.0" encoding="utf-8"?>',
    title: str = "News",
    doctype: str = "",
) -> str:
    return (
        f'{prolog}{doctype}<rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://news.example/</link>{items}</channel></rss>"
    )


def _item(title: str, link: str = "https://news.example/a", extra: str = "") -> str:
    return f"<item><title>{title}</title><link>{link}</link>{extra}</item>"


def _all_text(feed: ParsedFeed) -> str:
    parts = [feed.title or ""]
    for entry in feed.all_entries:
        parts += [entry.title or "", entry.summary or "", entry.url, entry.id or ""]
    return "\n".join(parts)


# --- JSON Feed -------------------------------------------------------------------------------

JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Blog",
    "home_page_url": "https://blog.example/",
    "items": [
        {
            "id": "1",
            "url": "/posts/1",
            "title": "  First\n post ",
            "date_published": "2024-02-12T10:30:00+02:00",
            "authors": [{"name": "Ann"}, {"name": "Bo"}],
            "content_text": "Plain text body.",
        },
        {
            "id": "2",
            "external_url": "https://other.example/story",
            "title": "Linked story",
            "date_published": "not a date",
            "author": {"name": "Cy"},
            "summary": "A summary.",
            "content_html": "<p>ignored when there is a summary</p>",
        },
        {
            "id": "3",
            "url": "javascript:alert(1)",
            "title": "Script link",
            "date_published": "Fri, 31 May 2019 12:17:58 -0700",
        },
        {
            "id": "4",
            "url": "https://blog.example/4",
            "content_html": "<p>Hello <b>world</b></p><script>alert(1)</script>",
        },
        "not an object",
    ],
}


def test_json_feed_entries() -> None:
    feed = parse_feed(
        json.dumps(JSON_FEED).encode(), "https://blog.example/feed.json", "application/feed+json"
    )

    assert (feed.kind, feed.title, feed.link) == ("json", "Blog", "https://blog.example/")
    assert feed.problem == "1 JSON Feed items are not objects"
    first, second, third, fourth = feed.all_entries
    assert first.url == "https://blog.example/posts/1"  # relative to the feed URL
    assert first.title == "First post"
    assert first.published == datetime(2024, 2, 12, 8, 30, tzinfo=UTC)
    assert (first.author, first.summary, first.id) == ("Ann, Bo", "Plain text body.", "1")
    assert second.url == "https://other.example/story"  # external_url when there is no url
    assert second.published is None  # a junk date is no date, not an error
    assert (second.author, second.summary) == ("Cy", "A summary.")
    assert third.url == ""  # javascript: is never crawled
    assert third.published == datetime(2019, 5, 31, 19, 17, 58, tzinfo=UTC)
    assert fourth.summary == "Hello world"
    assert [entry.url for entry in feed.entries] == [
        "https://blog.example/posts/1",
        "https://other.example/story",
        "https://blog.example/4",
    ]
    assert feed.skipped == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"\xef\xbb\xbf \n" + json.dumps(JSON_FEED).encode(), "", id="bom-no-type"),
        pytest.param(
            json.dumps(JSON_FEED).encode(), "application/json; charset=utf-8", id="application-json"
        ),
    ],
)
def test_json_feed_is_recognised_by_body_or_type(body: bytes, content_type: str) -> None:
    assert parse_feed(body, URL, content_type).kind == "json"


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        pytest.param(
            b'{"error": "rate limited"}',
            "application/json",
            "not a feed: a JSON document that is not a JSON Feed",
            id="api-error",
        ),
        pytest.param(
            b'{"version": "https://jsonfeed.org/version/1.1", "items": [',
            "application/feed+json",
            "not a readable feed: invalid JSON",
            id="truncated",
        ),
        pytest.param(
            b"[1, 2]",
            "application/feed+json",
            "not a feed: a JSON document that is not a JSON Feed",
            id="array",
        ),
    ],
)
def test_json_that_is_not_a_json_feed(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        parse_feed(body, URL, content_type)


def test_xml_served_as_json_is_still_read() -> None:
    feed = parse_feed(_rss(_item("Story")).encode(), URL, "application/json")
    assert (feed.kind, [entry.title for entry in feed.entries]) == ("rss", ["Story"])


# --- charsets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "title", "encoding"),
    [
        # A server that labels everything ISO-8859-1, and a generator that lies in the prolog.
        pytest.param(
            _rss(_item("Café ’quoted’")).encode(),
            "text/xml; charset=ISO-8859-1",
            "Café ’quoted’",
            "utf-8",
            id="utf8-labelled-latin1-by-http",
        ),
        pytest.param(
            _rss(_item("Привет"), prolog='<?xml version="1.0" encoding="windows-1251"?>').encode(),
            "",
            "Привет",
            "utf-8",
            id="utf8-labelled-cp1251-by-prolog",
        ),
        # Genuine legacy charsets stay what they say.
        pytest.param(
            _rss(_item("Café naïve"), prolog='<?xml version="1.0" encoding="ISO-8859-1"?>').encode(
                "latin-1"
            ),
            "",
            "Café naïve",
            "cp1252",
            id="latin1",
        ),
        # ISO-8859-1 labels are read as windows-1252, as browsers do: 0x92 is a quote.
        pytest.param(
            _rss(_item("It’s"), prolog='<?xml version="1.0" encoding="iso-8859-1"?>').encode(
                "cp1252"
            ),
            "",
            "It’s",
            "cp1252",
            id="latin1-label-cp1252-bytes",
        ),
        # A wrong "utf-8" in HTTP loses to the document's own declaration...
        pytest.param(
            _rss(_item("Новости"), prolog='<?xml version="1.0" encoding="windows-1251"?>').encode(
                "cp1251"
            ),
            "application/rss+xml; charset=utf-8",
            "Новости",
            "cp1251",
            id="cp1251-labelled-utf8-by-http",
        ),
        # ... and so does a server's default ISO-8859-1.
        pytest.param(
            _rss(_item("Новости"), prolog='<?xml version="1.0" encoding="windows-1251"?>').encode(
                "cp1251"
            ),
            "text/xml; charset=iso-8859-1",
            "Новости",
            "cp1251",
            id="cp1251-labelled-latin1-by-http",
        ),
        pytest.param(
            _rss(_item("Новости"), prolog="").encode("koi8-r"),
            "application/rss+xml; charset=KOI8-R",
            "Новости",
            "koi8-r",
            id="koi8r-http",
        ),
        pytest.param(
            _rss(_item("新闻"), prolog='<?xml version="1.0" encoding="gb2312"?>').encode("gb18030"),
            "",
            "新闻",
            "gb18030",
            id="gb2312-label",
        ),
        pytest.param(
            b"\xff\xfe" + _rss(_item("Ünïcode")).replace("utf-8", "utf-16").encode("utf-16-le"),
            "",
            "Ünïcode",
            "utf-16-le",
            id="utf16le-bom",
        ),
        pytest.param(
            _rss(_item("Ünïcode")).replace("utf-8", "utf-16").encode("utf-16-be"),
            "",
            "Ünïcode",
            "utf-16-be",
            id="utf16be-no-bom",
        ),
    ],
)
def test_charsets(body: bytes, content_type: str, title: str, encoding: str) -> None:
    feed = parse_feed(body, URL, content_type)
    assert [entry.title for entry in feed.entries] == [title]
    assert feed.encoding == encoding
    assert feed.problem is None


def test_utf8_with_a_stray_latin1_byte_keeps_its_utf8() -> None:
    body = _rss(_item("Crème brûlée") + _item("na\x00ve", "https://news.example/b")).encode()
    body = body.replace(b"\x00", b"\xef")  # "naïve" written in ISO-8859-1

    feed = parse_feed(body, URL, "application/rss+xml")

    assert [entry.title for entry in feed.entries] == ["Crème brûlée", "naïve"]
    assert feed.problem is not None
    assert "not valid UTF-8" in feed.problem


def test_short_undeclared_latin_text_is_read_as_windows_1252() -> None:
    body = _rss(_item("Grüße aus München"), prolog="").encode("cp1252")
    feed = parse_feed(body, URL)
    assert [entry.title for entry in feed.entries] == ["Grüße aus München"]
    assert feed.encoding == "cp1252"


def test_undeclared_legacy_charset_is_detected() -> None:
    text = "Правительство объявило о новых мерах поддержки экономики и малого бизнеса"
    body = _rss(_item(text), prolog="").encode("cp1251")

    feed = parse_feed(body, URL)

    assert [entry.title for entry in feed.entries] == [text]
    assert feed.encoding == "cp1251"
    assert feed.problem is not None
    assert "no charset declared" in feed.problem


# --- repairs that lose nothing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "title"),
    [
        pytest.param(
            "\n\n  " + _rss(_item("Blank lines first")),
            "Blank lines first",
            id="declaration-after-blank-lines",
        ),
        pytest.param(
            "<!-- generated -->\n" + _rss(_item("Comment first")),
            "Comment first",
            id="declaration-after-comment",
        ),
        pytest.param(
            _rss(_item("Tom&nbsp;&amp;&nbsp;Jerry&hellip; &rsquo;98")),
            "Tom & Jerry… ’98",
            id="html-entities",
        ),
        pytest.param(
            _rss(_item("Bell\x07 and\x0b tab\tok")), "Bell and tab ok", id="control-characters"
        ),
        pytest.param(
            _rss(_item("Smile &#xD83D;&#xDE00; &#55357;&#56832;")),
            "Smile 😀 😀",
            id="surrogate-pair-references",
        ),
        pytest.param(
            _rss(_item("Broken &#xD800; &#0; ref")), "Broken \ufffd ref", id="invalid-references"
        ),
    ],
)
def test_harmless_breakage_is_repaired_silently(body: str, title: str) -> None:
    feed = parse_feed(body.encode(), URL)
    assert [entry.title for entry in feed.entries] == [title]
    assert feed.problem is None


def test_entity_declared_by_the_document_wins_over_html() -> None:
    body = _rss(_item("Say &hellip;"), doctype='<!DOCTYPE rss [<!ENTITY hellip "(more)">]>')
    assert [entry.title for entry in parse_feed(body.encode(), URL).entries] == ["Say (more)"]


# --- broken documents ---------------------------------------------------------------------------


def test_truncated_feed_keeps_only_the_entries_it_closed() -> None:
    full = (FEEDS / "rss2" / "rssparser__guardian.rss").read_bytes()
    complete = parse_feed(full, URL)
    third = full.index(b"<item>", full.index(b"<item>", full.index(b"<item>") + 1) + 1)
    cut = full[: full.index(b"<link>", third) + len(b"<link>https://www.theguardian.com/us-n")]

    feed = parse_feed(cut, URL)

    assert [entry.url for entry in feed.entries] == [entry.url for entry in complete.entries[:2]]
    assert feed.problem is not None
    assert "cut off; dropped 1 unfinished entry" in feed.problem


def test_recovering_parser_keeps_entries_the_lenient_parser_loses() -> None:
    # A stray "<item" in the first entry's summary: feedparser alone reads 1 entry of 25.
    body = (FEEDS / "atom" / "miniflux__large_atom.xml").read_bytes()
    position = body.index(b"<summary", body.index(b"<entry>")) + 40
    broken = body[:position] + b"<item" + body[position:]

    feed = parse_feed(broken, "https://dustri.org/b/atom.xml")

    assert feed.problem is not None
    assert "not well-formed" in feed.problem
    assert [entry.url for entry in feed.entries] == [
        entry.url for entry in parse_feed(body, "https://dustri.org/b/atom.xml").entries
    ]


def test_php_warning_before_the_feed_is_not_an_html_page() -> None:
    warning = "<br />\n<b>Warning</b>:  Cannot modify header information in <b>/x.php</b><br />\n"
    feed = parse_feed((warning + _rss(_item("Still here"))).encode(), URL)
    assert [entry.title for entry in feed.entries] == ["Still here"]
    assert feed.problem is not None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"  \r\n\t", "not a feed: the response is empty", id="whitespace"),
        pytest.param(
            b'<?xml version="1.0"?>\n<!-- nothing -->\n',
            "not a feed: the response is empty",
            id="prolog-only",
        ),
        pytest.param(
            b'<html xmlns="http://www.w3.org/1999/xhtml"><body>Moved</body></html>',
            "not a feed: the server sent an HTML page",
            id="xhtml",
        ),
        pytest.param(
            b"<!DOCTYPE html>\n<title>Login</title><p>Please sign in",
            "not a feed: the server sent an HTML page",
            id="html5-fragment",
        ),
        pytest.param(
            b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
            b'sitemap/0.9"><url><loc>https://news.example/a</loc></url></urlset>',
            "not a feed: an XML document whose root is <urlset>",
            id="sitemap",
        ),
        pytest.param(
            b"Service Unavailable", "not a readable feed: no XML elements found", id="plain-text"
        ),
    ],
)
def test_not_a_feed(body: bytes, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        parse_feed(body, URL)


def test_mangled_feeds_never_raise_anything_but_feed_error() -> None:
    body = (FEEDS / "rss2" / "rssparser__guardian.rss").read_bytes()[:6000]
    junk = [
        b"<",
        b"&",
        b"<![CDATA[",
        b"<!--",
        b"\x00",
        b"\xff\xfe",
        b"&#xD800;",
        b"<item",
        b"</",
        b"]]>",
        b'"',
        b"<!DOCTYPE x [",
        b"\xc3",
    ]
    rng = random.Random(20240212)  # noqa: S311 - reproducible mangling, not cryptography
    for _ in range(150):
        position = rng.randrange(len(body))
        mangled = body[:position] + rng.choice(junk) + body[position + rng.randrange(3) :]
        try:
            feed = parse_feed(mangled, URL)
        except FeedError:
            continue
        assert all(entry.url.startswith("https://") for entry in feed.entries)


# --- hostile XML ---------------------------------------------------------------------------------


def test_external_entities_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER", encoding="utf-8")
    dtd = tmp_path / "evil.dtd"
    dtd.write_text(f'<!ENTITY leak SYSTEM "file://{secret}">', encoding="utf-8")
    doctype = (
        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
        f'<!ENTITY sec SYSTEM "file://{secret}">'
        f'<!ENTITY % remote SYSTEM "file://{dtd}"> %remote;]>'
    )
    body = _rss(
        _item("A &xxe; &sec; &leak;", extra="<description>&xxe;&sec;</description>"),
        doctype=doctype,
        title="T &xxe;",
    )

    feed = parse_feed(body.encode(), URL)

    text = _all_text(feed)
    assert "root:" not in text
    assert "SECRET-MARKER" not in text
    assert [entry.url for entry in feed.entries] == ["https://news.example/a"]


# Hostile input is bounded by what the parser does, not by how long a loaded machine
# takes: the entities are counted before parsing, and none is expanded.


def test_billion_laughs_is_not_expanded() -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10 if level > 1 else "&lol;" * 10}">'
        for level in range(1, 10)
    )
    body = _rss(_item("&lol9;"), doctype=f"<!DOCTYPE rss [{entities}]>")

    feed = parse_feed(body.encode(), URL)

    assert feed.problem is not None
    assert "1111111111 references); they were not expanded" in feed.problem
    assert [entry.title for entry in feed.entries] == ["&lol9;"]
    assert len(_all_text(feed)) < 10_000
    assert [entry.url for entry in feed.entries] == ["https://news.example/a"]


@pytest.mark.parametrize("ampersand", ["&#38;", "&#x26;", "&#0038;"])
def test_billion_laughs_written_with_character_references_is_not_expanded(ampersand: str) -> None:
    # A character reference in an entity value is replaced at its declaration:
    # "&#38;lol8;" there is a reference to &lol8; when the entity is used.
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{level} "{f"{ampersand}lol{level - 1};" * 10}">' for level in range(1, 10)
    ).replace("lol0;", "lol;")
    body = _rss(_item("&lol9;"), doctype=f"<!DOCTYPE rss [{entities}]>")

    feed = parse_feed(body.encode(), URL)

    assert feed.problem is not None
    assert "1111111111 references); they were not expanded" in feed.problem
    assert [entry.title for entry in feed.entries] == ["&lol9;"]


def test_quadratic_entity_blowup_is_refused() -> None:
    doctype = f'<!DOCTYPE rss [<!ENTITY big "{"x" * 20_000}">]>'
    body = _rss(_item("&big;" * 20_000), doctype=doctype)

    feed = parse_feed(body.encode(), URL)

    assert len(_all_text(feed)) < 1_000_000
    assert feed.problem is not None
    assert "expand to 400000000 characters" in feed.problem
    assert "were not expanded" in feed.problem


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE rss [<!ENTITY a "&b;"><!ENTITY b "&a;">]>',
        "<!DOCTYPE rss ["
        + "".join(f'<!ENTITY e{n} "&e{n + 1};">' for n in range(40))
        + '<!ENTITY e40 "deep">]>',
        "<!DOCTYPE rss [<!ENTITY % p \"<!ENTITY x 'y'>\"> %p;]>",
    ],
    ids=["loop", "nested-40-deep", "internal-parameter-entity"],
)
def test_entities_that_could_expand_without_bound_are_not_expanded(doctype: str) -> None:
    feed = parse_feed(_rss(_item("&x;&a;&e0;")).replace("<rss", doctype + "<rss", 1).encode(), URL)

    assert [entry.url for entry in feed.entries] == ["https://news.example/a"]
    assert len(_all_text(feed)) < 10_000


def test_a_few_declared_entities_are_still_expanded() -> None:
    doctype = '<!DOCTYPE rss [<!ENTITY org "Example">' + '<!ENTITY who "&org; News">]>'
    feed = parse_feed(_rss(_item("&who; &amp; &org;"), doctype=doctype).encode(), URL)

    assert [entry.title for entry in feed.entries] == ["Example News & Example"]
    assert feed.problem is None


def test_a_body_that_names_a_local_file_is_not_opened(tmp_path: Path) -> None:
    local = tmp_path / "feed.xml"
    local.write_text(_rss(_item("From disk", "https://disk.example/a")), encoding="utf-8")
    with pytest.raises(FeedError):
        parse_feed(str(local).encode(), URL)


# --- links --------------------------------------------------------------------------------------


def test_only_web_links_are_crawled_and_relative_ones_are_resolved() -> None:
    items = "".join(
        [
            _item("script", "javascript:alert(1)"),
            _item("file", "file:///etc/passwd"),
            _item("data", "data:text/html,hi"),
            _item("mail", "mailto:desk@news.example"),
            _item("relative", "/world/1.html"),
            _item("protocol-relative", "//cdn.news.example/2.html"),
            _item("guid", "", extra="<guid>https://news.example/by-guid</guid>"),
            _item(
                "guid-not-permalink",
                "",
                extra='<guid isPermaLink="false">https://news.example/not-a-link</guid>',
            ),
            _item("guid-an-identifier", "", extra="<guid>12345</guid>"),
        ]
    ).replace("<link></link>", "")

    feed = parse_feed(_rss(items).encode(), "https://news.example/rss/all.xml")

    assert [(entry.title, entry.url) for entry in feed.entries] == [
        ("relative", "https://news.example/world/1.html"),
        ("protocol-relative", "https://cdn.news.example/2.html"),
        ("guid", "https://news.example/by-guid"),
    ]
    assert feed.skipped == 6


def test_xml_base_resolves_entry_links() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://a.example/blog/">'
        b"<title>t</title>"
        b'<entry><title>one</title><link href="posts/1"/><id>urn:1</id></entry>'
        b'<entry xml:base="https://b.example/other/"><title>two</title>'
        b'<link href="2.html"/><id>urn:2</id></entry>'
        b"</feed>"
    )
    feed = parse_feed(body, "https://feeds.example/atom.xml", "application/atom+xml")
    assert [entry.url for entry in feed.entries] == [
        "https://a.example/blog/posts/1",
        "https://b.example/other/2.html",
    ]


# --- dates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        pytest.param(
            "<pubDate>Tue, 13 Feb 2024 21:20:00 +0100</pubDate>",
            datetime(2024, 2, 13, 20, 20, tzinfo=UTC),
            id="rfc822",
        ),
        pytest.param(
            "<pubDate>mer, 16 nov 2022 00:38:15 +0100</pubDate>",
            datetime(2022, 11, 15, 23, 38, 15, tzinfo=UTC),
            id="rfc822-italian",
        ),
        pytest.param(
            "<pubDate>Di, 13 Feb 2024 08:00:00 GMT</pubDate>",
            datetime(2024, 2, 13, 8, tzinfo=UTC),
            id="rfc822-german-weekday",
        ),
        pytest.param(
            "<pubDate>13 dic 2023 10:00:00 +0000</pubDate>",
            datetime(2023, 12, 13, 10, tzinfo=UTC),
            id="rfc822-spanish-month",
        ),
        pytest.param(
            '<dc:date xmlns:dc="http://purl.org/dc/elements/1.1/">2024-02-13T08:00:00-05:00'
            "</dc:date>",
            datetime(2024, 2, 13, 13, tzinfo=UTC),
            id="dc-date",
        ),
        pytest.param("<pubDate>yesterday-ish</pubDate>", None, id="junk"),
        pytest.param("<pubDate>Mon, 01 Jan 99999 00:00:00 GMT</pubDate>", None, id="out-of-range"),
        pytest.param("<pubDate></pubDate>", None, id="empty"),
    ],
)
def test_dates_are_aware_utc_or_none(element: str, expected: datetime | None) -> None:
    feed = parse_feed(_rss(_item("dated", extra=element)).encode(), URL)
    assert feed.entries[0].published == expected
