"""One plain HTTP GET for the one-shot commands that look at a source from outside
a poll (`sources doctor`, `sources add`): urllib, not Scrapy, in the command's own
process; each hop of a redirect noted, the source's credentials kept to its own
origin (its headers and cookies sent where a poll sends them, through its proxy), an
error status a result rather than an exception. urllib speaks no SOCKS: through a
SOCKS proxy, httpx does the same (the library a poll's requests take through one)."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from crawler.domain.config.access import is_socks_proxy
from crawler.domain.urls import origin
from spiders.socks import proxy_address, socks_failure

if TYPE_CHECKING:
    from spiders.access import SiteAccess

__all__ = ["MAX_BYTES", "Fetched", "fetch_once"]

# What is read of a response: enough for any feed or page worth polling.
MAX_BYTES = 10 * 1024 * 1024
# Redirects followed, as urllib's HTTPRedirectHandler.max_redirections.
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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
    if access is not None and is_socks_proxy(access.proxy):
        return _fetch_through_socks(url, agent, timeout, authorization, access)
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


def _fetch_through_socks(
    url: str, agent: str, timeout: float, authorization: str | None, access: SiteAccess
) -> Fetched:
    """``fetch_once`` through the SOCKS proxy of ``access``, with httpx: redirects
    followed here as urllib follows them, so that each hop is noted and gets the
    headers of its own URL. A failure is a URLError whose reason names the proxy
    (never its login) and what it did, a timeout's reason a TimeoutError."""
    import httpx2 as httpx  # only here: the one-shot commands through a SOCKS proxy

    proxy = access.proxy or ""
    hops: list[tuple[int, str]] = []
    current = url
    # Certificates are checked, as urllib checks them; the body comes as sent.
    with httpx.Client(proxy=proxy, timeout=timeout, trust_env=False) as client:
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                headers = {"User-Agent": agent, "Accept-Encoding": "identity"}
                if authorization is not None and origin(current) == origin(url):
                    headers["Authorization"] = authorization
                headers |= access.headers_for(current)
                with client.stream("GET", current, headers=headers) as response:
                    location = response.headers.get("Location")
                    if response.status_code in REDIRECT_STATUSES and location:
                        hops.append((response.status_code, urljoin(current, location)))
                        if origin(hops[-1][1]) != origin(current):
                            authorization = None  # never follows to another origin
                        current = hops[-1][1]
                        continue
                    body = b""
                    for chunk in response.iter_raw():
                        body += chunk
                        if len(body) >= MAX_BYTES:
                            break
                    return Fetched(
                        response.status_code,
                        current,
                        tuple(hops),
                        response.headers.get("Content-Type", ""),
                        body[:MAX_BYTES],
                        {name.lower(): value for name, value in response.headers.items()},
                    )
        except httpx.TimeoutException:
            raise urllib.error.URLError(
                TimeoutError(f"no answer through the SOCKS proxy {proxy_address(proxy)}")
            ) from None
        except httpx.HTTPError as error:
            failure = socks_failure(error, proxy_address(proxy), current)
            raise urllib.error.URLError(
                str(failure) if failure is not error else f"{error}"
            ) from None
    raise urllib.error.URLError(f"more than {MAX_REDIRECTS} redirects")
