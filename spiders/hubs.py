"""Asking a WebSub hub to subscribe or unsubscribe: one form-encoded POST.

The hub's address is checked against ``fetch_policy`` first, as a crawl's requests
are (spiders/addresses.py): a feed cannot make newswatch POST to the machine
itself or the local network when the policy denies it. A redirect is not followed
(a POST is never turned into a GET elsewhere, and a redirect target would escape
that check): it is reported like any other refusal. The POST blocks (urllib), so
it runs in a worker thread; the reactor never waits for a hub.
"""

from __future__ import annotations

import asyncio
import http.client
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from crawler.domain.urls import redact_url
from spiders.addresses import AddressPolicy, resolve

if TYPE_CHECKING:
    from collections.abc import Mapping

# A hub's answer is read no further than this: only its status matters.
MAX_ANSWER_BYTES = 16 * 1024
HUB_TIMEOUT_SECONDS = 30.0


class HubError(Exception):
    """The hub did not take the request; the message says why (no secret in it)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


async def check_hub_address(hub: str, policy: AddressPolicy) -> None:
    """Raise HubError when ``policy`` refuses the hub's host (or it cannot be looked up
    while the policy denies anything)."""
    if not policy.deny_private and not policy.networks:
        return
    parts = urllib.parse.urlsplit(hub)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise HubError(f"hub {redact_url(hub)}: its port cannot be read") from None
    host = (parts.hostname or "").rstrip(".")
    try:
        addresses = await resolve(host, port)
    except (OSError, UnicodeError) as error:
        raise HubError(
            f"refused by fetch_policy: hub {redact_url(hub)}: {host} could not be looked up "
            f"to check it ({getattr(error, 'strerror', None) or error})"
        ) from None
    for address in addresses:
        reason = policy.refusal(address, port)
        if reason is not None:
            raise HubError(f"refused by fetch_policy: hub {redact_url(hub)}: {host} is {reason}")


def post_to_hub(
    hub: str, form: Mapping[str, str], *, user_agent: str, timeout: float = HUB_TIMEOUT_SECONDS
) -> int:
    """POST ``form`` to ``hub``; return the 2xx status, or raise HubError (blocking)."""
    request = urllib.request.Request(  # noqa: S310 (an http(s) URL: HubLinks.usable)
        hub,
        data=urllib.parse.urlencode(form).encode("ascii"),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": user_agent},
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as answer:
            answer.read(MAX_ANSWER_BYTES)
            return int(answer.status)
    except urllib.error.HTTPError as error:
        # Not its body: a hub may echo the request, and with it the secret.
        raise HubError(f"hub {redact_url(hub)} answered HTTP {error.code}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise HubError(f"hub {redact_url(hub)} could not be reached: {reason}") from None


async def ask_hub(
    hub: str, form: Mapping[str, str], *, policy: AddressPolicy, user_agent: str
) -> int:
    """Check the hub's address against ``policy``, then POST ``form`` in a thread."""
    await check_hub_address(hub, policy)
    return await asyncio.to_thread(post_to_hub, hub, form, user_agent=user_agent)
