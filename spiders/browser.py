"""Rendering pages in the system's headless Chromium, through scrapy-playwright.

Loaded only by the crawls of sources that need it (``spiders.rendering``). What it
adds to scrapy-playwright's download handler:

- **one browser for the whole service**, started when a page first needs it and
  closed after ``browser.idle_close`` with nothing to render (every poll is its own
  crawl: scrapy-playwright alone would start Chromium at every poll, ~0.5 s of CPU);
  each poll still renders in its own browser context, closed with the poll;
- **a bound on pages rendering at once**, across all polls (``browser.max_pages``);
- **a time limit per page**: a page is read once its article links are there (or
  it has loaded), and a page still loading at ``browser.page_timeout`` is read as
  far as it got, never waited on for longer;
- **what a page may load**: no pictures, fonts or media (``browser.block``);
- **credentials stay on their origin**: the page's own request, and any other to
  the source's origin that carries its headers, is made by the handler one hop at a
  time, so a redirect Chromium follows by itself carries none of them; basic
  authentication is Chromium's own, for the source's origin only.

Everything else is the crawl's as usual: robots.txt, politeness and retries see
the page request in Scrapy's middlewares, and the rendered page is extracted like
any other.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import scrapy
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from playwright.async_api import async_playwright
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response, TextResponse
from scrapy.responsetypes import responsetypes
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

from crawler.domain.config.access import browser_proxy_problem
from crawler.domain.urls import origin, split_userinfo
from spiders.access import SiteAccess, SiteAccessError
from spiders.addresses import AddressPolicyMiddleware
from spiders.browser_host import HOST, PageSlot, SharedBrowserProvider
from spiders.failures import BrowserTimeoutError
from spiders.rendering import CHROMIUM_ARGS, CUT_AFTER, WAIT_FOR
from spiders.socks import SocksRoute, through_socks

if TYPE_CHECKING:
    from playwright.async_api import Page, Route
    from playwright.async_api import Request as PlaywrightRequest
    from playwright.async_api import Response as PlaywrightResponse
    from scrapy.crawler import Crawler
    from scrapy_playwright.handler import Download

logger = logging.getLogger(__name__)
# scrapy-playwright says at INFO what it does at every poll (handler started,
# browser connected, closed), and at WARNING, with a traceback, every page that
# failed, which the spider already says in one line: the service's log keeps what
# matters.
logging.getLogger("scrapy-playwright").setLevel(logging.ERROR)

# After the links are there, how long scripts may go on adding to the page before
# it is read (the page is read at once when the network is quiet before that).
QUIET_SECONDS = 2.0
# Reading a page (and every wait on it) needs its main thread, which a script in an
# endless loop never gives back: past this long after the wait for a free page and
# the page's own time limits (navigation, then loading), the page is given up.
READ_SECONDS = 10.0
# How long a given-up page may take to close before its place is given back anyway.
CLOSE_SECONDS = 5.0
# Every poll's context: no service worker answering from a cache of its own, and no
# file downloads (a link to an archive is not a page; its size would be unbounded).
BASE_CONTEXT = {"service_workers": "block", "accept_downloads": False}
# Chromium's names of the network errors ``route.abort`` may give, by what Node said
# when newswatch made the request: the page then fails as Chromium would have.
ABORT_REASONS = (
    ("ENOTFOUND", "namenotresolved"),
    ("EAI_AGAIN", "namenotresolved"),
    ("ECONNREFUSED", "connectionrefused"),
    ("ECONNRESET", "connectionreset"),
    ("ETIMEDOUT", "timedout"),
    ("Timeout", "timedout"),
    ("EHOSTUNREACH", "addressunreachable"),
    ("ENETUNREACH", "addressunreachable"),
)


class BrowserDownloadHandler(ScrapyPlaywrightDownloadHandler):
    """scrapy-playwright's handler, on the shared browser and within its limits."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.page_timeout = settings.getfloat("NEWSWATCH_BROWSER_PAGE_TIMEOUT", 20.0)
        # A free page, the navigation, the loading: each within page_timeout.
        self.download_limit = 3 * self.page_timeout + READ_SECONDS
        # The page and its place of each request rendering (by id: a Request is no key).
        self._rendering: dict[int, tuple[Page, PageSlot]] = {}
        self._error_pages: set[int] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self.blocked = frozenset(settings.getlist("NEWSWATCH_BROWSER_BLOCK"))
        HOST.configure(
            max_pages=settings.getint("NEWSWATCH_BROWSER_MAX_PAGES", 2),
            idle_close=settings.getfloat("NEWSWATCH_BROWSER_IDLE_CLOSE", 120.0),
        )
        self.browser_provider_cls = partial(SharedBrowserProvider, host=HOST)
        self._access: SiteAccess | None = None
        self._domains = crawler.settings.get("NEWSWATCH_SITE_ACCESS") or {}
        self.abort_request = self._refused
        try:
            self._addresses: AddressPolicyMiddleware | None = AddressPolicyMiddleware.from_crawler(
                crawler
            )
        except NotConfigured:
            self._addresses = None
        self.socks = SocksRoute(crawler)

    async def download_request(self, request: scrapy.Request) -> Response:
        # What is not rendered (robots.txt, article pages of a source that renders only
        # its listing) goes through Scrapy's HTTP/1.1 handler, which speaks no SOCKS.
        if not request.meta.get("playwright") and through_socks(request):
            return await self.socks.download(request)
        response: Response = await super().download_request(request)
        return response

    async def close(self) -> None:
        await self.socks.close()
        await super().close()

    async def _create_browser_context(
        self, name: str, context_kwargs: dict[str, Any] | None, spider: Any = None
    ) -> Any:
        """The poll's context, reaching the site as the source says: through its proxy,
        with its user agent and its cookies (for the page's own requests too)."""
        options = {**(context_kwargs or {}), **self._reach(spider)}
        return await super()._create_browser_context(
            name=name, context_kwargs=options, spider=spider
        )

    def _reach(self, spider: Any) -> dict[str, Any]:
        source = getattr(spider, "source", None)
        if source is None:  # a scale-out worker's crawl serves every source
            return dict(BASE_CONTEXT)
        try:
            self._access = SiteAccess.of(source, self._domains)
            options = context_options(self._access)
        except SiteAccessError as error:  # the page's request fails with this reason
            raise IgnoreRequest(str(error)) from None
        if (credentials := source.credentials()) is not None and self._access.origin:
            # Basic authentication, given by Chromium itself to the source's origin
            # only (every request of the page there, no other host).
            options["http_credentials"] = {
                "username": credentials[0],
                "password": credentials[1],
                "origin": origin_url(self._access.origin),
                "send": "always",
            }
        return options

    def _make_request_handler(
        self,
        context_name: str,
        method: str,
        url: str,
        headers: Any,
        body: bytes | None,
        encoding: str,
        spider: Any,
        initial_request_done: asyncio.Event,
    ) -> Any:
        """How each request of a rendered page goes out (scrapy-playwright's, replaced).

        Refused ones (``_refused``) are aborted. The page's own request, and any other
        to the source's origin when the source has headers of its own, are made here,
        one hop at a time (``route.fetch`` without redirects): Chromium follows a
        redirect by itself, with headers given to a routed request carried along, so
        credentials must never be given to one it goes on with. Everything else is
        the browser's own, with the crawl's user agent."""
        agent = headers.get("User-Agent")
        page_headers = {name.lower(): value for name, value in headers.to_unicode_dict().items()}

        async def route_request(route: Route, request: PlaywrightRequest) -> None:
            if await self._refused(request):
                await route.abort("blockedbyclient")
                return
            own = await request.all_headers()
            if agent:
                own["user-agent"] = agent.decode("latin-1")
            first = (
                request.is_navigation_request()
                and not initial_request_done.is_set()
                and request.url.rstrip("/") == url.rstrip("/")
            )
            if first:
                initial_request_done.set()
                await self._fetch_hop(route, page_headers | {"referer": own.get("referer", "")})
                return
            access = self._access
            if access is not None and access.headers and origin(request.url) == access.origin:
                await self._fetch_hop(route, own | dict(access.headers))
                return
            await route.continue_(headers=own)

        return route_request

    async def _fetch_hop(self, route: Route, headers: dict[str, str]) -> None:
        """Make one request of a page here, its redirect (if any) handed back to the
        browser as it is, without these headers."""
        sent = {name: value for name, value in headers.items() if value}
        try:
            response = await route.fetch(
                headers=sent, max_redirects=0, timeout=self.page_timeout * 1000
            )
        except PlaywrightError as error:
            await route.abort(_abort_reason(str(error)))
            return
        await route.fulfill(response=response)

    async def _create_page(self, request: scrapy.Request, spider: scrapy.Spider) -> Page:
        slot = await HOST.page_slot(self.page_timeout)
        try:
            page = await super()._create_page(request=request, spider=spider)
        except BaseException:
            slot.release()
            raise
        page.on("close", slot.release)
        page.on("crash", slot.release)
        self._rendering[id(request)] = (page, slot)
        return page

    async def _download_request(
        self, request: scrapy.Request, spider: scrapy.Spider | None = None
    ) -> Response:
        """scrapy-playwright's download, given up after ``download_limit`` (its page
        closed, its place given back): a page whose scripts never let go of its main
        thread cannot even be read, and must not hold the poll, or a page, forever."""
        limit = asyncio.timeout(self.download_limit)
        try:
            async with limit:
                response = await super()._download_request(request, spider)
        except TimeoutError:
            if not limit.expired():
                raise
            raise BrowserTimeoutError(
                f"browser: the page was still busy after {self.download_limit:.0f}s "
                "(its scripts never let it be read); given up"
            ) from None
        finally:
            self._error_pages.discard(id(request))
            if (held := self._rendering.pop(id(request), None)) is not None:
                self._give_up(*held)
        return _typed(response)

    def _give_up(self, page: Page, slot: PageSlot) -> None:
        """Close ``page`` if a failure or a cancellation left it open; no await, so
        that a cancelled download gives its place back too."""
        if page.is_closed():
            return
        task = asyncio.ensure_future(_close_page(page, slot))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _get_response_and_download(
        self, request: scrapy.Request, page: Page, spider: scrapy.Spider
    ) -> tuple[PlaywrightResponse | None, Download | None]:
        response, download = await super()._get_response_and_download(request, page, spider)
        if response is not None and response.status >= 400:
            self._error_pages.add(id(request))
        return response, download

    async def _apply_page_methods(
        self, page: Page, request: scrapy.Request, spider: scrapy.Spider
    ) -> None:
        """In place of page methods: wait until the page is ready to be read (an
        error page at once: it has no links to wait for, and fails the request)."""
        if id(request) in self._error_pages:
            return
        still_loading = await settle(page, request.meta.get(WAIT_FOR), self.page_timeout)
        if still_loading:
            request.meta[CUT_AFTER] = self.page_timeout

    async def _refused(self, request: PlaywrightRequest) -> bool:
        """True for what a page may not load: blocked kinds, refused addresses."""
        if request.resource_type in self.blocked:
            return True
        if self._addresses is None or not request.url.startswith(("http://", "https://")):
            return False
        try:
            await self._addresses.process_request(scrapy.Request(request.url))
        except IgnoreRequest as refused:
            logger.debug("browser request refused: %s", refused)
            return True
        except ValueError:  # a URL Scrapy cannot even make a request of
            return True
        return False


