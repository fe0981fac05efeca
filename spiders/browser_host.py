"""The service's one Chromium, shared by every poll that renders pages.

Started when a page first needs it and closed after ``browser.idle_close`` with
nothing to render (every poll is its own crawl: scrapy-playwright alone would start
Chromium at every poll, ~0.5 s of CPU). Polls lease it through scrapy-playwright's
browser provider (``SharedBrowserProvider``); the pages rendering at once are
counted here, across polls, to keep within ``browser.max_pages``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright
from scrapy.exceptions import NotSupported

from spiders.failures import BrowserBusyError, BrowserLaunchError

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Playwright

logger = logging.getLogger(__name__)


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
                try:
                    browser = await self._playwright.chromium.launch(**launch_options)
                except PlaywrightError as error:
                    await self._shut_down()  # Playwright's driver too
                    raise BrowserLaunchError(launch_failure(launch_options, error)) from None
                self._browser = browser
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


def launch_failure(launch_options: dict[str, Any], error: PlaywrightError) -> str:
    """One line for a Chromium that would not start: what it last said on stderr
    (a missing library, a sandbox refused) and its exit code, not Playwright's
    "Target page, context or browser has been closed" and the command line."""
    text = str(error)
    said = [line.split("[err]", 1)[1].strip() for line in text.splitlines() if "[err]" in line]
    reason = next((line for line in reversed(said) if line), text.strip().splitlines()[0])
    if exited := re.search(r"exitCode=(\d+)", text):
        reason += f" (exit code {exited[1]})"
    executable = launch_options.get("executable_path") or "chromium"
    return f"browser: {executable} could not be started: {reason}"
