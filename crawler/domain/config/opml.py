"""OPML, the outline format every feed reader imports and exports: reading a
reader's export into source entries (listparser), and writing newswatch's feed
sources as OPML 2.0 (what Miniflux, FreshRSS and NetNewsWire import). Pure
functions; the commands are `newswatch sources import` and `sources export`.

On import, each feed becomes a ``feed`` source named after its title; the folders it
sits in become its ``tags`` ("News/World" gives ``[news, world]``); a feed whose
canonical URL is already a source, or already earlier in the file, is skipped and
said so.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING
from xml.etree import ElementTree

import listparser

from crawler.domain.urls import canonicalize_url

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from crawler.domain.config.watch import SourceConfig

__all__ = ["ImportStep", "OpmlError", "OpmlFeed", "export_opml", "import_plan", "read_opml"]

MAX_NAME = 60


class OpmlError(ValueError):
    """A file that is not OPML, or holds no feed."""


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str
    folders: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportStep:
    """One feed of the file and what the import does with it: ``add`` (with the
    ``source`` entry to write) or ``skip`` (with ``reason``)."""

    feed: OpmlFeed
    action: str
    source: dict[str, object] = field(default_factory=dict)
    reason: str = ""


def read_opml(data: bytes) -> list[OpmlFeed]:
    """The feeds of an OPML document, in document order, with their folders."""
    parsed = listparser.parse(data)
    if not parsed.feeds:
        problem = f": {parsed.bozo_exception}" if parsed.bozo else ""
        raise OpmlError(f"no feed found in the file (is it OPML?){problem}")
    feeds = []
    for feed in parsed.feeds:
        folders: list[str] = next(iter(feed.categories), [])
        feeds.append(
            OpmlFeed(
                url=str(feed.url).strip(),
                title=" ".join(str(feed.title or "").split()),
                folders=tuple(" ".join(str(folder).split()) for folder in folders if folder),
            )
        )
    return feeds


def slug(text: str) -> str:
    """A source name from a feed's title: lower-case words joined by hyphens."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", plain.lower())
    return "-".join(words)[:MAX_NAME].strip("-")


def import_plan(
    feeds: Iterable[OpmlFeed], existing: Sequence[SourceConfig], every: str | None = None
) -> list[ImportStep]:
    """What importing ``feeds`` next to the ``existing`` sources does, feed by feed."""
    known = {canonicalize_url(source.url): source.name for source in existing}
    names = {source.name for source in existing}
    steps = []
    for feed in feeds:
        if not feed.url.startswith(("http://", "https://")):
            steps.append(ImportStep(feed, "skip", reason="not an http(s) feed URL"))
            continue
        key = canonicalize_url(feed.url)
        if key in known:
            steps.append(ImportStep(feed, "skip", reason=f"already a source: {known[key]}"))
            continue
        base = slug(feed.title) or slug(feed.url.split("//", 1)[1]) or "feed"
        name, number = base, 2
        while name in names:
            name, number = f"{base}-{number}", number + 1
        names.add(name)
        known[key] = name
        source: dict[str, object] = {"name": name, "feed": feed.url}
        if every:
            source["every"] = every
        tags = list(dict.fromkeys(slug(folder) for folder in feed.folders if slug(folder)))
        if tags:
            source["tags"] = tags
        steps.append(ImportStep(feed, "add", source))
    return steps


def export_opml(sources: Sequence[SourceConfig], now: datetime | None = None) -> bytes:
    """The feed sources as OPML 2.0, in nested folders by their tags."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = "newswatch sources"
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(
        now or datetime.now(UTC), usegmt=True
    )
    body = ElementTree.SubElement(root, "body")
    folders: dict[tuple[str, ...], ElementTree.Element] = {(): body}
    for source in sources:
        if source.kind != "feed":
            continue
        # The tags as nested folders: what an OPML import made of folders, given back.
        path: tuple[str, ...] = ()
        for tag in source.tags:
            parent, path = folders[path], (*path, tag)
            if path not in folders:
                folders[path] = ElementTree.SubElement(parent, "outline", text=tag, title=tag)
        ElementTree.SubElement(
            folders[path],
            "outline",
            {"type": "rss", "text": source.name, "title": source.name, "xmlUrl": source.url},
        )
    ElementTree.indent(root)
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        + ElementTree.tostring(root, encoding="utf-8")
        + b"\n"
    )
