"""The worker's crawl: one long-lived spider over scrapy-redis's shared request queue.

A worker (``newswatch worker``) runs one ``ClusterSpider`` for its whole life. It
takes poll jobs from Redis (crawler/storage/cluster.py ``PollQueue``), turns each into its
source's index request, and lets scrapy-redis put every request in the queue all
workers share: the index of a poll may be fetched by one worker and its articles by
three others. Each request therefore carries its poll (id, source, remembered
validators) in its meta, and whichever worker takes it parses the response with the
source's own spider (``FeedSpider``, ``SitemapSpider``, ``ListingSpider``: the same
code as the all-in-one mode), kept per poll, and settles it in the poll's ledger.

The parts scrapy-redis gives (scheduler, priority queue, dupefilter) are used with
two additions, both about workers that die:

- ``ClusterScheduler`` notes each request it takes in the worker's in-flight record
  in the same Redis step; settling the request removes it. When the worker's
  heartbeat stops, another worker puts those requests back in the queue.
- ``ExpiringDupeFilter`` filters a request only while the same request is queued or
  in flight: settling a request forgets its fingerprint (and every fingerprint
  expires after ``DUPEFILTER_TTL_SECONDS``). scrapy-redis's keeps them forever,
  which would stop an article whose fetch failed, or whose worker died, from ever
  being fetched again.

``DomainSlotsMiddleware`` caps the requests in flight per host across all workers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import scrapy
from scrapy import signals
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.scheduler import Scheduler

from crawler.domain.items import ArticleItem, FetchState
from crawler.storage.cluster import TAKE_REQUEST, ClusterKeys, connect_redis, outcome_delta
from spiders.kinds import SPIDERS
from spiders.pipelines import ArticlePipeline

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    import redis
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response
    from twisted.python.failure import Failure

    from crawler.domain.config import SourceConfig
    from crawler.domain.items import PollOutcome
    from spiders.base import SourceSpider
    from spiders.services import CrawlServices

logger = logging.getLogger(__name__)

# Request meta: the poll a request belongs to, and the source spider's own callbacks.
POLL = "newswatch_poll"
SOURCE = "newswatch_source"
STATE = "newswatch_state"
CALLBACK = "newswatch_callback"
ERRBACK = "newswatch_errback"
INFLIGHT = "newswatch_inflight"  # the token of the worker's in-flight record
FINGERPRINT = "newswatch_fingerprint"  # noted by the dupefilter, forgotten when settled
SLOT = "newswatch_domain_slot"  # (key, token) of the per-host lease while downloading

# A fingerprint is forgotten when its request settles, and in any case this long
# after it was queued (the poll lease's time: a request lost that long is given up).
DUPEFILTER_TTL_SECONDS = 600
# How often an idle worker looks at the shared queue (Scrapy's own engine looks
# every 5 s; other workers fill the queue without telling this one).
QUEUE_CHECK_SECONDS = 0.5
# Polls are parsed by a spider per poll, kept for the poll's later responses.
MAX_POLL_SPIDERS = 2000
# Per-host leases: how often a waiting request tries again, and how long a lease
# lives without being refreshed (a dead worker's leases free themselves).
SLOT_WAIT_SECONDS = 0.1
SLOT_TTL_SECONDS = 10.0


@dataclass(frozen=True)
class OpenedPoll:
    """A poll job a worker took: its lease is held, its ledger open."""

    poll: str
    source: SourceConfig
    state: FetchState


class ClusterWorker(Protocol):
    """What the spider needs from the worker service (crawler/orchestration/roles.py)."""

    context: CrawlServices

    async def next_poll(self) -> OpenedPoll:
        """Wait for the next poll job this worker should start."""
        ...

    def source(self, name: str) -> SourceConfig | None:
        """The configured source called ``name``, if any."""
        ...

    def settle(
        self,
        poll: str,
        source: str,
        changes: Mapping[str, int],
        fields: Mapping[str, str],
        added: int,
        inflight: str | None,
        fingerprint: str | None,
    ) -> None:
        """Record one settled request of ``poll`` (and finish the poll if it was the
        last); it leaves the worker's in-flight record and the dupefilter."""
        ...


@dataclass
class _Poll:
    """A poll as this worker sees it: the source's spider, and what of its outcome
    was already written to the ledger."""

    id: str
    spider: SourceSpider
    flushed: PollOutcome


