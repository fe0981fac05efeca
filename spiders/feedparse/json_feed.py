"""JSON Feed 1.0/1.1, which feedparser does not read: the document to a ParsedFeed."""

from __future__ import annotations

import json
import re
from typing import Any

from spiders.feedparse.fields import (
    _clean_text,
    _html_to_text,
    _is_absolute_web_url,
    _made_up_id,
    _parse_date_text,
    _web_link,
)
from spiders.feedparse.model import FeedEntry, FeedError, ParsedFeed

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
        raise FeedError(
            "not a feed: a JSON document that is not a JSON Feed "
            "(no https://jsonfeed.org/version/ in 'version')"
        )
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
        hub=_web_link(_hub_urls(document.get("hubs")), url) or None,
        self_url=_web_link([document.get("feed_url")], url) or None,
    )


def _hub_urls(hubs: Any) -> list[Any]:
    """The URLs of a JSON Feed's ``hubs`` (objects with ``type`` and ``url``)."""
    if not isinstance(hubs, list):
        return []
    return [hub.get("url") for hub in hubs if isinstance(hub, dict)]


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
    summary = (
        _clean_text(item.get("summary"))
        or _clean_text(item.get("content_text"))
        or _html_to_text(item.get("content_html"))
    )
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
