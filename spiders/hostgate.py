"""Per-host politeness across every poll of the process.

Each poll is its own Scrapy crawl, and Scrapy's download slots (a host's
concurrency, its delay, AutoThrottle) belong to one crawl: fifty sources on one
host polled at the same moment would each get the host's whole allowance. The
``HostGate`` is shared by all the crawls of a process (it lives in the crawl
context) and holds, per host, the requests being downloaded and the start of the
last one, so that across all polls a host gets at most its concurrency
(``domains.<host>.concurrency`` or ``concurrent_requests_per_domain``) in flight
and at least its delay (``domains.<host>.delay``, or robots.txt ``Crawl-delay``
when larger) between two requests' starts: the limits one crawl applies to
itself, so that one source alone is fetched as before.

``GatedDownloader`` (Scrapy's ``DOWNLOADER``) takes a request's turn at the gate
after the crawl's own slot let it go, just before the download handler, and gives
it back when the download ends; a request waiting there counts as in transfer for
its crawl, so a crawl queues no more at a busy host than it would send. A crawl
being stopped (the service stopping, ``poll_timeout``) stops waiting: the request
fails with ``HostGateStopped``. Hosts with nothing in flight or waiting are
forgotten once their delay has passed, so ten thousand hosts cost nothing idle.

``HostGate.poll_turn`` does the same for whole polls, before they take one of the
service's poll slots: no more polls of one host crawl at once than the host takes
requests at once, so a crowd of sources on one host waits for the host, not for a
slot that other hosts' polls could use.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy.core.downloader import Downloader
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from scrapy.core.downloader.handlers import DownloadHandlers
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response

# Request meta: the least gap before this request's start, as the crawl's robots.txt
# middleware worked it out (the host's configured delay or its Crawl-delay).
DELAY_FLOOR = "newswatch_delay_floor"
# How often a request waiting at the gate looks whether its crawl is being stopped
# (Scrapy says so by no signal until every request of the crawl has ended).
STOP_CHECK_SECONDS = 0.25


class HostGateStopped(IgnoreRequest):
    """The crawl was stopped while this request waited for its host: never sent."""


@dataclass
class _Waiter:
    concurrency: int
    delay: float
    turn: asyncio.Future[None]


@dataclass
class _Host:
    """One host's requests in flight, the start of the last and those waiting."""

    in_flight: int = 0
    last_start: float = -math.inf
    # The longest delay asked for lately: the host is remembered at least that long.
    delay: float = 0.0
    waiting: deque[_Waiter] = field(default_factory=deque)
    timer: asyncio.TimerHandle | None = None


@dataclass
class _Polls:
    running: int = 0
    waiting: deque[tuple[int, asyncio.Future[None]]] = field(default_factory=deque)