class _SpiderView:
    """Lets ``ArticlePipeline`` count into the poll's spider, as in the all-in-one mode."""

    def __init__(self, spider: SourceSpider) -> None:
        self.spider = spider


class ClusterSpider(scrapy.Spider):
    """Runs every poll a worker takes part in, for the life of the worker."""

    name = "cluster"

    def __init__(self, *, worker: ClusterWorker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.worker = worker
        self._polls: OrderedDict[str, _Poll] = OrderedDict()

    @property
    def context(self) -> CrawlServices:
        """The worker's crawl context (the robots.txt middleware reads it here)."""
        return self.worker.context

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ClusterSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._opened, signal=signals.spider_opened)
        crawler.signals.connect(spider._dropped, signal=signals.request_dropped)
        return spider

    def _opened(self) -> None:
        # Scrapy has no setting for it: look at the shared queue more often than
        # every 5 s when idle (set before the engine starts its heartbeat).
        self.crawler.engine._SLOT_HEARTBEAT_INTERVAL = QUEUE_CHECK_SECONDS

    async def start(self) -> AsyncIterator[Any]:
        """Poll jobs, for ever: the engine asks for the next one when it has room."""
        while True:
            opened = await self.worker.next_poll()
            poll = self._poll(opened.poll, opened.source, opened.state)
            try:
                request = self._wrap(poll.spider.first_request(), poll)
            except Exception as error:  # one source's bug must not end the worker's crawl
                logger.exception("source %s: poll could not start", opened.source.name)
                poll.spider.outcome.error = f"poll could not start: {error!r}"
                self._settle(poll, {POLL: poll.id, SOURCE: opened.source.name}, 0)
                continue
            yield request

    def source_of(self, request: Request) -> SourceConfig | None:
        """The source a queued request is for (spiders.access.SiteAccessMiddleware adds
        its headers, cookies, user agent and proxy as it leaves); None for the
        crawl's own requests (robots.txt)."""
        name = request.meta.get(SOURCE)
        return self.worker.source(name) if name else None

    # -- polls -----------------------------------------------------------------------

    def _poll(self, poll_id: str, source: SourceConfig, state: FetchState) -> _Poll:
        poll = self._polls.get(poll_id)
        if poll is None:
            spider = SPIDERS[source.kind](source=source, state=state, context=self.context)
            spider.crawler = self.crawler  # for its settings; it is not a crawl of its own
            spider.settings = self.settings
            poll = _Poll(poll_id, spider, replace(spider.outcome))
            self._polls[poll_id] = poll
            while len(self._polls) > MAX_POLL_SPIDERS:
                self._polls.popitem(last=False)
        self._polls.move_to_end(poll_id)
        return poll

    def _poll_of(self, meta: Mapping[str, Any]) -> _Poll | None:
        source = self.worker.source(meta[SOURCE])
        if source is None:
            logger.warning(
                "source %s is no longer configured; its queued request is dropped", meta[SOURCE]
            )
            return None
        return self._poll(meta[POLL], source, FetchState(*meta[STATE]))

    def _wrap(self, request: Request, poll: _Poll) -> Request:
        """The request as the shared queue holds it: routed back through this spider."""
        meta = {
            key: value for key, value in request.meta.items() if key not in (INFLIGHT, FINGERPRINT)
        }
        meta |= {
            POLL: poll.id,
            SOURCE: poll.spider.source.name,
            STATE: dataclasses.astuple(poll.spider.state),
            CALLBACK: request.callback.__name__ if request.callback else "parse",
            ERRBACK: request.errback.__name__ if request.errback else None,
        }
        return request.replace(callback=self.route, errback=self.route_failure, meta=meta)

    def _settle(self, poll: _Poll | None, meta: Mapping[str, Any], added: int) -> None:
        changes: dict[str, int] = {}
        fields: dict[str, str] = {}
        if poll is not None:
            changes, fields = outcome_delta(poll.spider.outcome, poll.flushed)
            poll.flushed = replace(poll.spider.outcome)
        self.worker.settle(
            meta[POLL],
            meta[SOURCE],
            changes,
            fields,
            added,
            meta.get(INFLIGHT),
            meta.get(FINGERPRINT),
        )

    # -- responses ---------------------------------------------------------------------

    async def route(self, response: Response, **kwargs: Any) -> AsyncIterator[Any]:
        """Parse with the poll's own spider; store its articles; queue its requests."""
        poll = self._poll_of(response.meta)
        added: list[Request] = []
        if poll is not None:
            callback = getattr(poll.spider, response.meta[CALLBACK])
            try:
                async for output in _outputs(callback(response, **kwargs)):
                    if isinstance(output, scrapy.Request):
                        added.append(self._wrap(output, poll))
                    elif isinstance(output, ArticleItem):
                        await ArticlePipeline(_SpiderView(poll.spider)).process_item(  # type: ignore[arg-type]
                            output
                        )
            except Exception:
                poll.spider.outcome.page_errors += 1
                logger.exception(
                    "source %s: parsing %s failed", poll.spider.source.name, response.url
                )
        self._settle(poll, response.meta, len(added))
        for request in added:
            yield request

    def route_failure(self, failure: Failure) -> list[Request]:
        """A failed request: the poll's spider's errback decides (and may retry)."""
        request: Request = failure.request  # type: ignore[attr-defined]
        if failure.check(WorkerStopping):
            return []  # still in flight: put back in the queue when the worker leaves
        poll = self._poll_of(request.meta)
        added: list[Request] = []
        if poll is not None:
            errback = request.meta.get(ERRBACK)
            if errback is None:
                poll.spider.outcome.page_errors += 1
            else:
                result = getattr(poll.spider, errback)(failure)
                added = [self._wrap(r, poll) for r in result or () if isinstance(r, scrapy.Request)]
        self._settle(poll, request.meta, len(added))
        return added

    def _dropped(self, request: Request, **_: Any) -> None:
        """Filtered as queued by another poll just now: settled here, and the poll
        does not remember its index as seen (the next poll reads it again)."""
        if POLL not in request.meta:
            return
        self.worker.settle(
            request.meta[POLL], request.meta[SOURCE], {"deferred": 1}, {}, 0, None, None
        )


