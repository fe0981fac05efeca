"""Structure-aware mutations of corpus documents for the fuzz tests (hypothesis).

Every mutation draws its parameters from hypothesis, so that a failing example
shrinks to fewer, smaller mutations. The mutations know markup only as much as a
regular expression does (start tags, their closing tags, text between tags): the
documents they mutate are often broken to begin with, and a mutated one must be
broken in the ways real servers break them, not only in well-formed ways.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

Mutation = Callable[[st.DrawFn, bytes], bytes]


class Corpus(tuple[bytes, ...]):
    """Documents to mutate; shown by their number in hypothesis's reports, not whole."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Corpus({len(self)} documents)"


START_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)(?=[\s/>])[^<>]*>")
TEXT = re.compile(rb">([^<>]{1,400})<")
# Only the first start tags are considered, so that one mutation costs the same on
# a 200 KB document as on a 2 KB one.
MAX_TAGS = 2_000

# Dates as servers write them, and as they break them.
BROKEN_DATES = [
    "",
    " ",
    "0",
    "-1",
    "0000-00-00",
    "0000-00-00T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59Z",
    "10000-01-01T00:00:00Z",
    "99999-01-01",
    "2024-02-30T10:00:00Z",
    "2024-13-01",
    "2024-01-01T25:61:61Z",
    "2024-01-01T00:00:00+24:00",
    "2024-01-01T00:00:00+99:99",
    "2024-01-01T00:00:00-23:59",
    "Mon, 01 Jan 10000 00:00:00 GMT",
    "Mon, 01 Jan 0 00:00:00 GMT",
    "Mon, 01 Jan 0001 00:00:00 +2359",
    "Fri, 31 Dec 9999 23:59:59 -2359",
    "Thu, 01 Jan 1970 00:00:00 +0000",
    "Tue, 13 Feb 2024 21:20:00 +9999",
    "mer, 16 nov 2022 00:38:15 +0100",
    "2024-05-04T09:15:00.123456789+02:00",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "99999999999",
    "1" * 400,
    "253402300800",
    "-62135596801",
    "9" * 25,
    "2024-01-01T00:00:00Z" * 50,
    "\x00",
    "\ud7ff",
    "２０２４-０１-０１",
    "yesterday",
    "Tuesday",
    "2024",
    "T",
    "Z",
    "+05:00",
    "2024-W01-1",
    "2024-001",
]

ENCODING_LABELS = [
    "utf-8",
    "UTF-8",
    "utf8",
    "iso-8859-1",
    "ISO-8859-15",
    "windows-1252",
    "windows-1251",
    "cp1250",
    "koi8-r",
    "utf-16",
    "utf-16le",
    "utf-16be",
    "utf-32",
    "utf-7",
    "shift_jis",
    "euc-jp",
    "iso-2022-jp",
    "gb2312",
    "gb18030",
    "big5",
    "cp037",
    "cp500",
    "hz",
    "macintosh",
    "x-user-defined",
    "ebcdic",
    "unicode-1-1-utf-7",
    "bogus-charset",
    "",
    "utf-8\x00",
    "a" * 300,
    "rot13",
    "base64",
    "zlib",
    "hex",
    "idna",
    "punycode",
    "mbcs",
    "undefined",
    "unicode_escape",
    "raw_unicode_escape",
    "uu",
    "quopri",
    "bz2",
]
# Codecs a body is really written in (Python names; some have no ASCII prefix).
WRITTEN_CODECS = [
    "utf-8",
    "utf-16-le",
    "utf-16-be",
    "utf-32-le",
    "utf-32-be",
    "cp1252",
    "latin-1",
    "cp1251",
    "koi8-r",
    "shift_jis",
    "gb18030",
    "cp037",
    "utf-7",
    "iso2022_jp",
    "big5",
]
BOMS = [
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff",
    b"\xff\xfe\x00\x00",
    b"\x00\x00\xfe\xff",
    b"\xef\xbb\xbf\xef\xbb\xbf",
    b"\xef\xbb",
    b"\x2b\x2f\x76\x38",
]

