"""The headless browser that renders ``render: browser`` sources, and finding it.

Rendering is for section pages a plain HTTP client cannot read: pages that build
their article links in JavaScript. newswatch never downloads a browser: it drives
the system's Chromium (Debian's ``chromium`` package), found on the PATH or named
by ``browser.executable``.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field

from crawler.domain.config.values import Duration, _Strict

# Names the system's Chromium goes by (Debian: chromium; Ubuntu's snap and older
# Debian: chromium-browser; Google's build: google-chrome).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# What a page may load besides its document and scripts: pictures, fonts and media
# carry no article links and cost most of a page's bytes.
BlockedResource = Literal["image", "font", "media", "stylesheet"]
DEFAULT_BLOCKED: tuple[BlockedResource, ...] = ("image", "font", "media")


class BrowserConfig(_Strict):
    """Headless Chromium for sources with ``render: browser`` (scrapy-playwright)."""

    executable: Path | None = Field(
        default=None,
        description="Chromium to run; default: chromium (or chromium-browser, "
        "google-chrome) on the PATH. Nothing is ever downloaded.",
    )
    max_pages: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Pages rendering at once across the whole service (each poll "
        "renders in its own browser context).",
    )
    page_timeout: Duration = Field(
        default=timedelta(seconds=20),
        description="A page still loading after this long is read as far as it got.",
    )
    idle_close: Duration = Field(
        default=timedelta(minutes=2),
        description="The browser is closed after this long with nothing to render, "
        "and started again when a poll needs it.",
    )
    block: list[BlockedResource] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED),
        description="Kinds of resources pages are not allowed to load.",
    )


def find_chromium(executable: Path | None) -> tuple[Path | None, str]:
    """The Chromium to run and, when there is none, why (for the config error)."""
    if executable is not None:
        found = shutil.which(str(executable))
        if found is None or not os.access(found, os.X_OK):
            return None, f"{executable} is not an executable file"
        return Path(found), ""
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return Path(found), ""
    return None, (
        "no Chromium found on the PATH (looked for " + ", ".join(CHROMIUM_NAMES) + "); "
        "install the system's package (apt-get install chromium) or set browser.executable"
    )
