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

from crawler.domain.config.values import _check_selector
from crawler.domain.urls import InvalidUrlError, canonicalize_url, source_url_problem

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from crawler.domain.config.watch import SourceConfig

__all__ = ["ImportStep", "OpmlError", "OpmlFeed", "export_opml", "import_plan", "read_opml"]

MAX_NAME = 60
FRESHRSS = "https://freshrss.org/opml"


class OpmlError(ValueError):
    """A file that is not OPML, or holds no feed."""


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str
    folders: tuple[str, ...] = ()
    # A FreshRSS "HTML + XPath" outline is a web page scraped by XPath, not a feed:
    # ``links`` is the XPath of its article links (a listing source); ``unsupported``
    # names another kind of outline newswatch cannot poll.
    links: str | None = None
    unsupported: str | None = None


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
    scraped = _freshrss_scraped(data)
    feeds = []
    for feed in parsed.feeds:
        folders: list[str] = next(iter(feed.categories), [])
        url = str(feed.url).strip()
        kind, links = scraped.get(url, ("", None))
        feeds.append(
            OpmlFeed(
                url=url,
                title=" ".join(str(feed.title or "").split()),
                folders=tuple(" ".join(str(folder).split()) for folder in folders if folder),
                links=links,
                unsupported=f"a FreshRSS {kind} outline" if kind and links is None else None,
            )
        )
    return feeds


def _freshrss_scraped(data: bytes) -> dict[str, tuple[str, str | None]]:
    """FreshRSS's scraped outlines by URL (listparser reads them as feeds): their
    ``type`` and, for "HTML+XPath", the XPath of their article links, made of
    ``frss:xPathItem`` (each item) and ``frss:xPathItemUri`` (its link, relative)."""
    try:
        root = ElementTree.fromstring(data)  # noqa: S314 - expat refuses entity bombs
    except ElementTree.ParseError:
        return {}
    found: dict[str, tuple[str, str | None]] = {}
    for outline in root.iter("outline"):
        kind = outline.get("type", "")
        url = (outline.get("xmlUrl") or "").strip()
        if not url or kind.lower() in ("", "rss", "atom", "link"):
            continue
        item = outline.get(f"{{{FRESHRSS}}}xPathItem", "").strip()
        uri = outline.get(f"{{{FRESHRSS}}}xPathItemUri", "").strip()
        links = None
        if kind == "HTML+XPath" and item:
            # "./h2/a/@href" below "//article" is "(//article)/h2/a/@href"; without
            # one, the item itself (a listing takes the first link inside it).
            links = f"({item}){uri[1:]}" if uri.startswith("./") else item
        found[url] = (kind, links)
    return found


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
        if (problem := _unusable(feed)) is not None:
            steps.append(ImportStep(feed, "skip", reason=problem))
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
        if feed.links is not None:
            source = {"name": name, "listing": feed.url, "links": feed.links}
        if every:
            source["every"] = every
        tags = list(dict.fromkeys(slug(folder) for folder in feed.folders if slug(folder)))
        if tags:
            source["tags"] = tags
        steps.append(ImportStep(feed, "add", source))
    return steps


def _unusable(feed: OpmlFeed) -> str | None:
    """Why an outline cannot become a source, or None."""
    if feed.unsupported:
        return f"{feed.unsupported}: newswatch cannot poll it"
    if not feed.url.startswith(("http://", "https://")):
        return "not an http(s) feed URL"
    if (problem := source_url_problem(feed.url)) is not None:
        return problem
    try:
        canonicalize_url(feed.url)
    except InvalidUrlError as error:
        return str(error)
    if feed.links is not None:
        try:
            _check_selector(feed.links)
        except ValueError as error:
            return f"its FreshRSS XPath cannot be used: {error}"
    return None


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