async def _outputs(result: Any) -> AsyncIterator[Any]:
    """Iterate a callback's result, whatever kind of callback it was."""
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return
    if hasattr(result, "__aiter__"):
        async for output in result:
            yield output
        return
    for output in result if not isinstance(result, (scrapy.Request, ArticleItem)) else [result]:
        yield output


# -- scrapy-redis, with in-flight records and expiring fingerprints ----------------------


class WorkerStopping(IgnoreRequest):
    """A request not sent because the worker stops: it stays in the worker's
    in-flight record, which goes back in the queue when the worker leaves."""


class ClusterScheduler(Scheduler):
    """scrapy-redis's scheduler; a request taken from the queue is noted in this
    worker's in-flight hash in the same step, and leaves it when it is settled, put
    back in the queue (a retry, a redirect), or requeued after the worker died."""

    inflight_key: str
    _take: Any

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterScheduler:
        scheduler = super().from_crawler(crawler)
        keys = ClusterKeys(crawler.settings["NEWSWATCH_QUEUE_PREFIX"])
        scheduler.inflight_key = keys.inflight(crawler.settings["NEWSWATCH_WORKER_ID"])
        scheduler._take = scheduler.server.register_script(TAKE_REQUEST)
        return scheduler

    def enqueue_request(self, request: Request) -> bool:
        token = request.meta.pop(INFLIGHT, None)
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            if token is not None:
                self.server.hdel(self.inflight_key, token)
            return False
        with self.server.pipeline() as pipe:  # queued and no longer in flight, together
            pipe.zadd(self.queue.key, {self.queue._encode_request(request): -request.priority})
            if token is not None:
                pipe.hdel(self.inflight_key, token)
            pipe.execute()
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Request | None:
        token = uuid.uuid4().hex
        data = self._take(keys=[self.queue.key, self.inflight_key], args=[token])
        if data is None:
            return None
        request = self.queue._decode_request(data)
        request.meta[INFLIGHT] = token
        if self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request