XML_SNIPPETS = [
    "&",
    "&amp",
    "&hellip;",
    "&nbsp;",
    "&doesnotexist;",
    "&#0;",
    "&#xD800;",
    "&#xDFFF;",
    "&#xD83D;&#xDE00;",
    "&#xFFFE;",
    "&#x110000;",
    "&#99999999999;",
    "&#x;",
    "&#;",
    "&#1114111;",
    "&#x7FFFFFFF;",
    "&lol9;",
    "<",
    ">",
    "</",
    "<!--",
    "-->",
    "<!---->",
    "<![CDATA[",
    "]]>",
    "<![CDATA[x]]>",
    "<![CDATA[<item>]]>",
    "<?xml version='1.0'?>",
    "<?pi x?>",
    "<!DOCTYPE x [",
    '<!DOCTYPE rss SYSTEM "http://127.0.0.1:9/x.dtd">',
    '<!ENTITY x SYSTEM "file:///etc/passwd">',
    '<!ENTITY % p SYSTEM "file:///etc/passwd">%p;',
    "<undeclared:x>y</undeclared:x>",
    '<x xmlns="">',
    '<a:b xmlns:a=""/>',
    "<item>",
    "</item>",
    "<entry>",
    "</entry>",
    "<link>",
    "<link>javascript:alert(1)</link>",
    "<link>https://a.example:99999/x</link>",
    "<link>http://[::1/x</link>",
    '<link href="http://a.example:x/"/>',
    "<guid>https://\udcff.example/</guid>",
    "<title>\u0000</title>",
    "\x00",
    "\x07",
    "\x1b[31m",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\u202e",
    "\U0001f600",
    "\ud800",
    "x" * 10_000,
    "<br>",
    "<p>",
    "<script>",
    "</rss>",
    "</feed>",
    "</channel>",
    "<channel>",
    "</urlset>",
    "<url>",
    "</url>",
    "<loc>",
    "</loc>",
]
INVALID_BYTES = [
    b"\x00",
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
    b"\x80",
    b"\x1f\x8b",
    b"\r",
    b"\r\n\r\n",
]
NAMESPACES = [
    "",
    "http://www.w3.org/2005/Atom",
    "http://purl.org/rss/1.0/",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://www.sitemaps.org/schemas/sitemap/0.9",
    "http://www.google.com/schemas/sitemap-news/0.9",
    "urn:x",
    "javascript:alert(1)",
    "\u00e9",
    "x" * 5_000,
    "&amp;",
    "http://purl.org/dc/elements/1.1/",
    "http://www.w3.org/XML/1998/namespace",
]
DEPTHS = [10, 255, 256, 1_000, 5_000, 20_000]
ATTRIBUTE_SIZES = [1_000, 65_536, 1_000_000]


def _position(draw: st.DrawFn, document: bytes) -> int:
    """A place to insert something: mostly just after a tag, else any byte."""
    ends = [
        match.end() for _, match in zip(range(MAX_TAGS), START_TAG.finditer(document), strict=False)
    ]
    if ends and draw(st.booleans()):
        return draw(st.sampled_from(ends))
    return draw(st.integers(0, len(document)))


def _element(draw: st.DrawFn, document: bytes) -> tuple[int, int] | None:
    """The span of a start tag up to its closing tag (the first one after it)."""
    tags = [
        match
        for _, match in zip(range(MAX_TAGS), START_TAG.finditer(document), strict=False)
        if not match.group(0).endswith(b"/>")
    ]
    if not tags:
        return None
    tag = draw(st.sampled_from(tags))
    close = re.compile(rb"</" + re.escape(tag.group(1)) + rb"\s*>")
    end = close.search(document, tag.end())
    return tag.start(), end.end() if end else len(document)


def truncate(draw: st.DrawFn, document: bytes) -> bytes:
    return document[: draw(st.integers(0, len(document)))]


