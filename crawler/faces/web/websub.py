"""The WebSub callbacks: ``/websub/<callback id>``, where hubs verify newswatch's
subscriptions (GET) and deliver their feeds (POST) (crawler/orchestration/websub.py).

Hubs have no web token: the unguessable id in the path finds the subscription, and
a delivery counts only when signed with that subscription's secret. Like the
readers' pages, the callbacks answer only to ``web.public_url``'s host (the one in
the callback URL hubs were given). Each subscription's callback may be asked
``websub.rate_limit`` times a minute (429 past it): counted by callback id, not by
the client's address, which behind a reverse proxy is the proxy's for every hub. A
delivery's subscription is looked up first (an unknown id is answered 404, a
subscription no longer active 410, its body unread); then its Content-Length is
checked against ``download_maxsize`` (a feed's size; 413 past it), and only then is
the body read, for its signature only.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet.defer import Deferred

from crawler.domain.urls import redact_text
from crawler.faces.web.actions import POSTING, RateLimiter, client_network
from crawler.faces.web.common import MAX_ERROR_CHARS, MAX_URL_CHARS, TEXT, Reply, one_line
from crawler.faces.web.site import READING, Route

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from datetime import datetime

    from twisted.web.server import Request

    from crawler.faces.web.site import WebUI
    from crawler.orchestration.websub import WebSubSubscriber
    from crawler.storage.store import WebSubRecord

T = TypeVar("T")

# The request line's path prefix of every callback (the body limit is chosen by it).
CALLBACK_PREFIX = b"/websub/"
# A hub's challenge is echoed back as it came; longer ones are refused.
MAX_CHALLENGE_CHARS = 1024
MAX_PARAMETER_CHARS = 4096
ANSWERS = {
    404: b"404 not found\n",
    410: b"410 gone: no active subscription here\n",
    413: b"413 request body too large\n",
}


class WebSubCallbacks:
    """The callbacks, over the site's configuration and the service's subscriber."""

    def __init__(self, site: WebUI, subscriber: WebSubSubscriber) -> None:
        self.site = site
        self.subscriber = subscriber
        self.limiter = RateLimiter()

    def routes(self) -> list[Route]:
        return [
            Route(
                r"/websub/(?P<callback_id>[A-Za-z0-9_\-]{16,64})",
                self.callback,
                READING | POSTING,
                access="public",
            )
        ]

    async def callback(self, request: Request, callback_id: str) -> Reply:
        if not self.limiter.allow(callback_id, self.site.config.websub.rate_limit):
            return Reply(
                429, b"429 too many requests: try again in a minute\n", TEXT, {"Retry-After": "60"}
            )
        if request.method == b"POST":
            address = getattr(request.getClientAddress(), "host", "unknown")
            signature = request.getHeader(b"x-hub-signature")
            status = await _on_reactor(
                self.subscriber.receive_push(
                    callback_id,
                    lambda: self._body(request),
                    signature.decode("latin-1") if signature is not None else None,
                    client_network(str(address)),  # for the log line only
                )
            )
            return Reply(status, ANSWERS.get(status, b""), TEXT)
        challenge = _parameter(request, "hub.challenge") or ""  # none in a denial
        if len(challenge) > MAX_CHALLENGE_CHARS:
            return Reply(404, ANSWERS[404], TEXT)
        answer = await _on_reactor(
            self.subscriber.verify_intent(
                callback_id,
                mode=_parameter(request, "hub.mode") or "",
                topic=_parameter(request, "hub.topic") or "",
                challenge=challenge,
                lease_seconds=_parameter(request, "hub.lease_seconds"),
                reason=_parameter(request, "hub.reason"),
            )
        )
        if answer is None:
            return Reply(404, ANSWERS[404], TEXT)
        return Reply(200, answer.encode("utf-8"), TEXT)

    def _body(self, request: Request) -> bytes | None:
        """The delivery's body, or None when it is longer than a feed may be (by its
        Content-Length, checked before anything is read)."""
        cap = self.site.config.download_maxsize
        declared = (request.getHeader(b"content-length") or b"0").strip()
        if not declared.isdigit() or int(declared) > cap:
            return None
        if getattr(request, "body_too_large", False):
            return None
        if request.content is None:
            return b""
        request.content.seek(0)
        body: bytes = request.content.read(cap + 1)
        return body if len(body) <= cap else None


def subscription_view(
    record: WebSubRecord | None, when: Callable[[datetime | None], str]
) -> dict[str, Any] | None:
    """What a source's page shows of its subscription: never the secret, nor the
    callback (its id is what a delivery needs besides the signature)."""
    if record is None:
        return None
    return {
        "hub": one_line(record.hub, MAX_URL_CHARS),
        "topic": one_line(record.topic, MAX_URL_CHARS),
        "state": record.state.value,
        "verified": when(record.verified_at),
        "lease_expires": when(record.lease_expires_at),
        "last_push": when(record.last_push_at),
        "pushes": record.pushes,
        "refused": record.refused,
        "error": one_line(redact_text(record.last_error or ""), MAX_ERROR_CHARS),
    }


def _parameter(request: Request, name: str) -> str | None:
    values = request.args.get(name.encode(), [])
    if not values:
        return None
    return values[0].decode("utf-8", errors="replace")[:MAX_PARAMETER_CHARS]


async def _on_reactor(work: Coroutine[Any, Any, T]) -> T:
    """Await an asyncio coroutine from a twisted.web handler (which awaits Deferreds)."""
    result: T = await Deferred.fromFuture(asyncio.ensure_future(work))
    return result
