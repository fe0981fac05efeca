"""Which spider polls which kind of source (`sources[].feed`, `site`, `sitemap`,
`listing`): the one table a new source kind is added to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spiders.feeds import FeedSpider
from spiders.listing import ListingSpider
from spiders.sitemaps import SitemapSpider

if TYPE_CHECKING:
    from spiders.base import SourceSpider

SPIDERS: dict[str, type[SourceSpider]] = {
    "feed": FeedSpider,
    "site": FeedSpider,
    "sitemap": SitemapSpider,
    "listing": ListingSpider,
}
