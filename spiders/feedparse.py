"""Reading feeds: RSS 0.9x/1.0/2.0, Atom and JSON Feed bytes to entries (pure functions).

Nothing here fetches; the spider hands over the body, the URL and the HTTP
Content-Type, and gets entries back, or a FeedError that says why there are none.

The pipeline, in order:

1. JSON Feed 1.0/1.1 is read here (feedparser does not read it).
2. The bytes are decoded here, not by feedparser: a byte order mark wins, then a
   body that is valid UTF-8 wins over a single-byte charset it claims (servers and
   generators often label UTF-8 as ISO-8859-1 or windows-1252), then the HTTP and
   XML declarations, then detection. A UTF-8 body with a few stray legacy bytes
   keeps its UTF-8 and reads the stray bytes as windows-1252, instead of turning
   the whole feed into mojibake.
3. Harmless breakage that would push feedparser onto its lenient parser is repaired
   on the text: a declaration after blank lines, control characters, HTML named
   entities such as ``&hellip;``, character references to surrogates.
4. feedparser reads the text (with its HTML sanitising and relative-link
   resolution on). If the XML is still broken, lxml's recovering parser
   (no entity expansion, no DTD, no network) reads it too and the reading with
   more entries wins. Entries cut off by a truncated document are dropped, since
   their link may be cut off too.
"""

from __future__ import annotations

import calendar
import codecs
import email.utils
import functools
import hashlib
import html
import io
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.entities import html5 as HTML5_ENTITIES
from typing import Any
from urllib.parse import urljoin

import charset_normalizer
import feedparser
from lxml import etree
from w3lib.encoding import http_content_type_encoding, read_bom, resolve_encoding

from crawler.domain.urls import canonicalize_url, is_web_url


