"""The two baselines of bench/pipeline.py: small standalone Scrapy spiders.

    python bench/pipeline_spiders.py fetch --config CONFIG
    python bench/pipeline_spiders.py naive --config CONFIG --db PATH

Both read the feeds of the sources in CONFIG (the very config.yaml that
``newswatch crawl`` gets) and request every article they list, with one crawler
per source in one ``CrawlerProcess`` and the same network settings as newswatch's
crawl (``spiders.settings.scrapy_settings`` of that config, less newswatch's own
pipeline and middlewares): the same concurrency, per-domain cap, AutoThrottle,
robots.txt, timeouts and retries.

* ``fetch`` does nothing with a page but count it: the fetch limit of this
  machine (Scrapy and the server, with nothing else to do).
* ``naive`` is what one writes first: ``trafilatura.extract`` in the callback, on
  the reactor thread, and one ``INSERT`` + ``COMMIT`` per article into SQLite
  with the stdlib ``sqlite3`` defaults.

Prints one JSON line: pages fetched, articles stored, bytes of page bodies.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import scrapy
import trafilatura
from scrapy.crawler import CrawlerProcess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.domain.config import load_config
from spiders.settings import scrapy_settings

# The keys of newswatch's Scrapy settings that decide how fast and how politely
# pages are fetched; the rest (its pipeline and middlewares) is newswatch's own work.
NETWORK_SETTINGS = (
    "TWISTED_REACTOR",
    "USER_AGENT",
    "ROBOTSTXT_OBEY",
    "AUTOTHROTTLE_ENABLED",
    "AUTOTHROTTLE_START_DELAY",
    "AUTOTHROTTLE_MAX_DELAY",
    "AUTOTHROTTLE_TARGET_CONCURRENCY",
    "CONCURRENT_REQUESTS",
    "CONCURRENT_REQUESTS_PER_DOMAIN",
    "DOWNLOAD_TIMEOUT",
    "DOWNLOAD_MAXSIZE",
    "DOWNLOAD_WARNSIZE",
    "DOWNLOAD_SLOTS",
    "RETRY_TIMES",
    "COOKIES_ENABLED",
    "TELNETCONSOLE_ENABLED",
)


def network_settings(config_file: Path) -> dict[str, Any]:
    """newswatch's settings for ``config_file``, restricted to NETWORK_SETTINGS."""
    settings = scrapy_settings(load_config(config_file))
    return {key: settings[key] for key in NETWORK_SETTINGS if key in settings}


class FetchSpider(scrapy.Spider):
    """Reads one feed and fetches every article it links; counts the pages."""

    name = "fetch"
    pages: ClassVar[int] = 0
    body_bytes: ClassVar[int] = 0

    def __init__(self, feed: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feed = feed

    async def start(self) -> Any:
        yield scrapy.Request(self.feed, callback=self.parse_feed, dont_filter=True)

    def parse_feed(self, response: Any) -> Any:
        for link in response.xpath("//item/link/text()").getall():
            yield response.follow(link.strip(), callback=self.parse_article)

    def parse_article(self, response: Any) -> Any:
        FetchSpider.pages += 1
        FetchSpider.body_bytes += len(response.body)
        return None


class NaiveSpider(FetchSpider):
    """Extracts each page with trafilatura in the callback; one commit per article."""

    name = "naive"
    database: ClassVar[sqlite3.Connection | None] = None
    stored: ClassVar[int] = 0

    def parse_article(self, response: Any) -> Any:
        super().parse_article(response)
        text = trafilatura.extract(response.text, url=response.url)
        title = response.css("title::text").get(default="").strip()
        database = NaiveSpider.database
        assert database is not None
        cursor = database.execute(
            "INSERT OR IGNORE INTO articles (url, title, body, fetched_at) VALUES (?, ?, ?, ?)",
            (response.url, title, text or "", datetime.now(UTC).isoformat()),
        )
        database.commit()
        NaiveSpider.stored += cursor.rowcount
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["fetch", "naive"])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--db", type=Path, help="SQLite file for the naive spider")
    args = parser.parse_args()

    config = load_config(args.config)
    spider: type[FetchSpider] = FetchSpider
    if args.mode == "naive":
        if args.db is None:
            parser.error("naive needs --db")
        NaiveSpider.database = sqlite3.connect(args.db)
        NaiveSpider.database.execute(
            "CREATE TABLE IF NOT EXISTS articles (id INTEGER PRIMARY KEY, url TEXT UNIQUE, "
            "title TEXT, body TEXT, fetched_at TEXT)"
        )
        NaiveSpider.database.commit()
        spider = NaiveSpider
    process = CrawlerProcess(
        network_settings(args.config) | {"LOG_LEVEL": "ERROR", "STATS_DUMP": False}
    )
    for source in config.sources:
        if source.enabled and source.feed:
            process.crawl(spider, feed=str(source.feed))
    process.start()
    print(
        json.dumps(
            {
                "pages": FetchSpider.pages,
                "stored": NaiveSpider.stored if args.mode == "naive" else 0,
                "body_bytes": FetchSpider.body_bytes,
            }
        )
    )


if __name__ == "__main__":
    main()
