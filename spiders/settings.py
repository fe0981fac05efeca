"""Scrapy settings for every newswatch crawl, derived from the configuration."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any, Self

from scrapy.settings import Settings

from crawler import __version__
from spiders.access import domain_access
from spiders.rendering import BROWSER_HANDLERS, CHROMIUM_ARGS
from spiders.socks import SOCKS_HANDLERS

if TYPE_CHECKING:
    from crawler.domain.config import Config

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

# Failures retried within a poll (RETRY_TIMES more tries): quick ones. Scrapy's default
# list without its timeouts (DownloadTimeoutError, and twisted's ConnectError, which
# covers connect timeouts): a request that timed out has cost a whole download_timeout
# already, and retrying it let one slow-drip server hold a poll for 3× that. It fails
# the poll at once instead; the next poll, put off by the failure backoff, is its
# retry, as feed readers such as miniflux do it.
RETRIED_EXCEPTIONS = [
    "scrapy.exceptions.CannotResolveHostError",
    "scrapy.exceptions.DownloadConnectionRefusedError",
    "scrapy.exceptions.DownloadFailedError",
    "scrapy.exceptions.ResponseDataLossError",
    "twisted.internet.error.ConnectionDone",
    "twisted.internet.error.ConnectionLost",
    "twisted.internet.error.ConnectionRefusedError",
    "twisted.internet.error.NoRouteError",
    "twisted.internet.error.DNSLookupError",
    # raised by the HttpCompression middleware for an empty compressed body
    "builtins.OSError",
    "scrapy.core.downloader.handlers.http11.TunnelError",
]


def user_agent(contact: str) -> str:
    """``newswatch/<version> (+<contact>)``: who we are and how a site owner reaches us."""
    return f"newswatch/{__version__} (+{contact})"


def scrapy_settings(config: Config) -> dict[str, Any]:
    """Polite defaults: robots.txt, AutoThrottle, bounded sizes and timeouts."""
    return {
        "TWISTED_REACTOR": ASYNCIO_REACTOR,
        "USER_AGENT": user_agent(config.user_agent_contact),
        # robots.txt is read for newswatch, whatever User-Agent a source sends
        # (sources[].user_agent): a site that keeps newswatch out keeps it out.
        "ROBOTSTXT_USER_AGENT": user_agent(config.user_agent_contact),
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
        # Responses a crawl holds while they wait for the CPU pool (Scrapy: 5 MB). The
        # pool takes a few pages at a time whatever is waiting; with 8 or more polls
        # running, 1 MB each keeps it fed and the crawling process small.
        "SCRAPER_SLOT_MAX_ACTIVE_SIZE": 1_000_000,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.concurrent_requests_per_domain,
        "DOWNLOAD_TIMEOUT": config.download_timeout.total_seconds(),
        # The whole poll's bound: then no new request starts, those under way finish
        # (each within DOWNLOAD_TIMEOUT), and the links left are new at the next poll.
        "CLOSESPIDER_TIMEOUT": config.poll_timeout.total_seconds(),
        "DOWNLOAD_MAXSIZE": config.download_maxsize,
        "DOWNLOAD_WARNSIZE": config.download_maxsize // 2,
        "RETRY_TIMES": 2,
        "RETRY_EXCEPTIONS": RETRIED_EXCEPTIONS,  # never a timeout: see above
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "STATS_DUMP": False,
        "LOG_ENABLED": False,
        # Every poll is a new crawler, and every crawler loads and builds each component
        # of these lists (Scrapy resolves every name in a *_BASE list, the disabled ones
        # too): they name only what newswatch uses, so that a poll that gets a 304 costs
        # a few milliseconds less, and a run does not import the cookie jar's public
        # suffix list or the remote-control server's aiohttp (~0.2 s). Left out: feed
        # exports, telnet, memory checks, close conditions, periodic log lines, spider
        # state, remote control, cookies, HTTP auth, the HTTP cache, Scrapy's own
        # robots.txt (spiders.middlewares replaces it), and non-HTTP schemes.
        "EXTENSIONS_BASE": {
            "scrapy.extensions.corestats.CoreStats": 0,
            "scrapy.extensions.logcount.LogCount": 0,
            "scrapy.extensions.throttle.AutoThrottle": 0,
            "scrapy.extensions.closespider.CloseSpider": 0,
        },
        "DOWNLOAD_HANDLERS_BASE": {
            "http": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
            "https": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
        },
        "SPIDER_MIDDLEWARES_BASE": {
            "scrapy.spidermiddlewares.start.StartSpiderMiddleware": 25,
            "scrapy.spidermiddlewares.httperror.HttpErrorMiddleware": 50,
            "scrapy.spidermiddlewares.referer.RefererMiddleware": 700,
            "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": 800,
            "scrapy.spidermiddlewares.depth.DepthMiddleware": 900,
        },
        "ITEM_PIPELINES": {"spiders.pipelines.ArticlePipeline": 300},
        # Each download takes its turn at the host gate shared by every poll of the
        # process: a host's concurrency and delay hold across polls, not per poll.
        "DOWNLOADER": "spiders.hostgate.GatedDownloader",
        "DOWNLOADER_MIDDLEWARES_BASE": {
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": 50,
            "scrapy.downloadermiddlewares.downloadtimeout.DownloadTimeoutMiddleware": 350,
            "scrapy.downloadermiddlewares.defaultheaders.DefaultHeadersMiddleware": 400,
            "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware": 500,
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": 550,
            # (MetaRefreshMiddleware, 580: spiders.middlewares has a leaner one, below)
            "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": 590,
            "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": 600,
            "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": 750,
            "scrapy.downloadermiddlewares.stats.DownloaderStats": 850,
        },
        "DOWNLOADER_MIDDLEWARES": {
            # First, so a refused address is not even asked for its robots.txt; it
            # sees redirect targets too (they come back through every middleware).
            "spiders.addresses.AddressPolicyMiddleware": 50,
            "spiders.middlewares.CrawlDelayRobotsTxtMiddleware": 100,
            # After decompression (590), before the refresh and retry middlewares
            # (580-550) in response order: a challenge page is never followed or retried.
            "spiders.middlewares.BotChallengeMiddleware": 585,
            "spiders.middlewares.HeadMetaRefreshMiddleware": 580,
            # After RetryMiddleware (550) in response order, so it sees 429/503 first.
            "spiders.middlewares.RetryAfterMiddleware": 560,
            # A source's headers, cookies, user agent and proxy: after the redirect
            # middleware (600), before the proxy middleware (750) reads its proxy.
            "spiders.access.SiteAccessMiddleware": 700,
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
        **browser_settings(config),
        # Names of variables and files, and plain header values: read per request.
        "NEWSWATCH_SITE_ACCESS": domain_access(config),
        "NEWSWATCH_MAX_RETRY_AFTER": config.max_retry_after.total_seconds(),
        "NEWSWATCH_MAX_CRAWL_DELAY": 60.0,
        "NEWSWATCH_DENY_PRIVATE_ADDRESSES": config.fetch_policy.deny_private_addresses,
        "NEWSWATCH_DENY_NETWORKS": list(config.fetch_policy.deny_networks),
        "NEWSWATCH_WEB_ADDRESS": (config.web.host, config.web.port) if config.web.enabled else None,
    }


def browser_settings(config: Config) -> dict[str, Any]:
    """scrapy-playwright's settings and newswatch's browser limits: plain data, read
    only by spiders.browser, which a crawl loads only when its source renders pages
    (its spider names the handler: spiders.rendering)."""
    browser = config.browser
    return {
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {
            "executable_path": str(browser.executable) if browser.executable else None,
            "headless": True,
            "args": CHROMIUM_ARGS,
        },
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": browser.page_timeout.total_seconds() * 1000,
        # One context per poll, closed with it; the pages it renders at once are also
        # bounded across polls (spiders.browser.BrowserHost).
        "PLAYWRIGHT_MAX_CONTEXTS": 1,
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": browser.max_pages,
        "NEWSWATCH_BROWSER_MAX_PAGES": browser.max_pages,
        "NEWSWATCH_BROWSER_PAGE_TIMEOUT": browser.page_timeout.total_seconds(),
        "NEWSWATCH_BROWSER_IDLE_CLOSE": browser.idle_close.total_seconds(),
        "NEWSWATCH_BROWSER_BLOCK": list(browser.block),
    }


class PollSettings(Settings):
    """Scrapy settings that copy themselves by pickling.

    Every poll is a new crawler, and Scrapy's Crawler starts by copying the
    settings, with ``copy.deepcopy``: a walk of some 2,300 objects, one Python call
    each (Scrapy's defaults with their priorities), ~1.3 ms per poll, the largest
    part of a poll that gets a 304. A pickle round trip makes the same independent
    copy in a third of the time. (A value that cannot be pickled falls back to
    deepcopy; newswatch's settings are all plain data.)
    """

    def copy(self) -> Self:
        try:
            return pickle.loads(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301 - our own bytes, a moment old
        except (pickle.PicklingError, TypeError, AttributeError):
            return super().copy()


def cluster_settings(config: Config, worker_id: str) -> dict[str, Any]:
    """A worker's settings (``newswatch worker``): ``scrapy_settings`` with scrapy-redis's
    scheduler, priority queue and dupefilter on ``config.redis``, shared by every
    worker, and the per-host cap counted across workers (spiders/cluster.py)."""
    from crawler.storage.cluster import ClusterKeys

    keys = ClusterKeys(config.cluster.queue_prefix)
    settings = scrapy_settings(config)
    return settings | {
        "SCHEDULER": "spiders.cluster.ClusterScheduler",
        "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
        "SCHEDULER_QUEUE_KEY": keys.requests,
        "DUPEFILTER_CLASS": "spiders.cluster.ExpiringDupeFilter",
        "SCHEDULER_DUPEFILTER_KEY": keys.dupefilter,
        # The queue outlives every worker: a worker that stops leaves it to the others.
        "SCHEDULER_PERSIST": True,
        "REDIS_URL": config.redis,
        # One crawl serves every source here, not one crawl per poll: it runs for as
        # long as the worker does.
        "CONCURRENT_REQUESTS": config.cluster.concurrent_requests,
        "CLOSESPIDER_TIMEOUT": 0,
        # Articles are stored by the worker's spider itself, per poll (spiders/cluster.py).
        "ITEM_PIPELINES": {},
        "DOWNLOADER_MIDDLEWARES": {
            **settings["DOWNLOADER_MIDDLEWARES"],
            # Last before the download, first after it: a lease covers the download only.
            "spiders.cluster.DomainSlotsMiddleware": 950,
        },
        # One crawl holds every poll's responses here, not one crawl per poll: Scrapy's
        # default (5 MB) rather than the per-poll 1 MB.
        "SCRAPER_SLOT_MAX_ACTIVE_SIZE": 5_000_000,
        # One crawl for every source: it renders pages if any source asks for it
        # (a worker started before the first such source was added needs a restart).
        # Either handler sends the requests through a SOCKS proxy to Scrapy's httpx
        # handler and the others to its HTTP/1.1 one, whatever proxy a source has now.
        "DOWNLOAD_HANDLERS": (
            BROWSER_HANDLERS
            if any(source.uses_browser for source in config.sources)
            else SOCKS_HANDLERS
        ),
        "NEWSWATCH_QUEUE_PREFIX": config.cluster.queue_prefix,
        "NEWSWATCH_WORKER_ID": worker_id,
    }
