"""Messages as they were sent: ``/view/<token>``, the "view in browser" link of an
email (a reader's signed link, as the readers' pages: ``web.public_url``'s host
only, rate-limited per client), and ``/digests/<id>``, the same copy for the
operator from the delivery history (behind the web token). ``?format=text`` gives
the text part. The HTML is served as sent, under the preview's CSP: no script, no
fetch, only its inline styles and images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alerts.feedback import LinkSigner, signing_key
from crawler.faces.web.actions import LINK_PATTERN, PAGE, RateLimiter, client_network
from crawler.faces.web.common import HTML, PREVIEW_CSP, TEXT, Reply
from crawler.faces.web.site import Route

if TYPE_CHECKING:
    from twisted.web.server import Request

    from crawler.faces.web.site import WebUI
    from crawler.storage.store import SentCopy

__all__ = ["SentMessages"]


class SentMessages:
    """The two ways to a sent message, over the site's store and configuration."""

    def __init__(self, site: WebUI) -> None:
        self.site = site
        self.limiter = RateLimiter()

    def routes(self) -> list[Route]:
        return [
            Route(rf"/view/{LINK_PATTERN}", self.reader_view, access="public"),
            Route(r"/digests/(?P<delivery>[0-9]{1,18})", self.operator_view),
        ]

    async def reader_view(self, request: Request, token: str) -> Reply:
        """The message a reader's link names, if the link is good and names its reader."""
        config = self.site.config
        address = getattr(request.getClientAddress(), "host", "unknown")
        if not self.limiter.allow(client_network(str(address)), config.feedback.rate_limit):
            return Reply(
                429, b"429 too many requests: try again in a minute\n", TEXT, {"Retry-After": "60"}
            )
        key = await self.site.blocking(signing_key, config, self.site.store)
        signer = LinkSigner(key, config.feedback.link_ttl)
        named = signer.read_view(token)
        copy = await self.site.blocking(self.site.store.sent_copy, named[0]) if named else None
        if named is None or (copy is not None and not signer.is_for(named[1], copy.recipient)):
            return self._page(
                "This link does not work",
                "The link is wrong or has expired (links work for a limited time).",
                403,
            )
        if copy is None:
            return self._page("Not kept", "This message is no longer kept.", 404)
        return self._copy(request, copy)

    async def operator_view(self, request: Request, delivery: str) -> Reply:
        copy = await self.site.blocking(self.site.store.sent_copy, int(delivery))
        if copy is None:
            return self.site.page(
                "web/message.html.j2",
                "Sent message",
                "/digests",
                status=404,
                message="No copy of this message is kept: it was not sent by email, "
                "not sent yet, sent before copies were kept, or older than retention.bodies.",
            )
        return self._copy(request, copy)

    def _copy(self, request: Request, copy: SentCopy) -> Reply:
        if self.site.arg(request, "format") == "text":
            return Reply(200, copy.text.encode(), TEXT)
        return Reply(200, copy.html.encode(), HTML, {"Content-Security-Policy": PREVIEW_CSP})

    def _page(self, heading: str, message: str, status: int) -> Reply:
        return self.site.page(
            PAGE, heading, "", status=status, heading=heading, message=message, forms=[], quote=""
        )
