"""Downloader middlewares that make newswatch a polite client.

Scrapy obeys robots.txt rules but not its ``Crawl-delay``, and retries 429/503 at
once, ignoring ``Retry-After``. Sites that publish either mean it; these two
middlewares honour them. Scrapy also fetches robots.txt again for every crawl, that
is for every poll: here it is fetched once a day per site and kept in the database.
And Scrapy decodes every page whole to look for a ``<meta http-equiv="refresh">`` in
its first 4,096 characters; here only those first bytes are decoded. Last, a bot
wall's challenge page is stopped here, before anything takes it for the page.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.redirect import MetaRefreshMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import HtmlResponse
from scrapy.utils.httpobj import urlparse_cached
from w3lib.encoding import html_to_unicode
from w3lib.html import get_meta_refresh

from crawler.domain.http import parse_retry_after
from spiders.failures import BotChallengeError, response_challenge
from spiders.hostgate import DELAY_FLOOR
from spiders.robotstxt import RobotsTxtRules

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response
    from scrapy.robotstxt import RobotParser
    from scrapy.settings import BaseSettings

    from spiders.services import CrawlServices

logger = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = frozenset({429, 503})
# Where a refresh tag is looked for: the head of the page, as Scrapy does.
META_REFRESH_HEAD_BYTES = 4096


def delay_floor(configured: float, robots_delay: float | None, max_delay: float) -> float:
    """The least gap between two requests to a host: its configured delay, or its
    robots.txt ``Crawl-delay`` capped at ``max_delay`` when that is larger. A delay
    that is not a finite number of seconds (``nan``, ``1e309``) or is negative
    counts as none."""
    floor = configured if math.isfinite(configured) and configured > 0 else 0.0
    if robots_delay is not None and math.isfinite(robots_delay) and robots_delay > 0:
        floor = max(floor, min(robots_delay, max_delay))
    return floor


class CrawlDelayRobotsTxtMiddleware(RobotsTxtMiddleware):
    """robots.txt rules as Scrapy applies them, plus its ``Crawl-delay``.

    The larger of the robots.txt delay (capped by ``NEWSWATCH_MAX_CRAWL_DELAY``) and
    the host's configured delay (``domains:`` in the config) becomes a floor for the
    host's download slot: AutoThrottle may slow down but not speed up past it, and
    no random jitter takes a gap below it.

    The rules are read by spiders.robotstxt.RobotsTxtRules (whatever
    ``ROBOTSTXT_PARSER`` says), whose work is bounded however the file is written.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._parserimpl = RobotsTxtRules  # type: ignore[assignment]
        self._max_delay = crawler.settings.getfloat("NEWSWATCH_MAX_CRAWL_DELAY", 60.0)
        self._slot_settings = crawler.settings.getdict("DOWNLOAD_SLOTS")

    async def robot_parser(self, request: Request) -> RobotParser | None:
        """The site's rules: from the robots.txt fetched within a day if there is one,
        else fetched now (and remembered)."""
        url = urlparse_cached(request)
        context = self._context()
        if url.netloc not in self._parsers and context is not None:
            origin = f"{url.scheme}://{url.netloc}"
            body = await context.robots_txt(origin)
            if body is not None and url.netloc not in self._parsers:
                self._parsers[url.netloc] = RobotsTxtRules(
                    body, self.crawler.spider, f"{origin}/robots.txt"
                )
        return await super().robot_parser(request)

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        await super()._parse_robots(response, netloc, request)
        if isinstance(parser := self._parsers.get(netloc), RobotsTxtRules):
            parser.url = response.url  # read lazily: its log lines will name it
        context = self._context()
        if context is None or response.status >= 500:
            return  # a server error says nothing about the rules: ask again next poll
        # 4xx: no robots.txt, everything allowed (RFC 9309 2.3.1.3).
        body = response.body if response.status == 200 else b""
        await context.remember_robots_txt(f"{urlparse_cached(response).scheme}://{netloc}", body)

    def _context(self) -> CrawlServices | None:
        return getattr(self.crawler.spider, "context", None)

    def process_request_2(self, rp: RobotParser | None, request: Request) -> None:
        super().process_request_2(rp, request)
        downloader = self.crawler.engine.downloader
        key, slot = downloader._get_slot(request)  # Scrapy has no public slot accessor
        agent = self._robotstxt_useragent or request.headers.get(
            b"User-Agent", self._default_useragent
        )
        floor = delay_floor(
            float(self._slot_settings.get(key, {}).get("delay", 0.0)),
            rp.crawl_delay(agent) if rp is not None and agent else None,
            self._max_delay,
        )
        request.meta[DELAY_FLOOR] = floor  # the same gap across every poll (spiders.hostgate)
        if floor <= 0:
            return
        request.meta["autothrottle_dont_adjust_delay"] = True
        if slot.delay <= floor:
            slot.delay, slot.jitter = floor, 0.0


