"""What a spider asks of the browser, without the browser.

A source with ``render: browser`` has its listing pages (and with
``render_articles``, its article pages) fetched by headless Chromium through
scrapy-playwright. This module only says which requests those are and how long a
page may take; the download handler that does the rendering (``spiders.browser``)
is named in a crawl's settings only when its source needs it, so that a service
without such a source never imports Playwright.
"""

from __future__ import annotations

import sys
from typing import Any

from crawler.domain.config import is_xpath

# Scrapy's download handlers for a crawl that renders pages: every other request of
# that crawl (robots.txt, pages not rendered) still goes through Scrapy's own.
BROWSER_HANDLERS = {
    "http": "spiders.browser.BrowserDownloadHandler",
    "https": "spiders.browser.BrowserDownloadHandler",
}

# Chromium's flags for a quiet, headless page reader: nothing of its own on the
# network (updates, sync, field trials), no GPU. Playwright adds --headless and,
# chromiumSandbox being off by default, --no-sandbox (needed as root in containers).
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--no-first-run",
    "--no-pings",
    "--mute-audio",
    "--disable-extensions",
]
# Request meta: what the rendered page must show before it is read (a selector),
# and, on the response, how long it was still loading when it was read anyway.
WAIT_FOR = "newswatch_wait_for"
CUT_AFTER = "newswatch_render_cut_after"


def browser_meta(wait_for: str | None) -> dict[str, Any]:
    """Meta that has a request rendered; ``wait_for`` is the source's CSS or XPath
    link selector (a listing page is read once its article links are there)."""
    return {
        "playwright": True,
        # The page is waited for by spiders.browser.settle, within the time limit:
        # navigation returns as soon as the server answers.
        "playwright_page_goto_kwargs": {"wait_until": "commit"},
        WAIT_FOR: playwright_selector(wait_for) if wait_for else None,
    }


def playwright_selector(selector: str) -> str:
    """A configured CSS or XPath selector in Playwright's selector syntax."""
    return f"xpath={selector.strip()}" if is_xpath(selector) else f"css={selector}"


async def close_browser() -> None:
    """Close the service's browser if a poll ever started one (the service stops);
    with no browser source, nothing is imported."""
    if (browser := sys.modules.get("spiders.browser_host")) is not None:
        await browser.close_browser()