class FeedError(Exception):
    """The response is not a feed newswatch can read; the message says why."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One item of a feed.

    ``url`` is an absolute http(s) URL, or ``""`` when the entry has no web link
    (such entries are only in ``ParsedFeed.all_entries``). ``published`` is the
    publish time, else the update time, in UTC; ``id`` is the feed's guid/id,
    else the URL, else a hash of the entry's text. ``title``, ``author`` and
    ``summary`` are plain text with whitespace collapsed.
    """

    url: str
    title: str | None
    published: datetime | None
    id: str | None = None
    author: str | None = None
    summary: str | None = None
    updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What a feed holds, in document order; ``entries`` are the ones to crawl."""

    all_entries: tuple[FeedEntry, ...]
    problem: str | None = None  # set when the feed was malformed but partly readable
    title: str | None = None
    link: str | None = None  # the site the feed belongs to
    kind: str | None = None  # "rss" (0.9x, 1.0, 2.0), "atom" or "json"
    encoding: str | None = None  # the charset the body was read in

    @property
    def entries(self) -> tuple[FeedEntry, ...]:
        """The entries with an http(s) link: the ones the spider fetches."""
        return tuple(entry for entry in self.all_entries if entry.url)

    @property
    def skipped(self) -> int:
        """How many entries have no http(s) link and so cannot be crawled."""
        return sum(1 for entry in self.all_entries if not entry.url)


def parse_feed(body: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """Read the entries of an RSS 0.9x/1.0/2.0, Atom or JSON Feed (pure; runs in the CPU pool).

    Raises FeedError, and nothing else, when nothing in ``body`` reads as a feed.
    A malformed feed is returned with ``problem`` set, with the entries that could
    still be read completely. Relative links are resolved against xml:base and
    ``url``; only http(s) links make crawlable entries.
    """
    if not body.strip():
        raise FeedError("not a feed: the response is empty")
    if _looks_like_json(body, content_type):
        return _parse_json_feed(body, url)
    decoded = _decode(body, content_type)
    text = decoded.text
    root = _root_element_name(text)
    if root is None:
        if _PROLOG_ONLY.fullmatch(text):
            raise FeedError("not a feed: the response is empty (no XML element)")
        raise FeedError("not a readable feed: no XML elements found")
    repaired = _repair_xml(text)
    parsed, problem = _read_with_feedparser(repaired.document, url, repaired.removed_lines)
    if problem is not None:
        recovered, _ = _read_with_feedparser(_recover_xml(repaired.document), url)
        if _crawlable(recovered) > _crawlable(parsed):
            parsed = recovered
            problem += "; read with a recovering XML parser"
    version = parsed.get("version") or ""
    raw_entries = list(parsed.get("entries", []))
    if not version and not raw_entries:
        if root.lower().rpartition(":")[2] in _HTML_ROOTS:
            raise FeedError("not a feed: the server sent an HTML page")
        raise FeedError(
            f"not a feed: an XML document whose root is <{root}>, not RSS, Atom or RDF"
            if problem is None else f"not a readable feed: {problem}"
        )
    raw_entries, cut = _drop_unfinished_entries(raw_entries, text)
    problems = [decoded.problem, repaired.problem, problem]
    if cut:
        problems.append(f"the document is cut off; dropped {cut} unfinished "
                        f"entr{'y' if cut == 1 else 'ies'} at the end")
    channel = parsed.get("feed", {})
    return ParsedFeed(
        all_entries=tuple(_feedparser_entry(entry, url, text) for entry in raw_entries),
        problem="; ".join(p for p in problems if p) or None,
        title=_plain_text(channel.get("title_detail") or channel.get("title")),
        link=_web_link([channel.get("link")], url) or None,
        kind=_kind(version),
        encoding=decoded.encoding,
    )


# --- JSON Feed -------------------------------------------------------------------------

_JSON_FEED_VERSION = re.compile(r"https?://jsonfeed\.org/version/\d", re.IGNORECASE)


def _looks_like_json(body: bytes, content_type: str) -> bool:
    """JSON by its first character, or by its media type unless it starts like XML."""
    first = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"{":
        return True
    mime = content_type.split(";", 1)[0].strip().lower()
    return first != b"<" and (mime == "application/json" or mime.endswith("+json"))


def _parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    try:
        document = json.loads(body.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as error:
        raise FeedError(f"not a readable feed: invalid JSON ({error})") from None
    if not isinstance(document, dict) or not _JSON_FEED_VERSION.match(
        str(document.get("version", ""))
    ):
        raise FeedError("not a feed: a JSON document that is not a JSON Feed "
                        "(no https://jsonfeed.org/version/ in 'version')")
    items = document.get("items")
    problem = None
    if not isinstance(items, list):
        items, problem = [], "JSON Feed without an 'items' list"
    entries = []
    for item in items:
        if isinstance(item, dict):
            entries.append(_json_entry(item, url))
    if len(entries) < len(items):
        problem = f"{len(items) - len(entries)} JSON Feed items are not objects"
    return ParsedFeed(
        all_entries=tuple(entries),
        problem=problem,
        title=_clean_text(document.get("title")),
        link=_web_link([document.get("home_page_url")], url) or None,
        kind="json",
        encoding="utf-8",
    )


def _json_entry(item: dict[str, Any], base: str) -> FeedEntry:
    link = _web_link([item.get("url"), item.get("external_url")], base)
    if not link and isinstance(item.get("id"), str) and _is_absolute_web_url(item["id"]):
        link = item["id"].strip()
    published = _parse_date_text(item.get("date_published"))
    updated = _parse_date_text(item.get("date_modified"))
    authors = item.get("authors")
    if not isinstance(authors, list):
        authors = [item.get("author")]
    names = [_clean_text(author.get("name")) for author in authors if isinstance(author, dict)]
    title = _clean_text(item.get("title"))
    summary = (_clean_text(item.get("summary")) or _clean_text(item.get("content_text"))
               or _html_to_text(item.get("content_html")))
    raw_id = item.get("id")
    entry_id = _clean_text(str(raw_id)) if isinstance(raw_id, str | int) else None
    return FeedEntry(
        url=link,
        title=title,
        published=published or updated,
        id=entry_id or _made_up_id(link, title, summary, published),
        author=", ".join(name for name in names if name) or None,
        summary=summary,
        updated=updated,
    )


_LEADING_WEEKDAY = re.compile(r"^[^\W\d_]+\.?,?\s+(?=\d)")
_WORD = re.compile(r"[^\W\d_]{3,}")
# Month names and abbreviations in the languages of European news sites, by prefix
# (English ones are already understood).
_MONTH_PREFIXES = {
    "gen": "Jan", "ene": "Jan", "jän": "Jan", "fév": "Feb", "fev": "Feb", "mär": "Mar",
    "mrz": "Mar", "mrt": "Mar", "avr": "Apr", "abr": "Apr", "mai": "May", "mag": "May",
    "mei": "May", "juin": "Jun", "giu": "Jun", "juil": "Jul", "lug": "Jul", "aoû": "Aug",
    "ago": "Aug", "set": "Sep", "okt": "Oct", "ott": "Oct", "out": "Oct", "déc": "Dec",
    "dic": "Dec", "dez": "Dec",
}


def _parse_date_text(value: Any) -> datetime | None:
    """A date feedparser could not read: RFC 3339, or RFC 822 with the day and month
    names in another language (``mer, 16 nov 2022 00:38:15 +0100``). Junk is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        text = _WORD.sub(_english_month, _LEADING_WEEKDAY.sub("", text))
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return aware_utc(moment)


