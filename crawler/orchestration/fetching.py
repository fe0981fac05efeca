"""One plain HTTP GET for the one-shot commands that look at a source from outside
a poll (`sources doctor`, `sources add`): urllib, not Scrapy, in the command's own
process; each hop of a redirect noted, the source's credentials kept to its own
origin, an error status a result rather than an exception."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from crawler.domain.urls import origin

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
    source's credentials never follow a redirect to another origin."""

    def __init__(self) -> None:
        self.hops: list[tuple[int, str]] = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        self.hops.append((code, newurl))
        redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
        if redirected is not None and origin(newurl) != origin(req.full_url):
            redirected.remove_header("Authorization")
        return redirected


def fetch_once(url: str, agent: str, timeout: float, authorization: str | None = None) -> Fetched:
    """GET ``url`` (with ``authorization`` on its own origin only); an HTTP error
    status is a result, not an exception."""
    recorder = _Recorder()
    opener = urllib.request.build_opener(recorder)
    headers = {"User-Agent": agent}
    if authorization is not None:
        headers["Authorization"] = authorization
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