_SEEN = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 0
"""


class ExpiringDupeFilter(RFPDupeFilter):
    """scrapy-redis's fingerprint filter, whose fingerprints expire: a request is
    filtered only while the same request was queued less than ``ttl`` seconds ago."""

    def __init__(
        self,
        server: redis.Redis,
        key: str,
        debug: bool = False,
        ttl: float = DUPEFILTER_TTL_SECONDS,
    ) -> None:
        super().__init__(server, key, debug)
        self.ttl_ms = int(ttl * 1000)
        self._seen = server.register_script(_SEEN)

    @classmethod
    def from_spider(cls, spider: scrapy.Spider) -> ExpiringDupeFilter:
        settings = spider.settings
        server = connect_redis(settings["REDIS_URL"], decode=False)
        return cls(
            server,
            settings["SCHEDULER_DUPEFILTER_KEY"],
            settings.getbool("DUPEFILTER_DEBUG"),
            settings.getfloat("NEWSWATCH_DUPEFILTER_TTL", DUPEFILTER_TTL_SECONDS),
        )

    def request_seen(self, request: Request) -> bool:
        fingerprint = self.request_fingerprint(request)
        if self._seen(keys=[self.key], args=[fingerprint, self.ttl_ms]):
            return True
        request.meta[FINGERPRINT] = fingerprint  # forgotten when the request settles
        return False


# -- politeness across workers -----------------------------------------------------------

_ACQUIRE_SLOT = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return 1
"""

_REFRESH_SLOTS = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]) * 2)
end
return #KEYS
"""


class DomainSlotsMiddleware:
    """No host gets more requests in flight than its cap, counted over every worker.

    A sorted set per host holds one lease per request being downloaded, taken just
    before the download (this middleware runs last) and given back when the
    response or the failure comes. Leases expire unless their worker refreshes
    them, so the slots of a worker that died free themselves within
    ``SLOT_TTL_SECONDS``. The cap is ``domains.<host>.concurrency`` or
    ``concurrent_requests_per_domain``, as for one process.
    """

    def __init__(
        self,
        crawler: Crawler,
        client: redis.Redis,
        keys: ClusterKeys,
        default_cap: int,
        caps: Mapping[str, int],
    ) -> None:
        self.crawler = crawler
        self.client = client
        self.keys = keys
        self.default_cap = default_cap
        self.caps = dict(caps)
        self.ttl_ms = int(SLOT_TTL_SECONDS * 1000)
        self._acquire = client.register_script(_ACQUIRE_SLOT)
        self._refresh = client.register_script(_REFRESH_SLOTS)
        self._held: dict[str, str] = {}  # token → key
        self._refresher: asyncio.Task[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DomainSlotsMiddleware:
        settings = crawler.settings
        caps = {
            host: int(slot["concurrency"])
            for host, slot in settings.getdict("DOWNLOAD_SLOTS").items()
            if slot.get("concurrency")
        }
        middleware = cls(
            crawler,
            connect_redis(settings["REDIS_URL"]),
            ClusterKeys(settings["NEWSWATCH_QUEUE_PREFIX"]),
            settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"),
            caps,
        )
        crawler.signals.connect(middleware._closed, signal=signals.spider_closed)
        return middleware

    async def process_request(self, request: Request) -> None:
        host = urlparse_cached(request).hostname or ""
        key = self.keys.slots(host)
        token = uuid.uuid4().hex
        cap = self.caps.get(host, self.default_cap)
        while not self._acquire(keys=[key], args=[token, cap, self.ttl_ms]):
            engine = self.crawler.engine
            if engine is None or not engine.running:
                raise WorkerStopping(f"{request.url}: the worker is stopping")
            await asyncio.sleep(SLOT_WAIT_SECONDS)
        self._held[token] = key
        request.meta[SLOT] = (key, token)
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    def process_response(self, request: Request, response: Response) -> Response:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: BaseException) -> None:
        self._release(request)

    def _release(self, request: Request) -> None:
        slot = request.meta.pop(SLOT, None)
        if slot is None:
            return
        key, token = slot
        self._held.pop(token, None)
        self.client.zrem(key, token)

    async def _refresh_forever(self) -> None:
        while self._held:
            await asyncio.sleep(SLOT_TTL_SECONDS / 4)
            held = list(self._held.items())
            if held:
                self._refresh(
                    keys=[key for _token, key in held],
                    args=[self.ttl_ms, *(token for token, _key in held)],
                )

    def _closed(self) -> None:
        for token, key in list(self._held.items()):
            self.client.zrem(key, token)
        self._held.clear()
        if self._refresher is not None:
            self._refresher.cancel()