class HostGate:
    """Per-host concurrency and delay shared by every crawl of the event loop's
    process. Turns are given first come, first served."""

    def __init__(self) -> None:
        self._hosts: dict[str, _Host] = {}
        self._polls: dict[str, _Polls] = {}

    def __len__(self) -> int:
        """Hosts remembered now (busy, waited for, or within their delay)."""
        return len(self._hosts) + len(self._polls)

    async def acquire(
        self,
        host: str,
        concurrency: int,
        delay: float,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        """Wait until ``host`` has fewer than ``concurrency`` requests in flight and
        its last one started at least ``delay`` seconds ago (and every request that
        came earlier had its turn), then count this one in. ``stopping`` is asked now
        and then: when it says yes, the wait ends with ``HostGateStopped``. Each
        acquire that returns must be followed by one ``release``."""
        loop = asyncio.get_running_loop()
        entry = self._hosts.get(host)
        if entry is None:
            entry = self._hosts[host] = _Host()
        delay = delay if math.isfinite(delay) and delay > 0 else 0.0
        concurrency = max(1, concurrency)
        waiter = _Waiter(concurrency, delay, loop.create_future())
        entry.waiting.append(waiter)
        self._give_turns(host)
        try:
            while not waiter.turn.done():
                await asyncio.wait([waiter.turn], timeout=STOP_CHECK_SECONDS)
                if not waiter.turn.done() and stopping():
                    raise HostGateStopped(f"the crawl stopped while waiting for {host}")
        except BaseException:
            if waiter.turn.done() and not waiter.turn.cancelled():
                self.release(host)  # given its turn as it was being stopped
            else:
                waiter.turn.cancel()
                self._give_turns(host)  # the ones behind it may go, or the host be dropped
            raise

    def release(self, host: str) -> None:
        """A request of ``host`` has ended: the next one waiting may go."""
        entry = self._hosts.get(host)
        if entry is None or entry.in_flight <= 0:
            return
        entry.in_flight -= 1
        self._give_turns(host)

    def _give_turns(self, host: str) -> None:
        entry = self._hosts.get(host)
        if entry is None:
            return
        loop = asyncio.get_running_loop()
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        while entry.waiting:
            head = entry.waiting[0]
            if head.turn.done():  # given up while waiting
                entry.waiting.popleft()
                continue
            if entry.in_flight >= head.concurrency:
                return  # a release comes
            ready = entry.last_start + head.delay - loop.time()
            if ready > 0:
                entry.timer = loop.call_later(ready, self._give_turns, host)
                return
            entry.waiting.popleft()
            entry.in_flight += 1
            entry.last_start = loop.time()
            entry.delay = head.delay
            head.turn.set_result(None)
        if entry.in_flight == 0:
            left = entry.last_start + entry.delay - loop.time()
            if left <= 0:
                del self._hosts[host]
            else:  # the next request must still keep its distance: forget it after
                entry.timer = loop.call_later(left, self._give_turns, host)

    @contextlib.asynccontextmanager
    async def poll_turn(self, host: str, concurrency: int) -> AsyncIterator[None]:
        """Hold one of ``host``'s ``concurrency`` poll turns for the block: polls of
        one host beyond that wait here, first come, first served."""
        entry = self._polls.get(host)
        if entry is None:
            entry = self._polls[host] = _Polls()
        if entry.running < max(1, concurrency) and not entry.waiting:
            entry.running += 1
        else:
            turn = asyncio.get_running_loop().create_future()
            entry.waiting.append((concurrency, turn))
            try:
                await turn
            except BaseException:
                if turn.done() and not turn.cancelled():
                    self._end_poll(host)
                else:
                    turn.cancel()
                    self._next_poll(host)
                raise
        try:
            yield
        finally:
            self._end_poll(host)

    def _end_poll(self, host: str) -> None:
        entry = self._polls.get(host)
        if entry is not None:
            entry.running -= 1
            self._next_poll(host)

    def _next_poll(self, host: str) -> None:
        entry = self._polls.get(host)
        if entry is None:
            return
        while entry.waiting:
            concurrency, turn = entry.waiting[0]
            if turn.done():
                entry.waiting.popleft()
                continue
            if entry.running >= max(1, concurrency):
                break
            entry.waiting.popleft()
            entry.running += 1
            turn.set_result(None)
        if entry.running <= 0 and not entry.waiting:
            del self._polls[host]


class GatedDownloader(Downloader):
    """Scrapy's downloader, each download taking its turn at the process's
    ``HostGate`` (the spider's ``context.hosts``; without one, as Scrapy's own)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.handlers = _GatedHandlers(self.handlers, self)  # type: ignore[assignment]

    def gate(self) -> HostGate | None:
        context = getattr(self.crawler.spider, "context", None)
        gate = getattr(context, "hosts", None)
        return gate if isinstance(gate, HostGate) else None

    def host_limits(self, request: Request) -> tuple[str, int, float]:
        """The request's host, its concurrency and the least gap before it starts,
        as this crawl's download slot applies them."""
        host = urlparse_cached(request).hostname or ""
        configured = self.per_slot_settings.get(host, {})
        concurrency = int(configured.get("concurrency", self.domain_concurrency))
        delay = request.meta.get(DELAY_FLOOR)
        if delay is None:  # robots.txt not obeyed: the configured delay alone
            delay = configured.get("delay", 0.0)
        return host, concurrency, float(delay)

    def stopping(self) -> bool:
        """The crawl is being stopped or closed: nothing more should be sent."""
        engine = self.crawler.engine
        if engine is None or not engine.running:
            return True
        # Scrapy has no public flag for a spider being closed (poll_timeout's way).
        slot = getattr(engine, "_slot", None)
        return slot is None or getattr(slot, "closing", None) is not None


class _GatedHandlers:
    """The crawl's download handlers, entered through the host gate. Everything
    else is the handlers' own (scrapy-playwright reads ``_handlers``)."""

    def __init__(self, handlers: DownloadHandlers, downloader: GatedDownloader) -> None:
        self._gated = handlers
        self._downloader = downloader

    async def download_request_async(self, request: Request) -> Response:
        gate = self._downloader.gate()
        if gate is None:
            return await self._gated.download_request_async(request)
        host, concurrency, delay = self._downloader.host_limits(request)
        await gate.acquire(host, concurrency, delay, self._downloader.stopping)
        try:
            return await self._gated.download_request_async(request)
        finally:
            gate.release(host)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gated, name)