class RetryAfterMiddleware:
    """Wait what a 429/503 ``Retry-After`` asks (up to a cap), then try again.

    A wait longer than ``NEWSWATCH_MAX_RETRY_AFTER`` is not waited out in the
    crawl: the response goes on as a failure and the source's next poll is pushed
    back instead (the poll orchestrator reads ``retry_after`` from the response).
    """

    def __init__(self, max_wait: float, max_retries: int) -> None:
        self.max_wait = max_wait
        self.max_retries = max_retries

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(
            crawler.settings.getfloat("NEWSWATCH_MAX_RETRY_AFTER", 60.0),
            crawler.settings.getint("RETRY_TIMES", 2),
        )

    async def process_response(self, request: Request, response: Response) -> Any:
        if response.status not in RETRY_AFTER_STATUSES:
            return response
        header = response.headers.get("Retry-After")
        wait = parse_retry_after(header.decode("latin-1") if header else None)
        if wait is None:
            return response  # Scrapy's RetryMiddleware retries it the usual way
        attempts = request.meta.get("retry_after_attempts", 0)
        if wait > self.max_wait or attempts >= self.max_retries:
            request.meta["retry_after"] = wait
            request.meta["dont_retry"] = True  # retrying at once is what the site asked not to
            return response
        logger.info(
            "%s answered %d; waiting %.0fs as its Retry-After asks",
            request.url,
            response.status,
            wait,
        )
        await asyncio.sleep(wait)
        retry = request.replace(dont_filter=True)
        retry.meta["retry_after_attempts"] = attempts + 1
        # Our own retry stands in for Scrapy's; don't let it retry this one again.
        retry.meta["retry_times"] = request.meta.get("retry_times", 0)
        return retry


class HeadMetaRefreshMiddleware(MetaRefreshMiddleware):
    """Scrapy's MetaRefreshMiddleware, asked only about pages whose first
    META_REFRESH_HEAD_BYTES hold a refresh tag.

    Scrapy's reads ``response.text``: it detects the charset of the whole page,
    decodes all of it and keeps the decoded copy with the response, to look at its
    first 4,096 characters. In the crawling process, where pages only pass through
    on their way to the extraction workers, that was a second copy of every page in
    flight (~65 MB at the benchmark's peak) and a decode per page on the reactor
    thread. The head alone is decoded here; the rare page with a tag goes through
    Scrapy's own code (same settings, same redirects).
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.ignore_tags: list[str] = settings.getlist("METAREFRESH_IGNORE_TAGS")

    # Scrapy >= 2.13 calls it without the deprecated spider argument its stubs still name.
    def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        if isinstance(response, HtmlResponse) and not has_meta_refresh(response, self.ignore_tags):
            return response
        return super().process_response(request, response)


def has_meta_refresh(response: Response, ignore_tags: list[str]) -> bool:
    """True when the first META_REFRESH_HEAD_BYTES of the page hold a refresh tag
    outside ``ignore_tags`` (decoded by the charset the header, a BOM or the page
    declares, as Scrapy would)."""
    content_type = response.headers.get(b"Content-Type")
    _, head = html_to_unicode(
        content_type.decode("latin-1") if content_type else None,
        response.body[:META_REFRESH_HEAD_BYTES],
    )
    _, url = get_meta_refresh(head, response.url, ignore_tags=ignore_tags)
    return url is not None


class BotChallengeMiddleware:
    """A bot wall's challenge, CAPTCHA or block page (crawler.domain.challenges) goes
    to the request's errback as a BotChallengeError, whatever its status.

    So a 200 challenge page is never extracted, stored or matched as an article, nor
    read as a feed; and, placed after decompression but before the retry middlewares
    in response order, a 403/429/503 challenge is not retried at once: the wall
    answers the same until the source recovers, which a later poll finds out. A
    ``Retry-After`` it sends still pushes the source's next poll back.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        challenge = response_challenge(response)
        if challenge is None:
            return response
        header = response.headers.get("Retry-After")
        wait = parse_retry_after(header.decode("latin-1") if header else None)
        if wait is not None:
            request.meta["retry_after"] = wait
        raise BotChallengeError(challenge, response)