# Times outside these years are placeholders ("0001-01-01", a "never" of 9999) or
# junk, not publish times; they could not even be shown in every time zone. Article
# extraction bounds its dates the same way (spiders.extract.as_utc).
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200


def aware_utc(moment: datetime) -> datetime | None:
    """``moment`` in UTC (a naive one is taken as UTC); None when it falls outside
    EARLIEST_YEAR..LATEST_YEAR or its offset cannot be applied."""
    try:
        if moment.tzinfo is None or moment.utcoffset() is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return moment if EARLIEST_YEAR <= moment.year <= LATEST_YEAR else None


def _english_month(match: re.Match[str]) -> str:
    word = match.group(0).lower()
    for length in (4, 3):
        if word[:length] in _MONTH_PREFIXES:
            return _MONTH_PREFIXES[word[:length]]
    return match.group(0)


# --- decoding --------------------------------------------------------------------------

# '<?' in UTF-16/32 without a byte order mark (XML 1.0 appendix F).
_UTF16_32_MARKERS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_XML_DECLARED_ENCODING = re.compile(  # also after a comment, where XML forbids it
    rb"""\A(?:\s|<!--.*?-->)*<\?xml\s[^>]*?\bencoding\s*=\s*["']\s*([A-Za-z][\w.:+-]*)\s*["']""",
    re.DOTALL,
)
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_HIGH_BYTES = bytes(range(0x80, 0x100))
_DETECTION_MIN_BYTES = 32
# The legacy encodings of the WHATWG Encoding Standard, by their Python names.
_WEB_CHARSETS = (
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "iso8859_2", "iso8859_3", "iso8859_4", "iso8859_5", "iso8859_6", "iso8859_7", "iso8859_8",
    "iso8859_10", "iso8859_13", "iso8859_14", "iso8859_15", "iso8859_16", "koi8_r", "koi8_u",
    "cp866", "cp874", "mac_roman", "mac_cyrillic", "gb18030", "big5", "cp932", "euc_jp", "cp949",
)
_SEVEN_BIT_ENCODINGS = frozenset({"iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_3",
                                  "iso2022_jp_ext", "iso2022_kr", "hz"})


