"""Requests through a SOCKS proxy (``proxy: socks5://…``, crawler/domain/config/access.py).

Scrapy's own HTTP/1.1 handler speaks to http(s) proxies only. A request whose proxy
is a SOCKS one goes to Scrapy's httpx handler instead (experimental in Scrapy 2.19;
httpx2 with socksio speaks SOCKS version 5, with or without a user and password, and
sends the site's name for the proxy to look up). ``SocksDownloadHandler`` is Scrapy's
HTTP/1.1 handler for every other request, so that a crawl serving several sources
(a scale-out worker) changes nothing for those without one; the httpx handler (and
httpx itself) is only loaded when a SOCKS request comes.

What Scrapy's HTTP/1.1 handler does and the httpx handler does differently is made
the same here: ``download_timeout`` bounds the whole download, not each read (a
server that drips a byte every few seconds would otherwise hold a poll), and its
failures say in one line whether the proxy refused the connection or the login, or
could not reach the site (``SocksProxyError``). The rest it honours itself:
DOWNLOAD_MAXSIZE and DOWNLOAD_WARNSIZE, DOWNLOAD_VERIFY_CERTIFICATES (off, as for
the HTTP/1.1 handler), DOWNLOAD_FAIL_ON_DATALOSS, and ``download_latency`` (the
time to the response's headers, which AutoThrottle reads).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
)

from crawler.domain.config.access import is_socks_proxy
from crawler.domain.urls import split_userinfo
from spiders.failures import SocksProxyError, SocksProxyLookupError

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

# httpcore2's DEBUG lines show the arguments of each SOCKS handshake, the proxy's user
# and password among them: never below INFO (the CLI's logging says the same).
logging.getLogger("httpcore2").setLevel(logging.INFO)


class _ExperimentalSaidOnce(logging.Filter):
    """Drops Scrapy's warning that its httpx handler is experimental: it would come
    with every poll of a SOCKS source (one crawl each), and the README says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is experimental" not in record.getMessage()


logging.getLogger("scrapy.core.downloader.handlers._base_streaming").addFilter(
    _ExperimentalSaidOnce()
)

# A crawl's download handlers when its requests may go through a SOCKS proxy.
SOCKS_HANDLERS = {
    "http": "spiders.socks.SocksDownloadHandler",
    "https": "spiders.socks.SocksDownloadHandler",
}
HTTPX_HANDLER = "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler"
# httpcore's words for what a SOCKS5 proxy answered (RFC 1928, 1929), and ours.
_NO_LOGIN_WANTED = "Requested NO AUTHENTICATION REQUIRED"
_LOGIN_WANTED = "Requested USERNAME/PASSWORD"
_BAD_LOGIN = "Invalid username/password"
_NOT_REACHED = "Proxy Server could not connect: "


def through_socks(request: Request) -> bool:
    """True when ``request`` is to go through a SOCKS proxy."""
    return is_socks_proxy(request.meta.get("proxy"))


class SocksRoute:
    """Scrapy's httpx handler for the requests through a SOCKS proxy, made on first use
    (it logs that it is experimental then, once per crawl)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._handler: Any = None

    async def download(self, request: Request) -> Response:
        """The response, within ``download_timeout`` as a whole; a failure is raised as
        the Scrapy error it is, with a message that names the proxy and what it did."""
        if self._handler is None:
            from scrapy.utils.misc import build_from_crawler, load_object

            self._handler = build_from_crawler(load_object(HTTPX_HANDLER), self.crawler)
        timeout = float(request.meta.get("download_timeout") or 180)
        proxy = proxy_address(request.meta["proxy"])
        try:
            async with asyncio.timeout(timeout):
                response: Response = await self._handler.download_request(request)
                return response
        except TimeoutError:
            raise DownloadTimeoutError(
                f"getting {request.url} through the SOCKS proxy {proxy} took longer than "
                f"{timeout:g} seconds"
            ) from None
        except (
            CannotResolveHostError,
            DownloadConnectionRefusedError,
            DownloadFailedError,
            DownloadTimeoutError,
        ) as error:
            raise socks_failure(error, proxy, request.url) from error

    async def close(self) -> None:
        if self._handler is not None:
            await self._handler.close()


def proxy_address(proxy: str) -> str:
    """``host:port`` of a proxy URL: how messages name it (never with its login)."""
    return urlsplit(split_userinfo(proxy)[0]).netloc


def socks_failure(error: Exception, proxy: str, url: str) -> Exception:
    """The one-line failure a poll reports for ``error``, which the httpx handler
    raised for ``url`` through the SOCKS proxy at ``proxy`` (host:port)."""
    causes = _causes(error)
    names = {type(cause).__name__ for cause in causes}
    said = str(error.__cause__ or error)
    if isinstance(error, DownloadTimeoutError):
        if "ConnectTimeout" in names:
            return DownloadTimeoutError(f"no answer from the SOCKS proxy {proxy}")
        return DownloadTimeoutError(
            f"getting {url} through the SOCKS proxy {proxy} took longer than download_timeout"
        )
    if "ProxyError" in names:
        if said.startswith(_NO_LOGIN_WANTED):
            return SocksProxyError(
                f"the SOCKS proxy {proxy} wants a user name and password: put them in "
                "the proxy URL, in the variable proxy_env names"
            )
        if said.startswith(_LOGIN_WANTED):
            return SocksProxyError(
                f"the SOCKS proxy {proxy} takes no user name and password: give its URL "
                "without them"
            )
        if said.startswith(_BAD_LOGIN):
            return SocksProxyError(f"the SOCKS proxy {proxy} refused the user name and password")
        if said.startswith(_NOT_REACHED):
            why = said.removeprefix(_NOT_REACHED).rstrip(".").lower()
            return SocksProxyError(f"the SOCKS proxy {proxy} could not reach the site: {why}")
        return SocksProxyError(f"the SOCKS proxy {proxy} failed: {said}")
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        return SocksProxyLookupError(
            f"the SOCKS proxy's host does not resolve ({proxy}): DNS lookup failed"
        )
    if "ConnectError" in names:
        refused = any(isinstance(cause, ConnectionRefusedError) for cause in causes)
        why = "connection refused" if refused else " ".join(said.split()).rstrip(".")
        return SocksProxyError(f"cannot connect to the SOCKS proxy {proxy}: {why}")
    if "ProtocolError" in names and any(
        type(cause).__module__.startswith("socksio") for cause in causes
    ):
        return SocksProxyError(f"the SOCKS proxy {proxy} does not answer as a SOCKS5 proxy")
    return error


def _causes(error: BaseException) -> list[BaseException]:
    causes: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(causes) < 8:
        causes.append(current)
        current = current.__cause__ or current.__context__
    return causes


class SocksDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, but for the requests through a SOCKS proxy, which go
    to Scrapy's httpx handler (``SocksRoute``)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.socks = SocksRoute(crawler)

    async def download_request(self, request: Request) -> Response:
        if through_socks(request):
            return await self.socks.download(request)
        return await super().download_request(request)

    async def close(self) -> None:
        await self.socks.close()
        await super().close()
