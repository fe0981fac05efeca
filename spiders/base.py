"""What every source spider shares: a conditional first fetch, new-link filtering,
and the article pages, fetched once and extracted in the CPU pool.

A subclass only turns its index (a feed, a sitemap, a listing page) into
``ArticleLink``s and hands them to ``follow``. Which URLs are new, and where the
articles go, is the business of the crawl's services (``spiders.services``);
nothing here touches the database.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError
from twisted.internet.error import (
    ConnectionRefusedError,
    DNSLookupError,
    TCPTimedOutError,
    TimeoutError,
)
from twisted.web.client import ResponseFailed

from crawler.domain.config.access import is_socks_proxy
from crawler.domain.failures import FailureClass
from crawler.domain.http import parse_retry_after
from crawler.domain.items import ArticleItem, ArticleLink, ChallengeSeen, FetchState, PollOutcome
from crawler.domain.scheduling import max_age_from
from crawler.domain.urls import (
    InvalidUrlError,
    canonicalize_url,
    compile_url_pattern,
    is_web_url,
    origin,
    pattern_matches,
    redact_text,
    redact_url,
)
from crawler.domain.wording import counted
from spiders.access import proxy_of
from spiders.failures import (
    BotChallengeError,
    BrowserBusyError,
    BrowserLaunchError,
    BrowserTimeoutError,
    SocksProxyError,
    SocksProxyLookupError,
    classify_failure,
    is_browser_error,
)
from spiders.rendering import BROWSER_HANDLERS, CUT_AFTER, browser_meta
from spiders.socks import SOCKS_HANDLERS

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure

    from crawler.domain.config import SourceConfig
    from spiders.services import CrawlServices

logger = logging.getLogger(__name__)

CONDITIONAL = "newswatch_conditional"


class SourceSpider(scrapy.Spider):
    """Polls one source: its index first, then every linked article not stored yet."""

    kind: ClassVar[str] = "source"

    def __init__(
        self,
        *,
        source: SourceConfig,
        state: FetchState,
        context: CrawlServices,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=f"{self.kind}:{source.name}", **kwargs)
        self.source = source
        self.state = state
        self.context = context
        self.outcome = PollOutcome(source=source.name)
        # RE2: matching costs time linear in the URL, whatever the pattern.
        self._allow = [compile_url_pattern(pattern) for pattern in source.allow]
        self._deny = [compile_url_pattern(pattern) for pattern in source.deny]
        credentials = source.credentials()
        self._authorization = basic_authorization(*credentials) if credentials else None
        self._auth_origin = origin(source.url)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        # Before the crawl's settings freeze: a source that renders pages has them go
        # through the browser's handler (the only way Playwright is ever imported; it
        # sends what it does not render through a SOCKS proxy itself), one behind a
        # SOCKS proxy through Scrapy's httpx handler (spiders.socks).
        if spider.source.uses_browser:
            crawler.settings.set("DOWNLOAD_HANDLERS", BROWSER_HANDLERS, priority="spider")
        elif is_socks_proxy(
            proxy_of(spider.source, crawler.settings.get("NEWSWATCH_SITE_ACCESS") or {})
        ):
            crawler.settings.set("DOWNLOAD_HANDLERS", SOCKS_HANDLERS, priority="spider")
        return spider

    async def start(self) -> AsyncIterator[Any]:
        yield self.first_request()

    def first_request(self) -> scrapy.Request:
        """The conditional fetch of the source's own URL."""
        raise NotImplementedError

    # -- the index ------------------------------------------------------------

    def index_request(
        self, url: str, callback: Any, *, conditional: bool, **meta: Any
    ) -> scrapy.Request:
        """A request for an index page; ``conditional`` ones send the validators."""
        headers = self.auth_headers(url)
        rendered = self.source.render == "browser"
        # A rendered page's content comes from its scripts' requests too, which a 304
        # for the page itself says nothing about: only its rendered text is compared.
        if conditional and self.state.etag and not rendered:
            headers["If-None-Match"] = self.state.etag
        if conditional and self.state.last_modified and not rendered:
            headers["If-Modified-Since"] = self.state.last_modified
        if rendered:
            meta = {**meta, **browser_meta(self.source.links)}
        return scrapy.Request(
            url,
            callback=callback,
            errback=self.index_failed,
            headers=headers,
            dont_filter=True,
            meta={CONDITIONAL: conditional, "handle_httpstatus_list": [304], **meta},
        )

    def auth_headers(self, url: str) -> dict[str, str]:
        """The source's basic authentication, for a URL on the source's own origin
        (scheme, host and port) only. Scrapy's redirects drop it when the origin
        changes; no other host ever gets it."""
        if self._authorization is not None and origin(url) == self._auth_origin:
            return {"Authorization": self._authorization}
        return {}

    def source_of(self, request: scrapy.Request) -> SourceConfig:
        """The source a request is for: its headers, cookies, user agent and proxy are
        added as it leaves (spiders.access.SiteAccessMiddleware)."""
        return self.source

    def index_changed(self, response: Response, discovered_url: str | None = None) -> bool:
        """False when the index is as it was at the last good poll: skip all parsing.

        Either the server said 304, or (for servers without validators) the body
        hashes the same. Otherwise the response's validators are kept in the
        outcome, for the poll to remember.
        """
        self.note_moved(response)
        self.note_cut(response)
        conditional = response.meta.get(CONDITIONAL, False)
        if response.status == 304:
            self.outcome.not_modified = True
            # What is remembered stays, with what this answer's headers ask now.
            retry_after, max_age = _header_hints(response)
            self.outcome.state = replace(self.state, retry_after=retry_after, max_age=max_age)
            return False
        content_hash = hashlib.sha256(response.body).hexdigest()
        retry_after, max_age = _header_hints(response)
        self.outcome.state = FetchState(
            etag=_header(response, "ETag"),
            last_modified=_header(response, "Last-Modified"),
            content_hash=content_hash,
            discovered_url=discovered_url,
            # A feed's own hints are read from its body (spiders.feeds); an unchanged
            # body keeps the ones read last time.
            ttl=self.state.ttl,
            update_period=self.state.update_period,
            retry_after=retry_after,
            max_age=max_age,
        )
        if conditional and content_hash == self.state.content_hash:
            self.outcome.unchanged = True
            return False
        return True

    def note_moved(self, response: Response) -> None:
        """A source URL that answered a permanent redirect (301/308) moved: the poll
        follows it, and the outcome says where to (the source's health: moved)."""
        urls = response.meta.get("redirect_urls") or []
        reasons = response.meta.get("redirect_reasons") or []
        if not urls or not reasons or urls[0] != self.source.url or reasons[0] not in (301, 308):
            return
        self.outcome.moved_to = response.url
        logger.warning(
            "source %s: %s moved permanently (%s) to %s; update the configuration",
            self.source.name,
            redact_url(urls[0]),
            reasons[0],
            redact_url(response.url),
        )

    def note_cut(self, response: Response) -> None:
        """A rendered page still loading at the time limit was read as far as it got:
        said once per poll, in the log and the poll's warnings."""
        seconds = response.meta.get(CUT_AFTER)
        if seconds is None:
            return
        message = (
            f"{redact_url(response.url)} was still loading after {seconds:.0f}s "
            "(browser.page_timeout): read as far as it got"
        )
        if message not in self.outcome.warnings:
            self.outcome.warnings.append(message)
            logger.warning("source %s: %s", self.source.name, message)

    def index_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        self.outcome.retry_after = request.meta.get("retry_after")
        # After redirects, name the URL the source asked for: that is what a user knows.
        url = request.meta.get("redirect_urls", [request.url])[0]
        if failure.check(BotChallengeError):
            self.note_challenge(cast("BotChallengeError", failure.value))
        kind, status = classify_failure(failure)
        self.fail(url, self.describe(failure), request.meta.get("what"), kind=kind, status=status)

    def fail(
        self,
        url: str,
        reason: str,
        what: str | None = None,
        *,
        kind: FailureClass,
        status: int | None = None,
    ) -> None:
        """The poll failed: one log line with the source, the URL and the reason (which
        is also the source's ``last_error``), userinfo redacted from both; ``kind``
        and ``status`` (the HTTP status, if the server answered) go in the outcome."""
        reason = redact_text(reason)
        self.outcome.error = reason
        self.outcome.error_class = kind
        self.outcome.status = status
        logger.error(
            "source %s: %s %s failed: %s",
            self.source.name,
            what or self.kind,
            redact_url(url),
            reason,
        )

    def describe(self, failure: Failure) -> str:
        """describe_failure, knowing this crawl's size limit and whether it is stopping."""
        crawler = getattr(self, "crawler", None)
        maxsize = failure.request.meta.get("download_maxsize")  # type: ignore[attr-defined]
        if maxsize is None and crawler is not None:
            maxsize = crawler.settings.getint("DOWNLOAD_MAXSIZE")
        return describe_failure(
            failure, maxsize=maxsize, stopping=crawler is not None and not crawler.crawling
        )

    def closed(self, reason: str) -> None:
        """Scrapy's last call. A poll stopped by ``poll_timeout`` says so in one line;
        its links left unfetched are still new, so the next poll fetches them (and,
        not every page being settled, it reads the index again)."""
        if reason != "closespider_timeout":
            return
        left = max(0, self.outcome.new_urls - self.outcome.settled)
        seconds = self.crawler.settings.getfloat("CLOSESPIDER_TIMEOUT")
        message = (
            f"poll stopped after {seconds:.0f}s (poll_timeout); {counted(left, 'new link')} "
            "left for the next poll"
        )
        self.outcome.warnings.append(message)
        logger.warning("source %s: %s", self.source.name, message)

    # -- articles -------------------------------------------------------------

    def wanted(self, url: str) -> bool:
        """Only http(s) links that pass the source's allow and deny patterns."""
        if not is_web_url(url):
            return False
        if self._allow and not any(pattern_matches(p, url) for p in self._allow):
            return False
        return not any(pattern_matches(p, url) for p in self._deny)

    async def follow(self, links: Iterable[ArticleLink]) -> AsyncIterator[scrapy.Request]:
        """Requests for the linked articles that are wanted and not stored yet (or
        that the index says were updated since we fetched them)."""
        by_url: dict[str, ArticleLink] = {}
        for link in links:
            if not self.wanted(link.url):
                continue
            try:
                by_url.setdefault(canonicalize_url(link.url), link)
            except InvalidUrlError as error:  # a broken host or port: no page to fetch
                logger.debug(
                    "source %s: link %s skipped: %s", self.source.name, redact_url(link.url), error
                )
        self.outcome.entries += len(by_url)
        try:
            new_urls = await self.context.urls_to_fetch(
                [(url, link.updated) for url, link in by_url.items()]
            )
        except Exception as error:  # the database is away (locked, restarting)
            # Which links are new is unknown: the poll fails, so that the next one
            # reads the index again instead of taking it as seen.
            self.fail(
                self.source.url,
                f"could not look up stored articles: {error}",
                kind=FailureClass.OTHER,
            )
            return
        if len(new_urls) > self.source.max_articles:
            # The rest stay new and are fetched by the next polls, newest first.
            logger.info(
                "source %s: %s; fetching the first %d this poll",
                self.source.name,
                counted(len(new_urls), "new link"),
                self.source.max_articles,
            )
            new_urls = new_urls[: self.source.max_articles]
            self.outcome.deferred = True
        self.outcome.new_urls += len(new_urls)
        for rank, url in enumerate(new_urls):
            link = by_url[url]
            yield scrapy.Request(
                link.url,
                callback=self.parse_article,
                errback=self.article_failed,
                headers=self.auth_headers(link.url),
                cb_kwargs={"link": link},
                meta=browser_meta(None) if self.source.render_articles else {},
                # Scrapy's queue is last-in first-out; keep the index's order (newest first).
                priority=len(new_urls) - rank,
            )

    async def parse_article(self, response: Response, link: ArticleLink) -> AsyncIterator[Any]:
        if not isinstance(response, TextResponse) or looks_binary(response.body):
            # Permanent: counted as skipped, not as an error to retry at every poll.
            self.outcome.skipped += 1
            logger.warning(
                "source %s: article %s skipped: not a text page (%s)",
                self.source.name,
                redact_url(response.url),
                _header(response, "Content-Type") or "no type",
            )
            return
        self.note_cut(response)
        article, keys = await self.context.extract(
            response.body, response.url, _header(response, "Content-Type")
        )
        if not article.title and link.title:
            article = replace(article, title=link.title)
        if article.published is None and link.published is not None:
            article = replace(article, published=link.published)
        yield ArticleItem(
            source=self.source.name,
            fetched_url=response.url,
            article=article,
            feed_published=link.published,
            feed_title=link.title,
            keys=keys,
        )

    def article_failed(self, failure: Failure) -> None:
        # Not stored: the URL stays new, and with a page error the poll does not take
        # the index as seen, so the next poll fetches the page again.
        self.outcome.page_errors += 1
        if failure.check(BotChallengeError):
            blocked = cast("BotChallengeError", failure.value)
            self.note_challenge(blocked)
            logger.warning(
                "source %s: %s at %s (HTTP %d, %s): not stored, retried next poll",
                self.source.name,
                blocked.challenge.label,
                redact_url(blocked.response.url),
                blocked.status,
                blocked.challenge.evidence,
            )
            return
        logger.warning(
            "source %s: article %s failed: %s",
            self.source.name,
            redact_url(failure.request.url),  # type: ignore[attr-defined]
            redact_text(self.describe(failure)),
        )

    def note_challenge(self, blocked: BotChallengeError) -> None:
        """Count a bot-challenge page; keep the first as the poll's evidence."""
        self.outcome.challenges += 1
        if self.outcome.challenge is None:
            self.outcome.challenge = ChallengeSeen(
                url=redact_url(blocked.response.url),
                vendor=blocked.challenge.vendor,
                status=blocked.status,
                evidence=blocked.challenge.evidence,
            )