def _legacy_byte(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: read undecodable bytes as windows-1252 (Latin-1 for its holes).

    Used for UTF-8 text with a few bytes from a legacy charset in it, and for
    windows-1252 itself, whose five unassigned bytes the WHATWG decoder maps to C1.
    """
    if not isinstance(error, UnicodeDecodeError):
        raise error
    chunk = error.object[error.start:error.end]
    return chunk.decode("cp1252", errors="ignore") if len(chunk) == 1 and chunk[0] not in (
        0x81, 0x8D, 0x8F, 0x90, 0x9D) else chunk.decode("latin-1"), error.end


codecs.register_error("newswatch_legacy_byte", _legacy_byte)


@dataclass(frozen=True, slots=True)
class _Text:
    text: str
    encoding: str
    problem: str | None = None  # the bytes were not valid in any declared charset


def _decode(body: bytes, content_type: str) -> _Text:
    """Return the text of an XML body and the charset it was read in."""
    bom_encoding, bom = read_bom(body)
    if bom_encoding and bom:
        data = body[len(bom):]
        if bom_encoding == "utf-8":
            return _decode_mostly_utf8(data, offset=len(bom))
        return _decode_or_replace(data, bom_encoding)
    for marker, encoding in _UTF16_32_MARKERS:
        if body.startswith(marker):
            return _decode_or_replace(body, encoding)
    labels = []
    for label in (http_content_type_encoding(content_type), _xml_declared_encoding(body)):
        # A UTF-16/32 label on bytes that are not UTF-16/32 (checked above) is wrong.
        if label and label not in labels and not label.startswith(("utf-16", "utf-32")) and (
                _reads_ascii(label)):
            labels.append(label)
    for label in labels:
        if label in _SEVEN_BIT_ENCODINGS:
            return _decode_or_replace(body, label)
    if body.isascii():
        return _Text(body.decode("ascii"), "ascii")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        # Text in a single-byte charset is practically never valid UTF-8 once it
        # has non-ASCII letters, so valid UTF-8 wins over such a label. A
        # multi-byte charset can be valid UTF-8 by chance, so its label is kept
        # when the bytes decode in it.
        for label in labels:
            if label != "utf-8" and not _is_single_byte(label):
                try:
                    return _Text(body.decode(label), label)
                except UnicodeDecodeError:
                    continue
        return _Text(text, "utf-8")
    legacy = [label for label in labels if label != "utf-8"]
    if (len(legacy) < len(labels) or not legacy) and _mostly_utf8(body):
        return _decode_mostly_utf8(body)
    if len(legacy) == 2 and legacy[0] == "cp1252":
        # ISO-8859-1 is the default charset of many web servers, so a specific
        # charset in the document itself is more likely to be the true one.
        legacy.reverse()
    for label in legacy:
        try:
            return _Text(body.decode(label), label)
        except UnicodeDecodeError:
            continue
    if legacy:
        return _decode_or_replace(body, legacy[0])
    label = _detect_legacy_charset(body)
    decoded = _decode_or_replace(body, label or "cp1252")
    return _Text(decoded.text, decoded.encoding, decoded.problem or (
        f"no charset declared and the bytes are not UTF-8; read as {decoded.encoding}"
        + (" (detected)" if label else "")))


def _detect_legacy_charset(body: bytes) -> str | None:
    """Guess the charset of an undeclared, non-UTF-8 body; None means windows-1252.

    Detection is unreliable on a few words (it reads short Russian as Big5 and
    short French as windows-1250), so it is only asked when there is enough
    non-ASCII text, only among the charsets of the web, and windows-1252, the
    web's default, wins whenever it reads the bytes the same.
    """
    if len(body) - len(body.translate(None, _HIGH_BYTES)) < _DETECTION_MIN_BYTES:
        return None
    best = charset_normalizer.from_bytes(body, cp_isolation=list(_WEB_CHARSETS)).best()
    if best is None or "cp1252" in best.could_be_from_charset:
        return None
    return resolve_encoding(best.encoding)


def _decode_or_replace(data: bytes, encoding: str) -> _Text:
    try:
        return _Text(data.decode(encoding), encoding)
    except UnicodeDecodeError as error:
        errors = "newswatch_legacy_byte" if encoding == "cp1252" else "replace"
        problem = None if encoding == "cp1252" else (
            f"bytes that are not valid {encoding} (first at byte {error.start}) were replaced")
        return _Text(data.decode(encoding, errors=errors), encoding, problem)


def _decode_mostly_utf8(data: bytes, offset: int = 0) -> _Text:
    try:
        return _Text(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as error:
        return _Text(data.decode("utf-8", errors="newswatch_legacy_byte"), "utf-8",
                     f"bytes that are not valid UTF-8 (first at byte {offset + error.start}) "
                     "were read as windows-1252")


_ASCII_MARKUP = b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'


@functools.cache
def _reads_ascii(label: str) -> bool:
    """Whether ``label`` names a charset that reads ASCII markup as ASCII.

    Labels are found by reading the bytes as ASCII, so only such a charset can be
    the right one; this also turns away codecs that are no document charset at all
    (``rot13``, ``base64``, ``idna``, ``undefined``), which fail or refuse bytes.
    """
    try:
        return _ASCII_MARKUP.decode(label, "replace") == _ASCII_MARKUP.decode("ascii")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return False


def _xml_declared_encoding(body: bytes) -> str | None:
    match = _XML_DECLARED_ENCODING.match(body[:1024])
    return resolve_encoding(match.group(1).decode("ascii")) if match else None


def _is_single_byte(encoding: str) -> bool:
    try:
        return len(bytes(range(0x80, 0x100)).decode(encoding, errors="replace")) == 0x80
    except LookupError:
        return False


def _mostly_utf8(body: bytes) -> bool:
    """True when the non-ASCII text is mostly valid UTF-8 with a few stray bytes."""
    sequences = _UTF8_SEQUENCE.findall(body)
    high_bytes = len(body) - len(body.translate(None, _HIGH_BYTES))
    stray = high_bytes - sum(len(sequence) for sequence in sequences)
    return len(sequences) >= stray


# --- repairs and structure ------------------------------------------------------------------

# Whitespace, declarations, processing instructions, comments and a DOCTYPE.
_PROLOG_ONLY = re.compile(
    r"\s*(?:(?:<\?.*?\?>|<!--.*?(?:-->|\Z)|<!DOCTYPE[^>\[]*(?:\[.*?\]\s*)?>)\s*)*",
    re.DOTALL | re.IGNORECASE,
)
_FIRST_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)")
_HTML_ROOTS = frozenset({"html", "head", "body", "meta", "title", "div", "p", "br", "h1", "h2",
                         "script", "style", "link", "table", "center", "pre", "a", "iframe"})
_XML_DECLARATION = re.compile(r"<\?xml\s[^>]*?\?>")
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# A character reference XML may forbid (C0 controls, surrogates, U+FFFE/F, beyond
# U+10FFFF), and the reference after it (the second half of a surrogate pair).
# Only suspicious ones match, so that ordinary references cost nothing.
_CHARACTER_REFERENCE = re.compile(
    r"&#(?:[xX]0*([0-9a-fA-F]|1[0-9a-fA-F]|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF]"
    r"|1[1-9a-fA-F][0-9a-fA-F]{4}|[2-9a-fA-F][0-9a-fA-F]{5}|[0-9a-fA-F]{7,8})"
    r"|0*([0-9]|[12][0-9]|3[01]|5529[6-9]|55[3-9][0-9]{2}|56[0-9]{3}|57[0-2][0-9]{2}"
    r"|573[0-3][0-9]|5734[0-3]|6553[45]|[0-9]{7,10}));"
    r"(?:&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));)?"
)
_NAMED_REFERENCE_OR_CDATA = re.compile(
    r"<!\[CDATA\[.*?\]\]>|&(?!(?:amp|lt|gt|quot|apos);)([A-Za-z][A-Za-z0-9]{1,31});", re.DOTALL
)
_DOCTYPE = re.compile(r"<!DOCTYPE[^>\[]*(?:\[.*?\]\s*)?>", re.DOTALL | re.IGNORECASE)
_ENTITY_VALUE = re.compile(r"""<!ENTITY\s+([A-Za-z_][\w.-]*)\s+(?:"([^"]*)"|'([^']*)')""")
_ENTITY_REFERENCE = re.compile(r"&([A-Za-z_][\w.-]*);")
_ENTITY_EXPANSION_LIMIT = 1_000_000
_ENTITY_REFERENCE_LIMIT = 10_000
# Entities nested deeper than this count as expanding without bound (real feeds nest
# none; a loop nests forever).
_ENTITY_MAX_DEPTH = 16
_PARAMETER_ENTITY_VALUE = re.compile(r"""<!ENTITY\s+%\s*[A-Za-z_][\w.-]*\s+["']""")
_DECLARED_ENTITY = re.compile(r"<!ENTITY\s+(?:%\s+)?([A-Za-z_][\w.-]*)")
_XML_PREDEFINED = frozenset({"amp", "lt", "gt", "quot", "apos"})


