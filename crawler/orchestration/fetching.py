"""One plain HTTP GET for the one-shot commands that look at a source from outside
a poll (`sources doctor`, `sources add`): urllib, not Scrapy, in the command's own
process; each hop of a redirect noted, the source's credentials kept to its own
origin (its headers and cookies sent where a poll sends them, through its proxy), an
error status a result rather than an exception."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crawler.domain.urls import origin

if TYPE_CHECKING:
    from spiders.access import SiteAccess

__all__ = ["MAX_BYTES", "Fetched", "fetch_once"]

# What is read of a response: enough for any feed or page worth polling.
MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    """One response as the one-shot commands read it."""

    status: int
    url: str  # after redirects
    redirects: tuple[tuple[int, str], ...]  # (status, location) per hop
    content_type: str
    body: bytes
    headers: dict[str, str]


class _Recorder(urllib.request.HTTPRedirectHandler):
    """Follows redirects as urllib does, noting each hop's status and target; the
    source's credentials never follow a redirect to another origin, and its access
    headers (``SiteAccess``) are those of each hop's own URL."""

    def __init__(self, access: SiteAccess | None) -> None:
        self.hops: list[tuple[int, str]] = []
        self.access = access

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        self.hops.append((code, newurl))
        redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
        if redirected is not None and origin(newurl) != origin(req.full_url):
            redirected.remove_header("Authorization")
        if redirected is not None and self.access is not None:
            for name in (*self.access.headers, "Cookie"):
                redirected.remove_header(name.capitalize())
            for name, value in self.access.headers_for(newurl).items():
                redirected.add_header(name, value)
        return redirected


def fetch_once(
    url: str,
    agent: str,
    timeout: float,
    authorization: str | None = None,
    access: SiteAccess | None = None,
) -> Fetched:
    """GET ``url`` (with ``authorization`` on its own origin only, and the headers,
    cookies, user agent and proxy of ``access``, as a poll sends them); an HTTP
    error status is a result, not an exception."""
    recorder = _Recorder(access)
    handlers: list[urllib.request.BaseHandler] = [recorder]
    if access is not None and access.proxy is not None:
        # urllib sends the proxy URL's user and password as Proxy-Authorization.
        handlers.append(urllib.request.ProxyHandler({"http": access.proxy, "https": access.proxy}))
    opener = urllib.request.build_opener(*handlers)
    headers = {"User-Agent": agent}
    if authorization is not None:
        headers["Authorization"] = authorization
    if access is not None:
        headers |= access.headers_for(url)
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as response:
            return Fetched(
                response.status,
                response.geturl(),
                tuple(recorder.hops),
                response.headers.get("Content-Type", ""),
                response.read(MAX_BYTES),
                {name.lower(): value for name, value in response.headers.items()},
            )
    except urllib.error.HTTPError as error:
        return Fetched(
            error.code,
            error.geturl() or url,
            tuple(recorder.hops),
            error.headers.get("Content-Type", "") if error.headers else "",
            error.read(MAX_BYTES) if error.fp else b"",
            {name.lower(): value for name, value in (error.headers or {}).items()},
        )
