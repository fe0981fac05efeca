"""Asking a WebSub hub to subscribe or unsubscribe: one form-encoded POST.

The hub's URL comes from a feed, so from whoever writes the feed: before any
request its host is looked up once, and every address it has is checked. A hub on
a loopback, private, link-local or reserved address is refused unless the feed's
own host is on such an address too (a hub in the feed's own trust zone, e.g. an
intranet's); ``fetch_policy`` (spiders/addresses.py) then refuses what it refuses
for a crawl. The POST connects to the address that was checked, not to the name
looked up again (a DNS server answering a public address first and a private one
next, "DNS rebinding", gains nothing); HTTPS still checks the certificate against
the hub's name. A redirect is not followed (a POST is never turned into a GET
elsewhere, and a redirect target would escape the check): it is reported like any
other refusal. No proxy is used. The POST blocks, so it runs in a worker thread;
the reactor never waits for a hub.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import urllib.parse
from typing import TYPE_CHECKING

from crawler.domain.urls import redact_url
from spiders.addresses import AddressPolicy, describe_non_public, resolve

if TYPE_CHECKING:
    from collections.abc import Mapping

    from spiders.addresses import IPAddress

# A hub's answer is read no further than this: only its status matters.
MAX_ANSWER_BYTES = 16 * 1024
HUB_TIMEOUT_SECONDS = 30.0


class HubError(Exception):
    """The hub did not take the request; the message says why (no secret in it)."""


def _host_and_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise HubError(f"{redact_url(url)}: its port cannot be read") from None
    return (parts.hostname or "").rstrip("."), port


async def _addresses(url: str, what: str) -> tuple[str, int, list[IPAddress]]:
    host, port = _host_and_port(url)
    try:
        return host, port, await resolve(host, port)
    except (OSError, UnicodeError) as error:
        raise HubError(
            f"{what} {redact_url(url)}: {host} could not be looked up "
            f"({getattr(error, 'strerror', None) or error})"
        ) from None


async def check_hub_address(hub: str, policy: AddressPolicy, *, feed: str) -> IPAddress:
    """The address to connect to for ``hub``, looked up once and checked: raise
    HubError when ``policy`` refuses one of its addresses, or one is not public
    while the host of ``feed`` (the source that advertised the hub) is."""
    host, port, addresses = await _addresses(hub, "hub")
    if not addresses:
        raise HubError(f"hub {redact_url(hub)}: {host} has no address")
    for address in addresses:
        reason = policy.refusal(address, port)
        if reason is not None:
            raise HubError(f"refused by fetch_policy: hub {redact_url(hub)}: {host} is {reason}")
    hidden = [(a, describe_non_public(a)) for a in addresses if describe_non_public(a)]
    if hidden:
        try:
            _feed_host, _feed_port, feed_addresses = await _addresses(feed, "feed")
        except HubError:
            feed_addresses = []
        if not feed_addresses or not all(describe_non_public(a) for a in feed_addresses):
            raise HubError(
                f"refused: hub {redact_url(hub)}: {host} is {hidden[0][1]}, "
                "and the feed that names it is not on such an address"
            )
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a checked address, whatever the host name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is checked against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        plain = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(plain, server_hostname=self.host)  # type: ignore[attr-defined]


def post_to_hub(
    hub: str,
    form: Mapping[str, str],
    *,
    address: str,
    user_agent: str,
    timeout: float = HUB_TIMEOUT_SECONDS,
) -> int:
    """POST ``form`` to ``hub`` at ``address``; return the 2xx status, or raise
    HubError (blocking)."""
    parts = urllib.parse.urlsplit(hub)
    host, port = _host_and_port(hub)
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = kind(host, port, address, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(
            "POST",
            path,
            body=urllib.parse.urlencode(form).encode("ascii"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": user_agent,
            },
        )
        answer = connection.getresponse()
        answer.read(MAX_ANSWER_BYTES)
    except (http.client.HTTPException, OSError) as error:
        reason = getattr(error, "strerror", None) or error
        raise HubError(f"hub {redact_url(hub)} could not be reached: {reason}") from None
    finally:
        connection.close()
    if not 200 <= answer.status < 300:
        # Not its body: a hub may echo the request, and with it the secret.
        raise HubError(f"hub {redact_url(hub)} answered HTTP {answer.status}")
    return int(answer.status)


async def ask_hub(
    hub: str, form: Mapping[str, str], *, policy: AddressPolicy, feed: str, user_agent: str
) -> int:
    """Check the hub's address (``check_hub_address``), then POST ``form`` to that
    address in a thread."""
    address = await check_hub_address(hub, policy, feed=feed)
    return await asyncio.to_thread(
        post_to_hub, hub, form, address=str(address), user_agent=user_agent
    )
