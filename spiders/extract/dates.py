"""The article's published and updated dates: from JSON-LD, meta tags, visible
"Published : ..." lines, or htmldate's guess, in UTC."""

from __future__ import annotations

import logging
import re
import warnings
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dateutil import parser as dateutil_parser
from htmldate import find_date
from lxml.html import HtmlElement

from spiders.extract.metadata import PageMetadata, jsonld_text, meta_values

if TYPE_CHECKING:
    from collections.abc import Iterable

logger = logging.getLogger(__name__)

# <meta> keys (name, property or itemprop, lower-cased), best first.
PUBLISHED_META: tuple[str, ...] = (
    "article:published_time",
    "og:article:published_time",
    "article.published",
    "datepublished",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date.created",
    "dcterms.created",
    "dc.date",
    "dcterms.date",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "parsely-pub-date",
    "sailthru.date",
    "date",
)
UPDATED_META: tuple[str, ...] = (
    "article:modified_time",
    "og:article:modified_time",
    "og:updated_time",
    "article.updated",
    "datemodified",
    "dc.date.modified",
    "dcterms.modified",
    "last-modified",
    "lastmod",
)

# The zone abbreviations news sites print in visible date lines ("7:16 am IST",
# "5:45 p.m. ET"), with the zone each stands for: a fixed offset in seconds, or an
# IANA zone where the abbreviation covers both standard and summer time (the offset
# then depends on the date). Abbreviations are ambiguous worldwide; each entry is the
# reading an English-language news page most likely means: IST is India (not Irish
# or Israel time), CST and PST are North American (not China or Philippine time),
# BST is British Summer Time. Abbreviations with no dominant news reading (AST:
# Atlantic or Arabia; BDT; ECT) are left out, and a date line using one is read
# without a zone (as UTC).
TIMEZONES: dict[str, int | tzinfo] = {
    # UTC
    "UTC": 0,
    "UT": 0,
    "GMT": 0,
    "Z": 0,
    # North America
    "ET": ZoneInfo("America/New_York"),
    "EST": -5 * 3600,
    "EDT": -4 * 3600,
    "CT": ZoneInfo("America/Chicago"),
    "CST": -6 * 3600,
    "CDT": -5 * 3600,
    "MT": ZoneInfo("America/Denver"),
    "MST": -7 * 3600,
    "MDT": -6 * 3600,
    "PT": ZoneInfo("America/Los_Angeles"),
    "PST": -8 * 3600,
    "PDT": -7 * 3600,
    "AKST": -9 * 3600,
    "AKDT": -8 * 3600,
    "HST": -10 * 3600,
    "ADT": -3 * 3600,
    "NST": -(3 * 3600 + 1800),
    "NDT": -(2 * 3600 + 1800),
    # Europe and Africa
    "WET": 0,
    "WEST": 3600,
    "BST": 3600,
    "IST": 5 * 3600 + 1800,  # IST: India, see above
    "CET": 3600,
    "CEST": 2 * 3600,
    "EET": 2 * 3600,
    "EEST": 3 * 3600,
    "MSK": 3 * 3600,
    "TRT": 3 * 3600,
    "WAT": 3600,
    "CAT": 2 * 3600,
    "SAST": 2 * 3600,
    "EAT": 3 * 3600,
    # Middle East and Asia
    "IDT": 3 * 3600,
    "IRST": 3 * 3600 + 1800,
    "GST": 4 * 3600,
    "AFT": 4 * 3600 + 1800,
    "PKT": 5 * 3600,
    "NPT": 5 * 3600 + 2700,
    "ICT": 7 * 3600,
    "WIB": 7 * 3600,
    "WITA": 8 * 3600,
    "WIT": 9 * 3600,
    "MYT": 8 * 3600,
    "PHT": 8 * 3600,
    "SGT": 8 * 3600,
    "HKT": 8 * 3600,
    "JST": 9 * 3600,
    "KST": 9 * 3600,
    # Oceania
    "AWST": 8 * 3600,
    "ACST": 9 * 3600 + 1800,
    "ACDT": 10 * 3600 + 1800,
    "AEST": 10 * 3600,
    "AEDT": 11 * 3600,
    "NZST": 12 * 3600,
    "NZDT": 13 * 3600,
}

# A date without a time of day, as JSON-LD and meta tags write it.
BARE_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
YEAR = re.compile(r"(?<!\d)(?:1[89]\d\d|2[01]\d\d)(?!\d)")
DOTTED_TIME = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{2})(?![\d.])")
EPOCH = re.compile(r"\d{10}(?:\d{3})?")
# A line on the page such as "Published : Mar 30, 2016, 7:16 am IST". The keyword
# must start a text node or follow a separator, so that "a report published on
# 3 May 2015" inside a paragraph is not read as the article's date. "Last Update"
# without the "d" is deliberately absent: Indian sites print it in the page header
# next to the current date.
DATE_LINE = re.compile(
    r"(?:^|\n|[|•·])[ \t]*"
    r"(?P<kind>first\s+published|published|posted|last\s+updated|updated|last\s+modified|modified)"
    r"\b\s*(?:(?:on|at)\s+)?[:\-–—]?\s*(?:(?:on|at)\s+)?",
    re.IGNORECASE,
)
PUBLISHED_KINDS = frozenset({"first published", "published", "posted"})
DATE_LINE_LOOKAHEAD = 100
DATE_LINE_MAX_TOKENS = 10

HTMLDATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def choose_dates(
    tree: HtmlElement,
    metadata: PageMetadata,
    url: str,
) -> tuple[datetime | None, datetime | None]:
    """(published, updated) in UTC.

    Each comes from JSON-LD, else from the meta tags, else from a visible
    "Published : ..." / "Updated : ..." line; only a missing published date falls
    back to htmldate's guess, which may be a bare date (read as midnight UTC).
    """
    nodes = (metadata.article, metadata.page)
    published = first_date(
        [
            *(node.get(key) for node in nodes for key in ("datePublished", "dateCreated")),
            *meta_values(metadata, PUBLISHED_META),
        ]
    )
    updated = first_date(
        [
            *(node.get("dateModified") for node in nodes),
            *meta_values(metadata, UPDATED_META),
        ]
    )
    if published is None or updated is None:
        visible_published, visible_updated = find_date_lines(visible_text(tree))
        published = published or visible_published
        updated = updated or visible_updated
    if published is None:
        published = htmldate_guess(tree, url)
    return published, updated


def first_date(values: Iterable[Any]) -> datetime | None:
    """The first of ``values`` that parses as a date (see parse_datetime).

    When that one is a bare day ("2017-12-06"), a later value on the same day that
    also has the time of day is taken instead: an article node often dates only the
    day while the WebPage node or a meta tag has the full timestamp.
    """
    texts = [text for value in values if (text := jsonld_text(value))]
    for index, text in enumerate(texts):
        moment = parse_datetime(text)
        if moment is None:
            continue
        if BARE_DAY.fullmatch(text):
            for later in texts[index + 1 :]:
                if later.startswith(text) and later != text and (precise := parse_datetime(later)):
                    return precise
        return moment
    return None


def parse_datetime(value: str) -> datetime | None:
    """Read a date from metadata or from the page, in UTC; None when it does not
    read as a date with a year.

    ISO 8601 first, then epoch seconds or milliseconds, then dateutil with the zone
    abbreviations of TIMEZONES. A value without a zone is taken as UTC.
    """
    value = value.strip()
    if not value or len(value) > 100:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        pass
    if EPOCH.fullmatch(value):
        seconds = int(value) / (1000 if len(value) == 13 else 1)
        return as_utc(datetime.fromtimestamp(seconds, tz=UTC))
    if not YEAR.search(value):
        return None  # dateutil would fill the missing year from today
    try:
        with warnings.catch_warnings():
            # An unknown zone name makes dateutil warn and return a naive time,
            # which is then read as UTC like any other zone-less value.
            warnings.simplefilter("ignore")
            parsed = dateutil_parser.parse(
                DOTTED_TIME.sub(r"\1:\2", value),
                tzinfos=TIMEZONES,
                default=datetime(2000, 1, 1),  # only fills fields the text lacks
            )
    except (ValueError, OverflowError, TypeError, LookupError):
        return None
    return as_utc(parsed)


def as_utc(moment: datetime) -> datetime | None:
    """The same moment in UTC; a naive time is taken to be UTC already."""
    if not 1900 <= moment.year <= 2200:
        return None
    try:
        # utcoffset() raises for an offset of a day or more ("+9999", "+24:00").
        if moment.tzinfo is None or moment.utcoffset() is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def visible_text(tree: HtmlElement) -> str:
    """The text a reader sees, one text node a line (no scripts, styles or head)."""
    nodes = tree.xpath(
        "//body//text()[not(parent::script or parent::style or parent::noscript"
        " or parent::template)]"
    )
    return "\n".join(str(node) for node in nodes)


def find_date_lines(text: str) -> tuple[datetime | None, datetime | None]:
    """(published, updated) from the first "Published : <date>"-like and
    "Updated : <date>"-like lines in ``text`` whose date includes a year; lines
    such as "Posted: 2 hours ago" are passed over."""
    published: datetime | None = None
    updated: datetime | None = None
    matches = list(DATE_LINE.finditer(text))
    for index, match in enumerate(matches):
        is_published = " ".join(match["kind"].lower().split()) in PUBLISHED_KINDS
        if (published if is_published else updated) is not None:
            continue
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        fragment = text[match.end() : min(end, match.end() + DATE_LINE_LOOKAHEAD)]
        moment = parse_date_prefix(fragment.split("|", 1)[0])
        if is_published:
            published = published or moment
        else:
            updated = updated or moment
        if published and updated:
            break
    return published, updated


def parse_date_prefix(fragment: str) -> datetime | None:
    """The longest run of leading words in ``fragment`` that reads as a date."""
    words = fragment.split()[:DATE_LINE_MAX_TOKENS]
    for count in range(len(words), 0, -1):
        candidate = " ".join(words[:count]).rstrip(",;-–—")
        if YEAR.search(candidate) and (moment := parse_datetime(candidate)):
            return moment
    return None


def htmldate_guess(tree: HtmlElement, url: str) -> datetime | None:
    """htmldate's reading of the original publication date, or None."""
    try:
        found = find_date(
            tree,
            url=url or None,
            original_date=True,
            outputformat=HTMLDATE_FORMAT,
            extensive_search=False,
        )
    except Exception:  # htmldate on a broken page; the date just stays unknown
        logger.debug("htmldate failed", exc_info=True)
        return None
    return parse_datetime(found) if found else None