def _root_element_name(text: str) -> str | None:
    prolog = _PROLOG_ONLY.match(text)
    match = _FIRST_ELEMENT.match(text, prolog.end() if prolog else 0)
    if match is None:
        match = _FIRST_ELEMENT.search(text)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class _Repaired:
    document: bytes  # UTF-8 XML, declared as such
    removed_lines: int  # lines removed before the root element, to report original lines
    problem: str | None = None


def _repair_xml(text: str) -> _Repaired:
    """Return the document as UTF-8 XML, with repairs that lose nothing.

    Removes the old declaration (also one after blank lines or a comment, which
    XML forbids), characters XML forbids, character references to code points XML
    forbids (a UTF-16 surrogate pair written as two references becomes its
    character), and writes HTML named entities (``&nbsp;``, ``&hellip;``) as
    numeric references unless the document declares them itself.

    The XML parser expands the DOCTYPE's entities, nested ones too, until expat's
    amplification limit stops it: a 1 KB "billion laughs" still cost seconds of
    callbacks. So a DOCTYPE is dropped, its entities left unexpanded, when they
    would expand to more than _ENTITY_EXPANSION_LIMIT characters or
    _ENTITY_REFERENCE_LIMIT references (counted through the nesting, before any
    parsing), or when it declares an internal parameter entity (which can declare
    further entities, out of reach of that count).
    """
    prolog = _PROLOG_ONLY.match(text)
    end = prolog.end() if prolog else 0
    head = _XML_DECLARATION.sub("", text[:end]).lstrip()
    problem = None
    # Character references in an entity value are replaced when it is declared, so
    # "&#38;lol;" in a value is a reference to &lol; when the entity is used.
    values = {match.group(1): _CHARACTER_REFERENCE_IN_VALUE.sub(
        _character, match.group(2) or match.group(3) or "")
        for match in _ENTITY_VALUE.finditer(head)}
    characters = expansions = 0
    if values:
        sizes: dict[str, tuple[float, float]] = {}
        for name, count in Counter(_ENTITY_REFERENCE.findall(text, end)).items():
            if name in values:
                size, nested = _expanded_size(name, values, sizes)
                characters += size * count
                expansions += (nested + 1) * count
    if characters > _ENTITY_EXPANSION_LIMIT or expansions > _ENTITY_REFERENCE_LIMIT:
        head = _DOCTYPE.sub("", head)
        problem = (f"the DOCTYPE's entities would expand to {characters:.0f} characters "
                   f"({expansions:.0f} references); they were not expanded")
    elif _PARAMETER_ENTITY_VALUE.search(head):
        head = _DOCTYPE.sub("", head)
        problem = ("the DOCTYPE declares internal parameter entities; its entities were "
                   "not expanded")
    removed_lines = text.count("\n", 0, end) - head.count("\n")
    declared = set(_DECLARED_ENTITY.findall(head))
    text = _INVALID_XML_CHARS.sub("", head + text[end:])
    text = _CHARACTER_REFERENCE.sub(_fix_character_reference, text)

    def numeric(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None or name in _XML_PREDEFINED or name in declared:
            return match.group(0)
        value = HTML5_ENTITIES.get(name + ";")
        return "".join(f"&#{ord(char)};" for char in value) if value else match.group(0)

    text = _NAMED_REFERENCE_OR_CDATA.sub(numeric, text)
    declaration = b'<?xml version="1.0" encoding="utf-8"?>'
    return _Repaired(declaration + text.encode("utf-8", "replace"), removed_lines, problem)


_CHARACTER_REFERENCE_IN_VALUE = re.compile(r"&#(?:([0-9]{1,8})|[xX]([0-9a-fA-F]{1,8}));")


def _character(match: re.Match[str]) -> str:
    code = int(match.group(1)) if match.group(1) else int(match.group(2), 16)
    return chr(code) if _is_xml_char(code) else ""


def _expanded_size(name: str, values: dict[str, str], sizes: dict[str, tuple[float, float]],
                   depth: int = 0) -> tuple[float, float]:
    """How many characters entity ``name`` expands to, and how many entity
    references it expands on the way; infinite for a loop or deep nesting."""
    if name in sizes:
        return sizes[name]
    if depth > _ENTITY_MAX_DEPTH:
        return math.inf, math.inf
    value = values[name]
    characters, expansions = float(len(value)), 0.0
    for reference, count in Counter(_ENTITY_REFERENCE.findall(value)).items():
        if reference in values:
            size, nested = _expanded_size(reference, values, sizes, depth + 1)
            characters += size * count
            expansions += (nested + 1) * count
    sizes[name] = characters, expansions
    return sizes[name]


def _fix_character_reference(match: re.Match[str]) -> str:
    first = int(match.group(1), 16) if match.group(1) else int(match.group(2))
    second = None
    if match.group(3) or match.group(4):
        second = int(match.group(3), 16) if match.group(3) else int(match.group(4))
    if second is not None and 0xD800 <= first <= 0xDBFF and 0xDC00 <= second <= 0xDFFF:
        return f"&#{0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)};"
    return "".join(
        f"&#{code};" if _is_xml_char(code) else "\ufffd" if 0xD800 <= code <= 0xDFFF else ""
        for code in (first, second) if code is not None
    )


def _is_xml_char(code: int) -> bool:
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


def _recover_xml(document: bytes) -> bytes:
    """Re-serialise what lxml's recovering parser makes of a broken document.

    No entity is expanded (no XXE, no billion laughs), no DTD is loaded, nothing
    is fetched. Ampersands that do not start a predefined or numeric reference
    are escaped first, so undefined entities stay as text and do not each add an
    entry to lxml's error log (which is kept in memory).
    """
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True,
                             load_dtd=False, huge_tree=False, remove_comments=True,
                             remove_pis=True)
    escaped = _STRAY_AMPERSAND_OR_CDATA.sub(
        lambda match: match.group(0) if match.group(1) else b"&amp;", document)
    try:
        root = etree.fromstring(escaped, parser)
    except (etree.LxmlError, ValueError):
        return b""
    if root is None:
        return b""
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