def drop_element(draw: st.DrawFn, document: bytes) -> bytes:
    span = _element(draw, document)
    return document if span is None else document[: span[0]] + document[span[1] :]


def duplicate_element(draw: st.DrawFn, document: bytes) -> bytes:
    span = _element(draw, document)
    if span is None:
        return document
    copies = draw(st.sampled_from([1, 2, 50, 500]))
    return document[: span[1]] + document[span[0] : span[1]] * copies + document[span[1] :]


def reorder_elements(draw: st.DrawFn, document: bytes) -> bytes:
    first, second = _element(draw, document), _element(draw, document)
    if first is None or second is None:
        return document
    (a, b), (c, d) = sorted([first, second])
    if c < b:  # overlapping: move the first after the second instead
        return document[:a] + document[b:] + document[a:b]
    return document[:a] + document[c:d] + document[b:c] + document[a:b] + document[d:]


def replace_text(draw: st.DrawFn, document: bytes) -> bytes:
    texts = [
        match.span(1) for _, match in zip(range(MAX_TAGS), TEXT.finditer(document), strict=False)
    ]
    if not texts:
        return document
    start, end = draw(st.sampled_from(texts))
    replacement = draw(
        st.one_of(
            st.sampled_from(BROKEN_DATES), st.sampled_from(XML_SNIPPETS), st.text(max_size=50)
        )
    )
    return document[:start] + replacement.encode("utf-8", "surrogatepass") + document[end:]


def mangle_dates(draw: st.DrawFn, document: bytes) -> bytes:
    """Every date-like element's text becomes one drawn broken date."""
    date = draw(st.one_of(st.sampled_from(BROKEN_DATES), st.text(max_size=40))).encode(
        "utf-8", "surrogatepass"
    )
    pattern = re.compile(
        rb"(<((?:[\w.-]+:)?(?:pubDate|published|updated|date|lastmod|publication_date|"
        rb"modified|issued|created|lastBuildDate))(?:\s[^<>]*)?>)[^<]*(</\2\s*>)"
    )
    return pattern.sub(lambda match: match.group(1) + date + match.group(3), document)


def insert_snippet(draw: st.DrawFn, document: bytes) -> bytes:
    position = _position(draw, document)
    snippet = draw(
        st.one_of(
            st.sampled_from(XML_SNIPPETS).map(lambda text: text.encode("utf-8", "surrogatepass")),
            st.sampled_from(INVALID_BYTES),
        )
    )
    return document[:position] + snippet + document[position:]


def wrap_in_cdata(draw: st.DrawFn, document: bytes) -> bytes:
    texts = [
        match.span(1) for _, match in zip(range(MAX_TAGS), TEXT.finditer(document), strict=False)
    ]
    if not texts:
        return document
    start, end = draw(st.sampled_from(texts))
    closing = draw(st.sampled_from([b"]]>", b"", b"]]", b"]]>]]>"]))
    return document[:start] + b"<![CDATA[" + document[start:end] + closing + document[end:]


def mangle_namespaces(draw: st.DrawFn, document: bytes) -> bytes:
    choice = draw(st.sampled_from(["replace", "drop", "prefix"]))
    if choice == "drop":
        return re.sub(rb"\sxmlns(?::[\w.-]+)?=(\"[^\"]*\"|'[^']*')", b"", document)
    if choice == "prefix":
        prefix = draw(st.sampled_from([b"x", b"atom", b"xml", b"xmlns", b"a-b.c", b"1"]))
        return re.sub(
            rb"<(/?)(\w+)(?=[\s/>])", rb"<\g<1>" + prefix + rb":\g<2>", document, count=50
        )
    uri = draw(st.sampled_from(NAMESPACES)).encode("utf-8")
    return re.sub(
        rb"(\sxmlns(?::[\w.-]+)?=)(\"[^\"]*\"|'[^']*')",
        lambda match: match.group(1) + b'"' + uri + b'"',
        document,
    )