def looks_binary(body: bytes) -> bool:
    """True for bodies that are no text in any encoding (images, archives, random
    bytes), whatever their Content-Type says: NUL bytes, or mostly control bytes."""
    head = body[:4096]
    if b"\x00" in head:
        return True
    controls = sum(1 for byte in head if byte < 32 and byte not in (9, 10, 13))
    return bool(head) and controls / len(head) > 0.1


def describe_failure(
    failure: Failure, *, maxsize: int | None = None, stopping: bool = False
) -> str:
    """A one-line reason for a failed request, for logs and the source's state: never
    empty, always what happened (``maxsize``: the crawl's download_maxsize;
    ``stopping``: the crawl is being stopped, so a cancelled download is the stop's)."""
    if failure.check(BotChallengeError):
        return cast("BotChallengeError", failure.value).reason
    if failure.check(HttpError):
        response = cast("HttpError", failure.value).response
        reason = f"HTTP {response.status}"
        retry_after = response.request.meta.get("retry_after") if response.request else None
        return f"{reason} (Retry-After {retry_after:.0f}s)" if retry_after else reason
    if failure.value is not None and is_browser_error(failure.value):
        # Playwright's message: one line of what happened, then its call log.
        first = str(failure.value).strip().splitlines()[:1]
        return f"browser: {first[0] if first else type(failure.value).__name__}"
    message = " ".join(failure.getErrorMessage().split())
    if failure.check(SocksProxyError, SocksProxyLookupError):
        return message  # already one line that names the proxy (spiders/socks.py)
    if failure.check(BrowserBusyError, BrowserLaunchError, BrowserTimeoutError):
        return message
    if failure.check(IgnoreRequest):
        return message or "request ignored"
    if failure.check(DNSLookupError, CannotResolveHostError):
        return "DNS lookup failed"
    if failure.check(DownloadTimeoutError, TimeoutError, TCPTimedOutError):
        return f"timed out ({message})" if message else "timed out"
    if failure.check(DownloadConnectionRefusedError, ConnectionRefusedError):
        return "connection refused"
    if failure.check(ResponseDataLossError):
        return "the connection closed before the whole response arrived"
    if failure.check(DownloadCancelledError, CancelledError):
        if message:  # Scrapy's own, e.g. "expected response size (…) larger than …"
            return f"download cancelled: {message}"
        if stopping:
            return "download cancelled: the crawl was stopped (shutdown)"
        # Scrapy cancels a body that grows past the limit without saying why.
        limit = f" ({maxsize} bytes)" if maxsize else ""
        return f"download cancelled: response larger than download_maxsize{limit}"
    if failure.check(DownloadFailedError, ResponseFailed):
        reasons = _reasons(failure.value) if failure.value is not None else ""
        return f"download failed: {reasons or 'the connection failed'}"
    name = failure.type.__name__ if failure.type else "error"
    return f"{name}: {message}" if message else f"{name} (no details given)"


def _reasons(error: BaseException) -> str:
    """What a wrapped Twisted ResponseFailed says, not its list of Failure reprs."""
    reasons = getattr(error.__cause__, "reasons", None) or getattr(error, "reasons", None)
    if not reasons:
        return " ".join(str(error).split())
    return "; ".join(
        " ".join(r.getErrorMessage().split()).rstrip(".") or r.type.__name__ for r in reasons
    )


def basic_authorization(user: str, password: str) -> str:
    """The ``Authorization`` value of HTTP basic authentication (RFC 7617, UTF-8)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _header_hints(response: Response) -> tuple[float | None, float | None]:
    """How long an index response asks us to stay away, in seconds: its
    ``Retry-After`` and ``Cache-Control: max-age`` (FetchState)."""
    max_age = max_age_from(_header(response, "Cache-Control"))
    return (
        parse_retry_after(_header(response, "Retry-After")),
        max_age.total_seconds() if max_age is not None else None,
    )
