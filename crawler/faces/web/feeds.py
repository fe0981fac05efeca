"""The web UI's private feeds: ``/feeds/<token>`` (``?rule=NAME``: one rule's).

A feed reader cannot send the web UI's bearer token, so the URL is the credential:
its token is an HMAC of (channel, recipient) under the service's key, compared in
constant time with every feed of the configuration. A wrong token gets the very
answer an unknown path gets. Readers should cache (``private``) and ask again with
``If-None-Match`` / ``If-Modified-Since``: an unchanged feed is a 304 without a body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING

from alerts.atom import ATOM, read_feed
from alerts.feed_channel import feed_url, find_feed
from crawler.faces.web.common import Reply
from crawler.faces.web.site import Route
from crawler.storage.store import LINK_SIGNING_KEY

if TYPE_CHECKING:
    from twisted.web.server import Request

    from alerts.atom import RenderedFeed
    from crawler.faces.web.site import WebUI

# Readers may keep a copy but must ask again (cheaply: a 304) before using it.
FEED_CACHE_CONTROL = "private, no-cache"


class Feeds:
    """The private feeds, over the site's store, configuration and threads."""

    def __init__(self, site: WebUI) -> None:
        self.site = site
        self._key: bytes | None = None  # made once and never changed: read once

    def routes(self) -> list[Route]:
        return [Route(r"/feeds/(?P<token>[^/]+)", self.feed_page, access="link")]

    async def feed_page(self, request: Request, token: str) -> Reply:
        if self._key is None:
            self._key = await self.site.blocking(self.site.store.service_key, LINK_SIGNING_KEY)
        config = self.site.config
        address = find_feed(config, self._key, token)
        rule = self.site.arg(request, "rule").strip() or None
        if address is None or (rule is not None and rule not in address.recipient.rules):
            return self.site.page(
                "web/message.html.j2",
                "Not found",
                "/feeds",
                status=404,
                message="There is no page at this address.",
            )
        feed: RenderedFeed = await self.site.blocking(
            read_feed, self.site.store, config, address, feed_url(config, address.token, rule), rule
        )
        headers = {"ETag": feed.etag, "Cache-Control": FEED_CACHE_CONTROL}
        if feed.last_modified is not None:
            headers["Last-Modified"] = format_datetime(feed.last_modified, usegmt=True)
        if is_not_modified(request, feed):
            return Reply(304, b"", ATOM, headers)
        return Reply(200, feed.body, ATOM, headers)


def is_not_modified(request: Request, feed: RenderedFeed) -> bool:
    """Whether the reader's copy is current (RFC 9110 §13.1): ``If-None-Match``
    (a list, weak tags compared weakly, ``*``) when sent, else ``If-Modified-Since``
    against the newest entry's time (to the second)."""
    tags = request.requestHeaders.getRawHeaders(b"if-none-match")
    if tags:
        offered = [
            tag.strip().removeprefix("W/")
            for header in tags
            for tag in header.decode("latin-1").split(",")
        ]
        return "*" in offered or feed.etag in offered
    since = request.getHeader(b"if-modified-since")
    if since is None or feed.last_modified is None:
        return False
    try:
        when = parsedate_to_datetime(since.decode("latin-1"))
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as the RFC says
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return feed.last_modified.replace(microsecond=0) <= when <= datetime.now(UTC)