_STRAY_AMPERSAND_OR_CDATA = re.compile(
    rb"(<!\[CDATA\[.*?\]\]>)|&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)", re.DOTALL
)


_CLOSED_ENTRY = re.compile(r"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.IGNORECASE)
_CLOSED_ROOT = re.compile(r"</(?:[\w.-]+:)?(?:rss|feed|rdf|channel)\s*>", re.IGNORECASE)


def _drop_unfinished_entries(entries: list[Any], text: str) -> tuple[list[Any], int]:
    """Drop the entries a truncated document never closed (they are always the last).

    Their link or title may be cut off mid-way, and a wrong URL is worse than none.
    """
    if _CLOSED_ROOT.search(text):
        return entries, 0
    closed = len(_CLOSED_ENTRY.findall(text))
    if len(entries) <= closed:
        return entries, 0
    return entries[:closed], len(entries) - closed


# --- feedparser ------------------------------------------------------------------------------

_BENIGN_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)


def _read_with_feedparser(
    document: bytes, url: str, line_offset: int = 0
) -> tuple[dict[str, Any], str | None]:
    """feedparser's reading of UTF-8 XML, and the XML error if the document is broken."""
    if not document:
        return {}, "nothing recoverable"
    headers = {"content-location": url, "content-type": "application/xml; charset=utf-8"}
    try:
        # A BytesIO, never bytes: feedparser opens a bytes value that names a file.
        parsed = feedparser.parse(io.BytesIO(document), response_headers=headers,
                                  sanitize_html=True, resolve_relative_uris=True)
    except Exception as error:  # feedparser's lenient parser can crash (surrogates, ...)
        return {}, f"the feed parser failed ({type(error).__name__}: {error})"
    bozo = parsed.get("bozo_exception")
    if not parsed.get("bozo") or isinstance(bozo, _BENIGN_BOZO):
        return parsed, None
    return parsed, _describe_xml_error(bozo, line_offset)


