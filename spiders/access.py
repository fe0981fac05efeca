"""What a source's requests carry to reach its site: headers, cookies, a user agent and
a proxy (``sources[]`` and ``domains.<host>``, crawler/domain/config/access.py).

``SiteAccess`` decides, per URL, what goes with a request: the user agent and the
proxy with every request of the source's polls; its headers and the cookies of
``cookies_env`` to the source's own origin (scheme, host and port) only, as its
basic authentication; the cookies of a ``cookies_file`` where the file says (their
domain, path, secure flag and expiry, as ``http.cookiejar`` reads them).

``SiteAccessMiddleware`` adds them as each request leaves for the network and takes
them off again when it comes back: a redirect, a retry or a queued request (Redis,
in the scale-out mode) is built from a request without them, and gets those of its
own URL on its way out. Nothing here logs a value.
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest

from crawler.domain.config.access import cookie_pairs, load_cookies_file, site_access_for
from crawler.domain.urls import origin, split_userinfo

if TYPE_CHECKING:
    from collections.abc import Mapping
    from http.cookiejar import CookieJar

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from crawler.domain.config import Config, SourceConfig
    from crawler.domain.config.access import SiteAccessConfig

# Request meta: the header names this middleware set, and whether it set the proxy.
APPLIED = "newswatch_access_headers"
PROXIED = "newswatch_access_proxy"


class SiteAccessError(Exception):
    """A source's access settings cannot be used now (its cookies file went away, a
    variable was unset since the configuration was read). The message names the
    setting and never a value."""


@dataclass(frozen=True)
class SiteAccess:
    """One source's headers, cookies, user agent and proxy, values read."""

    origin: tuple[str, str, int] | None
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: tuple[tuple[str, str], ...] = ()  # cookies_env's, for the origin
    jar: CookieJar | None = None  # cookies_file's
    user_agent: str | None = None
    proxy: str | None = None

    @classmethod
    def of(cls, source: SourceConfig, domains: Mapping[str, SiteAccessConfig]) -> SiteAccess:
        """The settings of ``source`` and of its host's ``domains`` entry, with the
        variables and the cookies file read now; SiteAccessError if one is unusable."""
        host = (urlsplit(source.url).hostname or "").rstrip(".").lower()
        settings = site_access_for(source.site_access(), domains.get(host))
        jar = None
        if settings.cookies_file is not None:
            try:
                jar = load_cookies_file(settings.cookies_file)
            except ValueError as error:
                raise SiteAccessError(f"cookies_file: {error}") from None
        cookies: list[tuple[str, str]] = []
        if settings.cookies_env is not None:
            cookies = cookie_pairs(_variable(settings.cookies_env, "cookies_env"))
        for name, variable in settings.headers_env.items():
            _variable(variable, f"headers_env.{name}")
        proxy = None
        if settings.proxy_env is not None:
            proxy = _variable(settings.proxy_env, "proxy_env")
        return cls(
            origin=origin(source.url),
            headers=settings.header_values(),
            cookies=tuple(cookies),
            jar=jar,
            user_agent=settings.user_agent,
            proxy=proxy or settings.proxy,
        )

    @classmethod
    def for_config(cls, config: Config, source: SourceConfig) -> SiteAccess:
        """``of(source, …)`` with the configuration's ``domains``."""
        return cls.of(source, domain_access(config))

    @property
    def empty(self) -> bool:
        return not (self.headers or self.cookies or self.jar or self.user_agent or self.proxy)

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers a request for ``url`` carries (User-Agent, the configured ones,
        Cookie), each only where it belongs."""
        headers: dict[str, str] = {}
        if self.user_agent is not None:
            headers["User-Agent"] = self.user_agent
        own_origin = self.origin is not None and origin(url) == self.origin
        if own_origin:
            headers |= self.headers
        cookies = [_jar_cookies(self.jar, url)] if self.jar is not None else []
        if own_origin:
            cookies += [f"{name}={value}" for name, value in self.cookies]
        if cookie := "; ".join(c for c in cookies if c):
            headers["Cookie"] = cookie
        return headers

    def secrets(self) -> list[str]:
        """Every value that must never be shown: header and cookie values, the proxy's
        password (for the web UI's last-line redaction)."""
        values = [*self.headers.values(), *(value for _, value in self.cookies)]
        values += [cookie.value or "" for cookie in self.jar or ()]
        if self.proxy is not None and (password := split_userinfo(self.proxy)[2]):
            values.append(password)
        return [value for value in values if value]


def proxy_of(source: SourceConfig, domains: Mapping[str, SiteAccessConfig]) -> str | None:
    """The proxy ``source``'s requests go through (its own or its host's), its
    variable read now; None without one. Reads no cookies file."""
    host = (urlsplit(source.url).hostname or "").rstrip(".").lower()
    return site_access_for(source.site_access(), domains.get(host)).proxy_url()


def _jar_cookies(jar: CookieJar, url: str) -> str:
    """The jar's cookies for ``url``, by their own rules, as a Cookie value. The jar
    works on urllib's requests: one stands in for the real request."""
    stand_in = urllib.request.Request(url)  # noqa: S310 - never opened
    jar.add_cookie_header(stand_in)
    return stand_in.get_header("Cookie") or ""


def domain_access(config: Config) -> dict[str, SiteAccessConfig]:
    """The ``domains`` entries that set any access key, by lower-cased host."""
    return {host.lower(): domain for host, domain in config.domains.items() if domain.configured}


def _variable(variable: str, key: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise SiteAccessError(f"{key}: the environment variable {variable} is not set")
    return value


class SiteAccessMiddleware:
    """Adds a source's access (``SiteAccess``) to each request on its way out, for the
    request's own URL, and takes it off when the response or error comes back.

    Between the redirect (600) and proxy (750) middlewares: it sees every request
    after its redirects were made, its ``proxy`` meta is read by HttpProxyMiddleware
    (which turns a password in it into Proxy-Authorization), and it takes its headers
    off before the redirect and retry middlewares copy the request.
    """

    def __init__(self, crawler: Crawler, domains: Mapping[str, SiteAccessConfig]) -> None:
        self.crawler = crawler
        self.domains = domains
        self._access: dict[str, tuple[SourceConfig, float | None, SiteAccess]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SiteAccessMiddleware:
        return cls(crawler, crawler.settings.get("NEWSWATCH_SITE_ACCESS") or {})

    def process_request(self, request: Request) -> None:
        source_of = getattr(self.crawler.spider, "source_of", None)
        source: SourceConfig | None = source_of(request) if source_of is not None else None
        if source is None:
            return
        try:
            access = self.access(source)
        except SiteAccessError as error:
            raise IgnoreRequest(str(error)) from None
        headers = access.headers_for(request.url)
        for name, value in headers.items():
            request.headers[name] = value
        request.meta[APPLIED] = list(headers)
        if access.proxy is not None:
            request.meta["proxy"] = access.proxy
            request.meta[PROXIED] = True

    def process_response(self, request: Request, response: Response) -> Response:
        take_off(request)
        return response

    def process_exception(self, request: Request, exception: BaseException) -> None:
        take_off(request)

    def access(self, source: SourceConfig) -> SiteAccess:
        """The source's access, read again when the configuration or its cookies file
        changed."""
        stamp = _modified(source, self.domains)
        cached = self._access.get(source.name)
        if cached is not None and cached[0] is source and cached[1] == stamp:
            return cached[2]
        access = SiteAccess.of(source, self.domains)
        self._access[source.name] = (source, stamp, access)
        return access


def take_off(request: Request) -> None:
    """Remove what SiteAccessMiddleware added to ``request``."""
    for name in request.meta.pop(APPLIED, ()):
        request.headers.pop(name, None)
    if request.meta.pop(PROXIED, False):
        request.meta.pop("proxy", None)
        request.meta.pop("_auth_proxy", None)
        request.headers.pop(b"Proxy-Authorization", None)


def _modified(source: SourceConfig, domains: Mapping[str, SiteAccessConfig]) -> float | None:
    host = (urlsplit(source.url).hostname or "").rstrip(".").lower()
    domain = domains.get(host)
    path = source.cookies_file or (domain.cookies_file if domain is not None else None)
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
