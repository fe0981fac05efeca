"""Refuse requests to addresses a crawl must not reach (``fetch_policy`` in the config).

When the configuration comes from people less trusted than the machine's owner, a
"news source" can point at the machine itself (the service's own web UI, a
database or admin port on loopback), at the local network, or at a cloud metadata
address (169.254.169.254), and newswatch would fetch it and show what it got in
the status page and the digests. With ``fetch_policy.deny_private_addresses`` on,
this downloader middleware resolves the host of every request (the index, every
article, every redirect target, robots.txt) and refuses it when one of the
addresses is not a public one or is the service's own web address;
``fetch_policy.deny_networks`` refuses further networks, on or off.

A refused request fails with ``IgnoreRequest``; its message names the URL and the
reason, and the spider logs it as one line like any failed request. The other
sources go on. The check fails closed: a host whose addresses cannot be looked up
is refused too (a policy that cannot tell where a request goes does not let it
go), and a host's trailing dot (``127.0.0.1.``, ``localhost.``) is dropped first,
so that it cannot hide an address from the check.

Limits: the check resolves the name when the request is about to be sent, and
Scrapy resolves it again to connect. A DNS server that answers a public address
the first time and a private one the second ("DNS rebinding") gets through; where
that matters, a firewall rule for the service's user is the complete answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest, NotConfigured

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Request

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Bind addresses meaning "every interface": the web UI is then reachable at each of
# the machine's own addresses.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not a bind


def parse_address(text: str) -> IPAddress:
    """An IP address; IPv6 scope ids dropped, IPv4-mapped IPv6 read as the IPv4."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def describe_non_public(address: IPAddress) -> str | None:
    """What kind of non-public address ``address`` is, or None for a public one."""
    for kind, test in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
    ):
        if test:
            return f"a {kind} address"
    return None if address.is_global else "a non-public address"


class AddressPolicy:
    """Decides, address by address, what a crawl may connect to (pure, no DNS)."""

    def __init__(
        self,
        *,
        deny_private: bool,
        networks: Iterable[str] = (),
        own_web: Iterable[tuple[IPAddress, int]] = (),
    ) -> None:
        self.deny_private = deny_private
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in networks
        )
        self.own_web = frozenset(own_web)

    def refusal(self, address: IPAddress, port: int) -> str | None:
        """Why ``address:port`` is refused (e.g. "a loopback address"), or None."""
        for network in self.networks:
            if address.version == network.version and address in network:
                return f"in fetch_policy.deny_networks ({network})"
        if not self.deny_private:
            return None
        if (address, port) in self.own_web:
            return f"newswatch's own web UI (port {port})"
        return describe_non_public(address)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the host itself if it is an address; a
    trailing dot, the DNS root, is dropped first). OSError when the lookup fails."""
    host = host.rstrip(".") or host
    try:
        return [parse_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(parse_address(str(info[4][0])) for info in found))


class AddressPolicyMiddleware:
    """Downloader middleware: refuses each request whose host has a denied address.

    Settings: ``NEWSWATCH_DENY_PRIVATE_ADDRESSES`` (bool), ``NEWSWATCH_DENY_NETWORKS``
    (list of CIDR strings) and ``NEWSWATCH_WEB_ADDRESS`` ((host, port) of the web UI,
    or None). Disabled when nothing is denied.
    """

    def __init__(
        self,
        *,
        deny_private: bool,
        networks: Iterable[str] = (),
        web_address: tuple[str, int] | None = None,
    ) -> None:
        self._deny_private = deny_private
        self._networks = tuple(networks)
        self._web_address = web_address
        self._policy: AddressPolicy | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressPolicyMiddleware:
        settings = crawler.settings
        deny_private = settings.getbool("NEWSWATCH_DENY_PRIVATE_ADDRESSES")
        networks = settings.getlist("NEWSWATCH_DENY_NETWORKS")
        if not deny_private and not networks:
            raise NotConfigured  # no message: Scrapy would log one at every poll
        web = settings.get("NEWSWATCH_WEB_ADDRESS")
        return cls(
            deny_private=deny_private,
            networks=networks,
            web_address=(str(web[0]), int(web[1])) if web else None,
        )

    async def policy(self) -> AddressPolicy:
        """The policy, with the web UI's own addresses resolved once per crawl."""
        if self._policy is None:
            own: list[tuple[IPAddress, int]] = []
            if self._deny_private and self._web_address is not None and self._web_address[1]:
                host, port = self._web_address
                name = socket.gethostname() if host in WILDCARD_HOSTS else host
                try:
                    own = [(address, port) for address in await resolve(name, port)]
                except OSError:
                    own = []  # unresolvable: the private-address rule still applies
            self._policy = AddressPolicy(
                deny_private=self._deny_private, networks=self._networks, own_web=own
            )
        return self._policy

    async def process_request(self, request: Request) -> None:
        try:
            parts = urlsplit(request.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a port out of range, a broken IPv6 host
            raise IgnoreRequest(
                f"refused by fetch_policy: {request.url}: not a usable "
                "URL (its host or port cannot be read)"
            ) from None
        host = parts.hostname
        if not host:
            return  # Scrapy refuses a URL without a host by itself
        host = host.rstrip(".") or host  # "127.0.0.1." is 127.0.0.1
        try:
            addresses = await resolve(host, port)
        except (OSError, UnicodeError) as error:
            # Fail closed: where the request would go is unknown, so it does not go.
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            raise IgnoreRequest(
                f"refused by fetch_policy: {request.url}: the addresses of "
                f"{host} could not be looked up to check them ({reason})"
            ) from None
        if not addresses:
            raise IgnoreRequest(
                f"refused by fetch_policy: {request.url}: {host} has no address to check"
            )
        policy = await self.policy()
        for address in addresses:
            reason = policy.refusal(address, port)
            if reason is None:
                continue
            where = (
                f"{host} is {reason}"
                if host == str(address)
                else f"{host} resolves to {address}, {reason}"
            )
            raise IgnoreRequest(f"refused by fetch_policy: {request.url}: {where}")