def _describe_xml_error(error: Any, line_offset: int) -> str:
    message = getattr(error, "getMessage", lambda: str(error))()
    line = getattr(error, "getLineNumber", lambda: None)()
    column = getattr(error, "getColumnNumber", lambda: None)()
    if isinstance(line, int) and isinstance(column, int):
        # expat counts columns from 0
        return f"XML error at line {line + line_offset}, column {column + 1}: {message}"
    return f"XML error: {message or type(error).__name__}"


def _crawlable(parsed: dict[str, Any]) -> int:
    return sum(1 for entry in parsed.get("entries", []) if entry.get("link"))


def _kind(version: str) -> str | None:
    if version.startswith(("rss", "cdf")):
        return "rss"
    if version.startswith("atom"):
        return "atom"
    return None


def _feedparser_entry(entry: Any, base: str, text: str) -> FeedEntry:
    guid = entry.get("id")
    if entry.get("guidislink") and entry.get("link") == guid:
        # feedparser made the guid the link (no <link>, isPermaLink not "false"),
        # resolved against the feed URL; but a guid such as "12345" is an
        # identifier, not a path, so only a guid written as an absolute URL counts.
        written = isinstance(guid, str) and (
            guid in text or html.escape(guid, quote=False) in text)
        link = guid if written and _is_absolute_web_url(guid) else ""
    else:
        link = _web_link([entry.get("link")] + [
            alternate.get("href") for alternate in entry.get("links", [])
            if alternate.get("rel", "alternate") == "alternate"
        ], base)
    # dict.get: FeedParserDict.get("updated_parsed") falls back to the publish time.
    published, updated, created = (
        _struct_time_to_utc(dict.get(entry, f"{name}_parsed"))
        or _parse_date_text(dict.get(entry, name))
        for name in ("published", "updated", "created")
    )
    title = _plain_text(entry.get("title_detail") or entry.get("title"))
    summary = _plain_text(entry.get("summary_detail") or entry.get("summary"))
    author = entry.get("author_detail", {}).get("name") or entry.get("author")
    return FeedEntry(
        url=link,
        title=title,
        published=published or updated or created,
        id=_clean_text(entry.get("id")) or _made_up_id(link, title, summary, published),
        author=_clean_text(author),
        summary=summary,
        updated=updated,
    )


