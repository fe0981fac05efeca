"""Reading feeds: RSS 0.9x/1.0/2.0 and Atom bytes to a list of entries (pure functions).

Nothing here fetches; the spider hands over the body, the URL and the HTTP
Content-Type, and gets entries back, or a FeedError that says why there are none.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from crawler.urls import is_web_url


class FeedError(Exception):
    """The response is not a feed newswatch can read; the message says why."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    url: str
    title: str | None
    published: datetime | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    entries: tuple[FeedEntry, ...]
    problem: str | None = None  # set when the feed was malformed but partly readable


def parse_feed(body: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """Read the entries of an RSS 0.9x/1.0/2.0 or Atom feed (pure; runs in the CPU pool).

    Raises FeedError when nothing in ``body`` reads as a feed. A malformed feed
    whose entries could still be read is returned with ``problem`` set.
    """
    headers = {"content-location": url}
    if content_type:
        # feedparser uses the HTTP charset and flags a missing type as malformed.
        headers["content-type"] = content_type
    parsed = feedparser.parse(body, response_headers=headers)
    problem = None
    if parsed.get("bozo"):
        problem = str(parsed.get("bozo_exception", "")) or "malformed feed"
    if not parsed.get("version") and not parsed.get("entries"):
        head = body[:512].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise FeedError("not a feed: the server sent an HTML page")
        if not body.strip():
            raise FeedError("not a feed: the response is empty")
        raise FeedError(f"not a readable feed: {problem or 'no RSS or Atom elements found'}")
    entries = []
    for entry in parsed.entries:
        link = _entry_link(entry)
        if link is None:
            continue
        entries.append(FeedEntry(url=link, title=entry.get("title"), published=_entry_time(entry)))
    return ParsedFeed(tuple(entries), problem)


def _entry_link(entry: Any) -> str | None:
    candidates = [entry.get("link")]
    candidates += [link.get("href") for link in entry.get("links", []) if link.get("rel") in
                   (None, "alternate")]
    for candidate in candidates:
        if candidate and is_web_url(candidate):
            return candidate
    return None


def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            # feedparser normalises to a UTC struct_time.
            return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    return None
