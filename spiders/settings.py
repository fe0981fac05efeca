"""Scrapy settings for every newswatch crawl, derived from the configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawler import __version__

if TYPE_CHECKING:
    from crawler.config import Config

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def user_agent(contact: str) -> str:
    """``newswatch/<version> (+<contact>)``: who we are and how a site owner reaches us."""
    return f"newswatch/{__version__} (+{contact})"


def scrapy_settings(config: Config) -> dict[str, Any]:
    """Polite defaults: robots.txt, AutoThrottle, bounded sizes and timeouts."""
    return {
        "TWISTED_REACTOR": ASYNCIO_REACTOR,
        "USER_AGENT": user_agent(config.user_agent_contact),
        "ROBOTSTXT_OBEY": config.obey_robots_txt,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": 0.5,
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(config.concurrent_requests_per_domain),
        # One crawler polls one source (mostly one site): more requests than the
        # per-site cap would only pile up response bodies in memory.
        "CONCURRENT_REQUESTS": config.concurrent_requests_per_domain,
        # An article response yields one item; Scrapy's default of 100 concurrent item
        # tasks per response only costs scheduling on the reactor thread.
        "CONCURRENT_ITEMS": 1,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.concurrent_requests_per_domain,
        "DOWNLOAD_TIMEOUT": config.download_timeout.total_seconds(),
        "DOWNLOAD_MAXSIZE": config.download_maxsize,
        "DOWNLOAD_WARNSIZE": config.download_maxsize // 2,
        "RETRY_TIMES": 2,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "STATS_DUMP": False,
        "LOG_ENABLED": False,
        "EXTENSIONS": {"scrapy.extensions.logstats.LogStats": None},
        "ITEM_PIPELINES": {"spiders.pipelines.ArticlePipeline": 300},
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "spiders.middlewares.CrawlDelayRobotsTxtMiddleware": 100,
            # After RetryMiddleware (550) in response order, so it sees 429/503 first.
            "spiders.middlewares.RetryAfterMiddleware": 560,
        },
        "DOWNLOAD_SLOTS": {
            host: {
                key: value
                for key, value in (
                    ("concurrency", domain.concurrency),
                    ("delay", domain.delay.total_seconds() if domain.delay else None),
                )
                if value is not None
            }
            for host, domain in config.domains.items()
        },
        "NEWSWATCH_MAX_RETRY_AFTER": config.max_retry_after.total_seconds(),
        "NEWSWATCH_MAX_CRAWL_DELAY": 60.0,
    }
