"""The WebSub callbacks: ``/websub/<callback id>``, where hubs verify newswatch's
subscriptions (GET) and deliver their feeds (POST) (crawler/orchestration/websub.py).

Hubs have no web token: the unguessable id in the path finds the subscription, and
a delivery counts only when signed with that subscription's secret. Like the
readers' pages, the callbacks answer only to ``web.public_url``'s host (the one in
the callback URL hubs were given) and each client may ask ``websub.rate_limit``
times a minute (429 past it). A delivery's body may be as large as a feed
(``download_maxsize``, crawler/faces/web/server.py); it is read for its signature
only.
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
ANSWERS = {404: b"404 not found\n", 410: b"410 gone: no active subscription here\n"}


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
        address = getattr(request.getClientAddress(), "host", "unknown")
        client = client_network(str(address))
        if not self.limiter.allow(client, self.site.config.websub.rate_limit):
            return Reply(
                429, b"429 too many requests: try again in a minute\n", TEXT, {"Retry-After": "60"}
            )
        if request.method == b"POST":
            body = b""
            if request.content is not None:
                request.content.seek(0)
                body = request.content.read()
            signature = request.getHeader(b"x-hub-signature")
            status = await _on_reactor(
                self.subscriber.receive_push(
                    callback_id,
                    body,
                    signature.decode("latin-1") if signature is not None else None,
                    client,
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