def huge_attribute(draw: st.DrawFn, document: bytes) -> bytes:
    tags = [match for _, match in zip(range(MAX_TAGS), START_TAG.finditer(document), strict=False)]
    if not tags:
        return document
    tag = draw(st.sampled_from(tags))
    size = draw(st.sampled_from(ATTRIBUTE_SIZES))
    name = draw(
        st.sampled_from(
            [b"data-x", b"href", b"content", b"xml:base", b"type", b"xmlns:x", b"lang", b"class"]
        )
    )
    value = draw(st.sampled_from([b"x", b"&amp;", b"\xc3\xa9", b"/"])) * (size // 2)
    at = tag.start() + 1 + len(tag.group(1))
    return document[:at] + b" " + name + b'="' + value + b'"' + document[at:]


def deep_nesting(draw: st.DrawFn, document: bytes) -> bytes:
    position = _position(draw, document)
    depth = draw(st.sampled_from(DEPTHS))
    name = draw(st.sampled_from([b"x", b"div", b"b", b"item", b"entry", b"url", b"span"]))
    closed = draw(st.booleans())
    nested = b"<" + name + b">"
    body = nested * depth + b"deep" + ((b"</" + name + b">") * depth if closed else b"")
    return document[:position] + body + document[position:]


def add_bom(draw: st.DrawFn, document: bytes) -> bytes:
    return draw(st.sampled_from(BOMS)) + document


def declare_charset(draw: st.DrawFn, document: bytes) -> bytes:
    label = draw(st.sampled_from(ENCODING_LABELS)).encode("latin-1", "replace")
    declaration = re.compile(rb"<\?xml[^>]*?\?>")
    new = b'<?xml version="1.0" encoding="' + label + b'"?>'
    if declaration.search(document[:200]):
        return declaration.sub(new, document, count=1)
    return new + document


def reencode(draw: st.DrawFn, document: bytes) -> bytes:
    codec = draw(st.sampled_from(WRITTEN_CODECS))
    return document.decode("utf-8", "replace").encode(codec, "replace")


def byte_noise(draw: st.DrawFn, document: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(document)))
        noise = draw(st.binary(min_size=1, max_size=8))
        overwrite = draw(st.integers(0, 8))
        document = document[:position] + noise + document[position + overwrite :]
    return document


def gzip_it(draw: st.DrawFn, document: bytes) -> bytes:
    """Gzip the document, and perhaps cut or corrupt the compressed stream."""
    packed = gzip.compress(document, compresslevel=1, mtime=0)
    cut = draw(st.sampled_from(["whole", "truncated", "corrupt", "trailing"]))
    if cut == "truncated":
        return packed[: draw(st.integers(0, len(packed)))]
    if cut == "corrupt":
        position = draw(st.integers(0, len(packed) - 1))
        return packed[:position] + bytes([packed[position] ^ 0xFF]) + packed[position + 1 :]
    if cut == "trailing":
        return packed + draw(st.sampled_from([b"\x00" * 10, b"junk", packed]))
    return packed


XML_MUTATIONS: tuple[Mutation, ...] = (
    truncate,
    drop_element,
    duplicate_element,
    reorder_elements,
    replace_text,
    mangle_dates,
    insert_snippet,
    wrap_in_cdata,
    mangle_namespaces,
    huge_attribute,
    deep_nesting,
    add_bom,
    declare_charset,
    reencode,
    byte_noise,
)


@st.composite
def mutated(
    draw: st.DrawFn,
    corpus: Sequence[bytes],
    mutations: Sequence[Mutation] = XML_MUTATIONS,
    max_mutations: int = 4,
) -> bytes:
    """One corpus document after one to ``max_mutations`` drawn mutations."""
    document = draw(st.sampled_from(corpus))
    for mutation in draw(st.lists(st.sampled_from(mutations), min_size=1, max_size=max_mutations)):
        document = mutation(draw, document)
    return document