def _abort_reason(message: str) -> str:
    return next((reason for code, reason in ABORT_REASONS if code in message), "failed")


def origin_url(own: tuple[str, str, int]) -> str:
    """``scheme://host:port`` of an origin (an IPv6 host in brackets)."""
    scheme, host, port = own
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def context_options(access: SiteAccess) -> dict[str, Any]:
    """Playwright's context options for a source's access settings: its proxy, user
    agent and cookies (each cookie where its own rules send it, as Chromium applies
    them). Its other headers go with its requests to the source's origin (the handler's
    ``_make_request_handler``).
    SiteAccessError for a SOCKS proxy with a login, which Chromium cannot give (the
    configuration refuses it; its variable may have changed since)."""
    options: dict[str, Any] = dict(BASE_CONTEXT)
    if access.user_agent is not None:
        options["user_agent"] = access.user_agent
    if access.proxy is not None:
        if (problem := browser_proxy_problem(access.proxy)) is not None:
            raise SiteAccessError(f"proxy: {problem}")
        bare, user, password = split_userinfo(access.proxy)
        parts = urlsplit(bare)
        # Chromium knows socks5:// only, and sends the site's name to the proxy with it.
        scheme = "socks5" if parts.scheme.lower() == "socks5h" else parts.scheme
        proxy = {"server": f"{scheme}://{parts.netloc}"}
        if user:
            proxy |= {"username": user, "password": password or ""}
        options["proxy"] = proxy
    cookies: list[dict[str, Any]] = [
        {
            "name": cookie.name,
            "value": cookie.value or "",
            "domain": cookie.domain,
            "path": cookie.path or "/",
            "secure": bool(cookie.secure),
            "expires": float(cookie.expires) if cookie.expires else -1,
        }
        for cookie in access.jar or ()
    ]
    if access.origin is not None and access.cookies:
        own = origin_url(access.origin)
        cookies += [{"name": name, "value": value, "url": own} for name, value in access.cookies]
    if cookies:
        options["storage_state"] = {"cookies": cookies, "origins": []}
    return options


