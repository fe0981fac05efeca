"""The sitemap spider: sitemaps, sitemap indexes and Google News sitemaps.

News sites that publish no feed almost always publish a sitemap for search
engines, often a Google News one with each article's publication date and title.
The spider reads it newest first and follows only what falls inside the source's
lookback window (``max_age``).
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil import parser as date_parser
from lxml import etree
from scrapy.http import Response
from scrapy.utils.gz import gunzip

from crawler.domain.failures import FailureClass
from crawler.domain.items import ArticleLink
from spiders.base import SourceSpider
from spiders.failures import BotChallengeError
from spiders.feedparse import aware_utc, is_crawlable_url

logger = logging.getLogger(__name__)

# Child sitemaps of an index followed per poll, newest first.
MAX_CHILD_SITEMAPS = 10


class SitemapError(Exception):
    """The document is not a sitemap newswatch can read; the message says why."""


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    url: str
    lastmod: datetime | None = None
    published: datetime | None = None  # news:publication_date
    title: str | None = None  # news:title

    @property
    def moment(self) -> datetime | None:
        return self.published or self.lastmod


@dataclass(frozen=True, slots=True)
class Sitemap:
    is_index: bool
    entries: tuple[SitemapEntry, ...]


def parse_sitemap(body: bytes, max_size: int = 50 * 1024 * 1024) -> Sitemap:
    """Read a ``<urlset>`` or ``<sitemapindex>`` (gzipped or not); pure, no network.

    Entities are never resolved and no DTD is loaded, so a hostile sitemap cannot
    read local files or expand itself into gigabytes; a gzipped one is read up to
    ``max_size`` bytes. Only entries whose ``<loc>`` is an absolute http(s) URL the
    spider can request are kept (the protocol allows no other). Raises SitemapError,
    and nothing else, when the body is not a readable sitemap.
    """
    if body[:2] == b"\x1f\x8b":
        try:
            body = gunzip(body, max_size=max_size)
        # A truncated stream ends in EOFError, or struct.error in its trailer; corrupt
        # deflate data is a zlib.error; a body that grows past max_size a ValueError.
        except (OSError, EOFError, ValueError, zlib.error, struct.error) as error:
            raise SitemapError(f"not a readable gzip file: {error}") from None
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        recover=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
    )
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as error:
        raise SitemapError(f"not a sitemap: {error}") from error
    if root is None:
        raise SitemapError("not a sitemap: the document is empty or not XML")
    kind = _local(root)
    if kind not in ("urlset", "sitemapindex"):
        raise SitemapError(f"not a sitemap: the root element is <{kind}>")
    child = "sitemap" if kind == "sitemapindex" else "url"
    entries = [
        entry for node in root if _local(node) == child if (entry := _entry(node)) is not None
    ]
    return Sitemap(is_index=kind == "sitemapindex", entries=tuple(entries))


def recent_first(
    entries: Sequence[SitemapEntry], max_age: timedelta, now: datetime
) -> list[SitemapEntry]:
    """Entries newer than ``max_age``, newest first; undated entries are kept, last."""
    cutoff = now - max_age
    dated = sorted(
        (e for e in entries if e.moment is not None and e.moment >= cutoff),
        key=lambda e: e.moment,  # type: ignore[arg-type, return-value]
        reverse=True,
    )
    return [*dated, *(e for e in entries if e.moment is None)]


def _entry(node: Any) -> SitemapEntry | None:
    fields: dict[str, str] = {}
    for element in node.iter():
        if element is node or not isinstance(element.tag, str):
            continue
        name = _local(element)
        if name in ("loc", "lastmod", "publication_date", "title") and (text := _text(element)):
            fields.setdefault(name, text.strip())
    if not fields.get("loc") or not is_crawlable_url(fields["loc"]):
        return None
    return SitemapEntry(
        url=fields["loc"],
        lastmod=_parse_time(fields.get("lastmod")),
        published=_parse_time(fields.get("publication_date")),
        title=fields.get("title"),
    )


def _text(element: Any) -> str | None:
    """The element's text; None for text a recovering parse kept but cannot decode
    (a character reference to a lone surrogate, ``&#xD800;``)."""
    try:
        return element.text
    except UnicodeDecodeError:
        return None


def _local(element: Any) -> str:
    """The element's name without namespace or prefix. Not etree.QName, which
    refuses the names a recovering parse can give, such as ``ur:newrlsh`` (an
    undeclared prefix kept in the name)."""
    if not isinstance(element.tag, str):
        return ""
    return element.tag.rpartition("}")[2].rpartition(":")[2]


def _parse_time(value: str | None) -> datetime | None:
    """W3C datetime (or anything dateutil reads) to aware UTC; junk, and times outside
    the years aware_utc accepts, give None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = date_parser.parse(value)
        except (ValueError, OverflowError):
            return None
    return aware_utc(moment)


class SitemapSpider(SourceSpider):
    """Polls a sitemap (or index) and follows the recent article URLs in it."""

    kind = "sitemap"

    def first_request(self) -> Any:
        return self.index_request(self.source.url, self.parse_root, conditional=True)

    async def parse_root(self, response: Response) -> AsyncIterator[Any]:
        if not self.index_changed(response):
            return
        async for output in self.parse_sitemap(response):
            yield output

    async def parse_sitemap(self, response: Response) -> AsyncIterator[Any]:
        max_size = self.settings.getint("DOWNLOAD_MAXSIZE")
        try:
            sitemap = await self.context.parse(parse_sitemap, response.body, max_size)
        except SitemapError as error:
            if response.meta.get("child_of"):
                self.outcome.page_errors += 1
                logger.warning(
                    "source %s: sitemap %s skipped: %s", self.source.name, response.url, error
                )
            else:
                self.outcome.state = None
                self.fail(response.url, str(error), kind=FailureClass.UNPARSEABLE)
            return
        recent = recent_first(sitemap.entries, self.source.max_age, datetime.now(UTC))
        if sitemap.is_index:
            for entry in recent[:MAX_CHILD_SITEMAPS]:
                yield self.index_request(
                    entry.url, self.parse_sitemap, conditional=False, child_of=response.url
                )
            return
        links = [ArticleLink(e.url, e.title, e.published, e.lastmod) for e in recent]
        async for request in self.follow(links):
            yield request

    def index_failed(self, failure: Any) -> None:
        request = failure.request
        if request.meta.get("child_of"):
            self.outcome.page_errors += 1
            if failure.check(BotChallengeError):
                self.note_challenge(failure.value)
            logger.warning(
                "source %s: sitemap %s failed: %s",
                self.source.name,
                request.url,
                self.describe(failure),
            )
            return
        super().index_failed(failure)