def _web_link(candidates: list[Any], base: str) -> str:
    for candidate in candidates:
        if not isinstance(candidate, str) or not candidate.strip():
            continue
        try:
            absolute = urljoin(base, candidate.strip())
        except ValueError:  # e.g. an invalid IPv6 host
            continue
        if is_crawlable_url(absolute):
            return absolute
    return ""


def _is_absolute_web_url(value: str) -> bool:
    return is_crawlable_url(value.strip())


# Characters no URL the spider requests, and no text a database stores, may hold.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def is_crawlable_url(url: str) -> bool:
    """True for an absolute http(s) URL that the spider can key and request: one
    that canonicalize_url accepts (a port in range, a valid host, no lone
    surrogates), without control characters."""
    if _UNSTORABLE.search(url):
        return False
    try:
        return is_web_url(url) and bool(canonicalize_url(url))
    except ValueError:  # InvalidUrlError, an invalid IPv6 host, a bad encoding
        return False


def _struct_time_to_utc(value: Any) -> datetime | None:
    """feedparser's *_parsed values are UTC struct_times; junk or out of range is None."""
    if not value:
        return None
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=calendar.timegm(value))
    except (OverflowError, ValueError, TypeError):
        return None
    return aware_utc(moment)


_TAG = re.compile(r"<[^>]*>")
_BLOCK_TAG = re.compile(
    r"</?(?:p|br|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|blockquote|pre|section|article"
    r"|header|footer|figure|figcaption|hr|img)\b[^>]*>",
    re.IGNORECASE,
)
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def _plain_text(value: Any) -> str | None:
    """feedparser's text construct (or a bare string, taken as HTML) as plain text:
    markup removed from HTML, whitespace collapsed."""
    if isinstance(value, dict):
        if value.get("type") in ("text/html", "application/xhtml+xml"):
            return _html_to_text(value.get("value"))
        return _clean_text(value.get("value"))
    return _html_to_text(value)


def _html_to_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = _BLOCK_TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", value))
    return _clean_text(html.unescape(_TAG.sub("", text)))


def _clean_text(value: Any) -> str | None:
    """Whitespace collapsed; control characters and lone surrogates (a JSON Feed may
    hold both as escapes, which no database column takes) removed."""
    if not isinstance(value, str):
        return None
    return " ".join(_UNSTORABLE.sub("", value).split()) or None


def _made_up_id(link: str, title: str | None, summary: str | None,
                published: datetime | None) -> str:
    if link:
        return link
    text = "\x1f".join([title or "", summary or "", published.isoformat() if published else ""])
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
