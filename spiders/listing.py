"""The listing spider: an HTML section page, its article links, and its next pages.

For outlets with neither feed nor sitemap. The user says which links are
articles with a CSS or XPath selector (``links: "article h2 a"``); pagination
follows ``rel="next"`` (or the ``next`` selector) up to ``pages`` pages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from parsel import Selector
from scrapy.http import Response, TextResponse

from crawler.domain.config import is_xpath
from crawler.domain.failures import FailureClass
from crawler.domain.items import ArticleLink
from crawler.domain.script_pages import looks_script_built
from crawler.domain.urls import redact_url
from spiders.base import SourceSpider

logger = logging.getLogger(__name__)

DEFAULT_NEXT = "link[rel~=next], a[rel~=next]"


@dataclass(frozen=True, slots=True)
class ListingPage:
    links: tuple[ArticleLink, ...]
    next_url: str | None


def parse_listing(html: str, url: str, links: str, next_page: str | None = None) -> ListingPage:
    """The article links a section page holds and its next page, if any (pure)."""
    page = Selector(text=html)
    found: list[ArticleLink] = []
    for element in _select(page, links):
        href, text = _link_of(element)
        if href:
            found.append(ArticleLink(url=urljoin(url, href), title=text or None))
    next_url = None
    for element in _select(page, next_page or DEFAULT_NEXT):
        href, _text = _link_of(element)
        if href:
            next_url = urljoin(url, href)
            break
    return ListingPage(tuple(found), next_url)


def _select(page: Selector, selector: str) -> Any:
    return page.xpath(selector) if is_xpath(selector) else page.css(selector)


def _link_of(element: Selector) -> tuple[str | None, str]:
    """The href of the element, or of the first link inside it, and its text."""
    if isinstance(element.root, str):  # an XPath that selected an attribute or text
        return element.root.strip() or None, ""
    anchors = [element] if element.attrib.get("href") else element.css("a[href]")
    if not anchors:
        return None, ""
    anchor = anchors[0]
    href = anchor.attrib.get("href", "").strip()
    text = " ".join(" ".join(anchor.css("::text").getall()).split())
    return href or None, text


class ListingSpider(SourceSpider):
    """Polls a section page (and up to ``pages`` of its next pages) for article links."""

    kind = "listing"

    def first_request(self) -> Any:
        return self.index_request(self.source.url, self.parse_listing, conditional=True, depth=1)

    async def parse_listing(self, response: Response) -> AsyncIterator[Any]:
        depth = response.meta.get("depth", 1)
        if depth == 1 and not self.index_changed(response):
            return
        if not isinstance(response, TextResponse):
            self.fail(response.url, "not an HTML page", kind=FailureClass.UNPARSEABLE)
            return
        page = parse_listing(
            response.text, response.url, self.source.links or "a", self.source.next
        )
        if not page.links and depth == 1:
            # A rendered page with no links: its scripts ran, the selector is wrong.
            built = looks_script_built(response.text) if self.source.render == "http" else None
            advice = (
                f"; the page looks built by JavaScript ({built}): try render: browser"
                if built
                else ""
            )
            self.outcome.warnings.append(f"no links matched{advice}")
            logger.warning(
                "source %s: no links match %r on %s%s",
                self.source.name,
                self.source.links,
                redact_url(response.url),
                advice,
            )
        async for request in self.follow(page.links):
            yield request
        if page.next_url and depth < self.source.pages:
            yield self.index_request(
                page.next_url, self.parse_listing, conditional=False, depth=depth + 1
            )
