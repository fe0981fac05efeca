"""The entry point, parse_feed, and the reading of RSS and Atom with feedparser.

JSON Feed goes to spiders.feedparse.json_feed; RSS and Atom bytes are decoded
(spiders.feedparse.decoding), repaired (spiders.feedparse.xmlrepair) and read by
feedparser here, each of its entries made a FeedEntry.
"""

from __future__ import annotations

import calendar
import html
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from crawler.domain.scheduling import ttl_from, update_period_from
from spiders.feedparse.decoding import _decode
from spiders.feedparse.fields import (
    _clean_text,
    _is_absolute_web_url,
    _made_up_id,
    _parse_date_text,
    _plain_text,
    _web_link,
    aware_utc,
)
from spiders.feedparse.json_feed import _looks_like_json, _parse_json_feed
from spiders.feedparse.model import FeedEntry, FeedError, ParsedFeed
from spiders.feedparse.xmlrepair import (
    _HTML_ROOTS,
    _PROLOG_ONLY,
    _drop_unfinished_entries,
    _recover_xml,
    _repair_xml,
    _root_element_name,
)


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
            if problem is None
            else f"not a readable feed: {problem}"
        )
    raw_entries, cut = _drop_unfinished_entries(raw_entries, text)
    problems = [decoded.problem, repaired.problem, problem]
    if cut:
        problems.append(
            f"the document is cut off; dropped {cut} unfinished "
            f"entr{'y' if cut == 1 else 'ies'} at the end"
        )
    channel = parsed.get("feed", {})
    return ParsedFeed(
        all_entries=tuple(_feedparser_entry(entry, url, text) for entry in raw_entries),
        problem="; ".join(p for p in problems if p) or None,
        title=_plain_text(channel.get("title_detail") or channel.get("title")),
        link=_web_link([channel.get("link")], url) or None,
        kind=_kind(version),
        encoding=decoded.encoding,
        hub=_rel_link(channel, "hub", url),
        self_url=_rel_link(channel, "self", url),
        ttl=ttl_from(_text(channel.get("ttl"))),
        update_period=update_period_from(
            _text(channel.get("sy_updateperiod")), _text(channel.get("sy_updatefrequency"))
        ),
    )


def _rel_link(channel: Any, rel: str, base: str) -> str | None:
    """The first http(s) ``<link rel=…>`` of the feed (Atom's link elements, RSS's
    atom:link), resolved; None without one."""
    return (
        _web_link(
            [link.get("href") for link in channel.get("links", []) if link.get("rel") == rel],
            base,
        )
        or None
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --- feedparser ------------------------------------------------------------------------------


def _read_with_feedparser(
    document: bytes, url: str, line_offset: int = 0
) -> tuple[dict[str, Any], str | None]:
    """feedparser's reading of UTF-8 XML, and the XML error if the document is broken."""
    # Imported here: feeds are parsed in the CPU pool's workers, which have it from
    # their forkserver (crawler.orchestration.preload); the service process, which
    # imports this package for its types, need not hold it.
    import feedparser

    if not document:
        return {}, "nothing recoverable"
    headers = {"content-location": url, "content-type": "application/xml; charset=utf-8"}
    try:
        # A BytesIO, never bytes: feedparser opens a bytes value that names a file.
        parsed = feedparser.parse(
            io.BytesIO(document),
            response_headers=headers,
            sanitize_html=True,
            resolve_relative_uris=True,
        )
    except Exception as error:  # feedparser's lenient parser can crash (surrogates, ...)
        return {}, f"the feed parser failed ({type(error).__name__}: {error})"
    bozo = parsed.get("bozo_exception")
    if not parsed.get("bozo") or isinstance(
        bozo, (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)
    ):
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
        written = isinstance(guid, str) and (guid in text or html.escape(guid, quote=False) in text)
        link = guid if written and _is_absolute_web_url(guid) else ""
    else:
        link = _web_link(
            [entry.get("link")]
            + [
                alternate.get("href")
                for alternate in entry.get("links", [])
                if alternate.get("rel", "alternate") == "alternate"
            ],
            base,
        )
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


def _struct_time_to_utc(value: Any) -> datetime | None:
    """feedparser's *_parsed values are UTC struct_times; junk or out of range is None."""
    if not value:
        return None
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=calendar.timegm(value))
    except (OverflowError, ValueError, TypeError):
        return None
    return aware_utc(moment)
