"""The fields of an entry, whatever the format: dates, links and text (and a made-up id)."""

from __future__ import annotations

import email.utils
import hashlib
import html
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from crawler.domain.urls import canonicalize_url, is_web_url

# --- dates ---------------------------------------------------------------------------

_LEADING_WEEKDAY = re.compile(r"^[^\W\d_]+\.?,?\s+(?=\d)")
_WORD = re.compile(r"[^\W\d_]{3,}")
# Month names and abbreviations in the languages of European news sites, by prefix
# (English ones are already understood).
_MONTH_PREFIXES = {
    "gen": "Jan",
    "ene": "Jan",
    "jän": "Jan",
    "fév": "Feb",
    "fev": "Feb",
    "mär": "Mar",
    "mrz": "Mar",
    "mrt": "Mar",
    "avr": "Apr",
    "abr": "Apr",
    "mai": "May",
    "mag": "May",
    "mei": "May",
    "juin": "Jun",
    "giu": "Jun",
    "juil": "Jul",
    "lug": "Jul",
    "aoû": "Aug",
    "ago": "Aug",
    "set": "Sep",
    "okt": "Oct",
    "ott": "Oct",
    "out": "Oct",
    "déc": "Dec",
    "dic": "Dec",
    "dez": "Dec",
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
# extraction bounds its dates the same way (spiders.extract.dates.as_utc).
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


# --- links ---------------------------------------------------------------------------


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


# --- text ----------------------------------------------------------------------------

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


def _made_up_id(
    link: str, title: str | None, summary: str | None, published: datetime | None
) -> str:
    if link:
        return link
    text = "\x1f".join([title or "", summary or "", published.isoformat() if published else ""])
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