# --- JSON ----------------------------------------------------------------------------

# JSON text a generator should never write but a server sends anyway, spliced in raw.
RAW_JSON_VALUES = [
    "1e309",
    "-1e309",
    "1" + "0" * 5_000,
    "NaN",
    "Infinity",
    "-Infinity",
    "1.5e-400",
    "[" * 5_000 + "]" * 5_000,
    '{"a":' * 5_000 + "1" + "}" * 5_000,
    "[" * 100_000,
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\uFFFE"',
    "null",
    "true",
    '""',
    "[]",
    "{}",
    '"' + "x" * 100_000 + '"',
    '{"@id": "#x"}',
    '["a", ["b", ["c"]]]',
]


def json_values(max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """Any JSON value, with the strings and numbers that break readers."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
        st.sampled_from(BROKEN_DATES),
        st.sampled_from(XML_SNIPPETS),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=10), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


RAW_MARKER = "\x00raw\x00"


@st.composite
def mutated_json(draw: st.DrawFn, corpus: Sequence[Any], max_mutations: int = 4) -> bytes:
    """A corpus JSON document with values replaced by drawn ones (of the wrong type,
    deeply nested, out of range), keys dropped or duplicated, and raw JSON text
    (huge numbers, deep nesting, lone surrogates, NaN) spliced in."""
    document = draw(st.sampled_from(corpus))
    raw: list[str] = []
    for _ in range(draw(st.integers(1, max_mutations))):
        path = draw(st.sampled_from(_paths(document)))
        kind = draw(st.sampled_from(["value", "raw", "drop", "wrap"]))
        if kind == "raw":
            raw.append(draw(st.sampled_from(RAW_JSON_VALUES)))
            document = _replace(document, path, f"{RAW_MARKER}{len(raw) - 1}")
        elif kind == "drop" and path:
            parent = path[:-1]
            container = document
            for key in parent:
                container = container[key]
            if isinstance(container, dict):
                document = _replace(
                    document,
                    parent,
                    {key: value for key, value in container.items() if key != path[-1]},
                )
            else:
                document = _replace(
                    document,
                    parent,
                    [value for index, value in enumerate(container) if index != path[-1]],
                )
        elif kind == "wrap":
            container = document
            for key in path:
                container = container[key]
            document = _replace(
                document,
                path,
                draw(
                    st.sampled_from(
                        [[container], {"@value": container}, {"name": container}, [container] * 3]
                    )
                ),
            )
        else:
            document = _replace(document, path, draw(json_values()))
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    for index, value in enumerate(raw):
        text = text.replace(json.dumps(f"{RAW_MARKER}{index}"), value)
    return text.encode("utf-8", "surrogatepass")


# --- what every result must satisfy ---------------------------------------------------

# Published and updated times outside these years are no dates (and the digest could
# not show them in a recipient's time zone).
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200


def assert_clean_text(value: object, *, optional: bool = True) -> None:
    """Text a database column and an email can hold: str, no NUL, valid UTF-8."""
    if value is None and optional:
        return
    assert isinstance(value, str), repr(value)[:200]
    assert "\x00" not in value, repr(value)[:200]
    value.encode("utf-8")  # no lone surrogates


def assert_sane_moment(value: object) -> None:
    """None, or an aware UTC datetime within EARLIEST_YEAR..LATEST_YEAR."""
    if value is None:
        return
    from datetime import datetime, timedelta

    assert isinstance(value, datetime), repr(value)
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)
    assert EARLIEST_YEAR <= value.year <= LATEST_YEAR, value


def assert_crawlable_url(value: object) -> None:
    """An absolute http(s) URL that the spider can canonicalise and request."""
    from scrapy import Request

    from crawler.domain.urls import canonicalize_url, is_web_url

    assert_clean_text(value, optional=False)
    assert isinstance(value, str)
    assert is_web_url(value), value
    canonicalize_url(value)
    Request(value)  # what the spider makes of it
