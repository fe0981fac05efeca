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
- **what a page may load**: no pictures, fonts or media, and, with
  ``fetch_policy``, none of the addresses a crawl may not reach;
- **credentials stay on their origin**: the request's Authorization and Cookie
  headers go with the page's own navigation, not with a redirect to another host.

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
from scrapy.exceptions import IgnoreRequest, NotConfigured, NotSupported
from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

from crawler.domain.config.access import browser_proxy_problem
from crawler.domain.urls import split_userinfo
from spiders.access import SiteAccess, SiteAccessError
from spiders.addresses import AddressPolicyMiddleware
from spiders.rendering import CHROMIUM_ARGS, CUT_AFTER, WAIT_FOR
from spiders.socks import SocksRoute, through_socks

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Playwright
    from playwright.async_api import Request as PlaywrightRequest
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)
# scrapy-playwright says at INFO what it does at every poll (handler started,
# browser connected, closed): the service's log keeps what matters.
logging.getLogger("scrapy-playwright").setLevel(logging.WARNING)

# After the links are there, how long scripts may go on adding to the page before
# it is read (the page is read at once when the network is quiet before that).
QUIET_SECONDS = 2.0
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class BrowserBusyError(Exception):
    """No page could be rendered within the time limit: all were in use."""


class BrowserHost:
    """The service's one Chromium: started on first need, closed when idle.

    Polls lease it (``lease``/``release``); with no lease left it is closed after
    the idle time. Pages are counted here, across polls, to keep within max_pages.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._leases = 0
        self._idle: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()
        self._pages = asyncio.Semaphore(2)
        self.max_pages = 2
        self.idle_close = 120.0
        self.launches = 0

    def configure(self, *, max_pages: int, idle_close: float) -> None:
        """Take the service's current settings (each crawl passes them on)."""
        self._bind_loop()
        self.idle_close = idle_close
        if max_pages != self.max_pages and self._leases == 0:
            self.max_pages, self._pages = max_pages, asyncio.Semaphore(max_pages)

    @property
    def running(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def lease(self, launch_options: dict[str, Any]) -> Browser:
        """The browser, started if it is not running; ``release`` when done."""
        self._bind_loop()
        async with self._lock:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            browser = self._browser
            if browser is None or not browser.is_connected():
                await self._shut_down()
                self._playwright = await async_playwright().start()
                browser = self._browser = await self._playwright.chromium.launch(**launch_options)
                self.launches += 1
                logger.info(
                    "browser started: %s", launch_options.get("executable_path") or "chromium"
                )
            self._leases += 1
            return browser

    def release(self) -> None:
        self._leases = max(0, self._leases - 1)
        if self._leases == 0 and self._browser is not None and self._loop is not None:
            self._idle = self._loop.call_later(self.idle_close, self._close_if_idle)

    def _close_if_idle(self) -> None:
        self._idle = None
        if self._leases == 0:
            task = asyncio.ensure_future(self.close())
            task.add_done_callback(_log_failure)

    async def page_slot(self, timeout: float) -> PageSlot:
        """One of the max_pages places to render a page, waited for at most ``timeout``."""
        self._bind_loop()
        pages = self._pages
        try:
            await asyncio.wait_for(pages.acquire(), timeout)
        except TimeoutError:
            raise BrowserBusyError(
                f"no browser page free within {timeout:.0f}s: {self.max_pages} pages were "
                "rendering (browser.max_pages)"
            ) from None
        return PageSlot(pages)

    async def close(self) -> None:
        """Close the browser now (the service stops, or it was idle)."""
        async with self._lock:
            if self._leases == 0 or self._loop is None or self._loop.is_closed():
                await self._shut_down()

    async def _shut_down(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        if browser is not None:
            with suppress(PlaywrightError):
                await browser.close()
            logger.info("browser closed")
        if playwright is not None:
            with suppress(PlaywrightError):
                await playwright.stop()

    def _bind_loop(self) -> None:
        """Asyncio primitives belong to one loop: a new loop (a test's) starts afresh."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._playwright = self._browser = None
            self._leases = 0
            self._idle = None
            self._lock = asyncio.Lock()
            self._pages = asyncio.Semaphore(self.max_pages)


class PageSlot:
    """A held place to render a page; ``release`` is safe to call more than once."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore: asyncio.Semaphore | None = semaphore

    def release(self, *_event: object) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


HOST = BrowserHost()


async def close_browser() -> None:
    """Close the shared browser if it runs (the service is stopping)."""
    await HOST.close()


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.warning("the browser could not be closed: %s", error)


class LeasedBrowser:
    """The shared browser as one crawl sees it: closing it gives the lease back
    (scrapy-playwright closes its browser when the crawl ends)."""

    def __init__(self, browser: Browser, host: BrowserHost) -> None:
        self._browser = browser
        self._host = host
        self._listeners: list[tuple[str, Any]] = []
        self._held = True
        browser.on("disconnected", self._lost)

    def on(self, event: Any, callback: Any) -> None:
        self._listeners.append((event, callback))
        self._browser.on(event, callback)

    async def new_context(self, **kwargs: Any) -> BrowserContext:
        return await self._browser.new_context(**kwargs)

    def is_connected(self) -> bool:
        return self._browser.is_connected()

    async def close(self) -> None:
        for event, callback in [*self._listeners, ("disconnected", self._lost)]:
            with suppress(KeyError, ValueError):
                self._browser.remove_listener(event, callback)
        self._listeners.clear()
        self._give_back()

    def _lost(self, *_event: object) -> None:
        self._give_back()

    def _give_back(self) -> None:
        if self._held:
            self._held = False
            self._host.release()


class SharedBrowserProvider:
    """scrapy-playwright's browser provider, handing out leases of ``HOST``."""

    def __init__(self, config: Any, host: BrowserHost) -> None:
        self.config = config
        self._host = host
        self._leased: LeasedBrowser | None = None

    async def start(self) -> None:
        """Nothing yet: the browser starts when a page first needs it."""

    async def launch_browser(self) -> LeasedBrowser:
        browser = await self._host.lease(self.config.launch_options)
        self._leased = LeasedBrowser(browser, self._host)
        return self._leased

    async def launch_persistent_context(self, context_kwargs: dict[str, Any]) -> BrowserContext:
        raise NotSupported("newswatch renders pages in throwaway contexts only")

    async def close(self) -> None:
        if self._leased is not None:
            await self._leased.close()
            self._leased = None


class BrowserDownloadHandler(ScrapyPlaywrightDownloadHandler):
    """scrapy-playwright's handler, on the shared browser and within its limits."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.page_timeout = settings.getfloat("NEWSWATCH_BROWSER_PAGE_TIMEOUT", 20.0)
        self.blocked = frozenset(settings.getlist("NEWSWATCH_BROWSER_BLOCK"))
        HOST.configure(
            max_pages=settings.getint("NEWSWATCH_BROWSER_MAX_PAGES", 2),
            idle_close=settings.getfloat("NEWSWATCH_BROWSER_IDLE_CLOSE", 120.0),
        )
        self.browser_provider_cls = partial(SharedBrowserProvider, host=HOST)
        self.process_request_headers = request_headers
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
            return {"service_workers": "block"}
        try:
            return context_options(SiteAccess.of(source, self._domains))
        except SiteAccessError as error:  # the page's request fails with this reason
            raise IgnoreRequest(str(error)) from None

    async def _create_page(self, request: scrapy.Request, spider: scrapy.Spider) -> Page:
        slot = await HOST.page_slot(self.page_timeout)
        try:
            page = await super()._create_page(request=request, spider=spider)
        except BaseException:
            slot.release()
            raise
        page.on("close", slot.release)
        page.on("crash", slot.release)
        return page

    async def _apply_page_methods(
        self, page: Page, request: scrapy.Request, spider: scrapy.Spider
    ) -> None:
        """In place of page methods: wait until the page is ready to be read."""
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


def context_options(access: SiteAccess) -> dict[str, Any]:
    """Playwright's context options for a source's access settings: its proxy, user
    agent and cookies (each cookie where its own rules send it, as Chromium applies
    them). Its other headers go with the page request only (``request_headers``).
    SiteAccessError for a SOCKS proxy with a login, which Chromium cannot give (the
    configuration refuses it; its variable may have changed since)."""
    options: dict[str, Any] = {"service_workers": "block"}
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
        scheme, host, port = access.origin
        own = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
        cookies += [{"name": name, "value": value, "url": own} for name, value in access.cookies]
    if cookies:
        options["storage_state"] = {"cookies": cookies, "origins": []}
    return options


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


async def request_headers(
    *, browser_type_name: str, playwright_request: PlaywrightRequest, scrapy_request_data: dict
) -> dict[str, str]:
    """The headers a page's requests carry: for the page itself, the Scrapy request's
    (user agent, conditional and credential headers as the crawl set them); for
    anything else, the browser's own with the crawl's user agent. Credentials go to
    the origin of the request they were set for, not to a redirect's other host."""
    scrapy_headers = {
        name.lower(): value
        for name, value in scrapy_request_data["headers"].to_unicode_dict().items()
    }
    own = await playwright_request.all_headers()
    agent = scrapy_headers.get("user-agent")
    if not playwright_request.is_navigation_request():
        return own | ({"user-agent": agent} if agent else {})
    same_origin = _origin(playwright_request.url) == _origin(scrapy_request_data["url"])
    headers = {
        name: value
        for name, value in scrapy_headers.items()
        if same_origin or name not in SECRET_HEADERS
    }
    if referer := own.get("referer"):
        headers.setdefault("referer", referer)
    headers.setdefault("user-agent", agent or own.get("user-agent", ""))
    return headers


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def render_once(
    url: str, *, executable: str, agent: str, timeout: float, block: frozenset[str]
) -> str:
    """The page at ``url`` as Chromium shows it once its scripts have run, for a
    one-shot command (``sources add``): loaded, then the network quiet for a moment,
    within ``timeout``; a page still loading then is taken as far as it got."""
    from playwright.sync_api import TimeoutError as SyncTimeoutError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(user_agent=agent, service_workers="block")
            context.route(
                "**/*",
                lambda route: (
                    route.abort() if route.request.resource_type in block else route.fallback()
                ),
            )
            page = context.new_page()
            page.goto(url, wait_until="commit", timeout=timeout * 1000)
            with suppress(SyncTimeoutError):
                page.wait_for_load_state("load", timeout=timeout * 1000)
                page.wait_for_load_state("networkidle", timeout=QUIET_SECONDS * 1000)
            return page.content()
        finally:
            browser.close()