async def _close_page(page: Page, slot: PageSlot) -> None:
    with suppress(PlaywrightError, TimeoutError):
        await asyncio.wait_for(page.close(), CLOSE_SECONDS)
    slot.release()


def _typed(response: Response) -> Response:
    """A rendered PDF or other non-text answer as what it is, not as the HTML of the
    page Chromium shows it in (the spider skips it as for any non-text answer)."""
    content_type = response.headers.get("Content-Type")
    if (
        isinstance(response, TextResponse)
        and content_type
        and not issubclass(responsetypes.from_content_type(content_type), TextResponse)
    ):
        return Response(**{name: getattr(response, name) for name in Response.attributes})
    return response


async def settle(page: Page, wait_for: str | None, timeout: float) -> bool:
    """Wait until ``page`` can be read: its ``wait_for`` selector is there (a listing
    page's article links) or, without one, it has loaded; then, briefly, until its
    network is quiet. True when it was still loading at ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def left_ms(cap: float = timeout) -> float:
        return max(1.0, min(deadline - loop.time(), cap) * 1000)

    try:
        await page.wait_for_load_state("domcontentloaded", timeout=left_ms())
        if wait_for:
            await page.wait_for_selector(wait_for, state="attached", timeout=left_ms())
        else:
            await page.wait_for_load_state("load", timeout=left_ms())
    except PlaywrightTimeoutError:
        return True
    with suppress(PlaywrightTimeoutError):
        await page.wait_for_load_state("networkidle", timeout=left_ms(QUIET_SECONDS))
    return False


def render_once(
    url: str, *, executable: str, agent: str, timeout: float, block: frozenset[str]
) -> str:
    """The page at ``url`` as Chromium shows it once its scripts have run, for a
    one-shot command (``sources add``): loaded, then the network quiet for a moment,
    within ``timeout``; a page still loading then is taken as far as it got, and one
    whose scripts never let it be read is given up (BrowserTimeoutError)."""
    return asyncio.run(
        _render_once(url, executable=executable, agent=agent, timeout=timeout, block=block)
    )


async def _render_once(
    url: str, *, executable: str, agent: str, timeout: float, block: frozenset[str]
) -> str:
    async def route_request(route: Route) -> None:
        if route.request.resource_type in block:
            await route.abort()
        else:
            await route.fallback()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(user_agent=agent, service_workers="block")
            await context.route("**/*", route_request)
            page = await context.new_page()
            await page.goto(url, wait_until="commit", timeout=timeout * 1000)
            await settle(page, None, timeout)
            try:
                return await asyncio.wait_for(page.content(), READ_SECONDS)
            except TimeoutError:
                raise BrowserTimeoutError(
                    f"browser: the page was still busy after {timeout + READ_SECONDS:.0f}s "
                    "(its scripts never let it be read); given up"
                ) from None
        finally:
            await browser.close()
