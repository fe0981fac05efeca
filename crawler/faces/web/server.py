"""Starting the web UI: its thread pool and its site on the service's reactor."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from twisted.internet.error import CannotListenError
from twisted.python.threadpool import ThreadPool
from twisted.web.server import Request, Site

from crawler.faces.web.actions import Actions
from crawler.faces.web.api import Api
from crawler.faces.web.common import MAX_BODY_BYTES, WEB_THREADS
from crawler.faces.web.feeds import Feeds
from crawler.faces.web.health import HealthChecks
from crawler.faces.web.pages import Pages
from crawler.faces.web.sent import SentMessages
from crawler.faces.web.site import WebUI
from crawler.faces.web.stories import StoryPages
from crawler.faces.web.websub import CALLBACK_PREFIX, WebSubCallbacks
from crawler.faces.web.workbench import QueryPages

if TYPE_CHECKING:
    from collections.abc import Callable

    from twisted.internet.interfaces import IListeningPort
    from twisted.web.http import Request as HttpRequest

    from crawler.orchestration.service import NewswatchService

logger = logging.getLogger(__name__)


class CappedRequest(Request):
    """A request whose body is kept up to its site's limit only (``MAX_BODY_BYTES``;
    a WebSub delivery, a whole feed, up to ``download_maxsize``): a longer one (by
    its Content-Length, or as it arrives when chunked) is read and dropped, and
    ``body_too_large`` makes the web UI answer 413."""

    body_too_large = False
    body_limit = MAX_BODY_BYTES

    def gotLength(self, length: int | None) -> None:
        # The path and the site are known to the channel only until the body is in.
        path = getattr(self.channel, "_path", b"") or b""
        site = getattr(self.channel, "site", None)
        if isinstance(site, _QuietSite):
            self.body_limit = site.body_limit(path)
        if length is not None and length > self.body_limit:
            self.body_too_large = True
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large or self.content is None:
            return
        if self.content.tell() + len(data) > self.body_limit:
            self.body_too_large = True
            self.content.seek(0)
            self.content.truncate()
            return
        super().handleContentChunk(data)


class _QuietSite(Site):
    """A Site that logs requests at debug level only (health checks and scrapes
    every few seconds would drown the service log), with bodies capped."""

    noisy = False
    requestFactory = CappedRequest

    def __init__(self, resource: Any, *, feed_limit: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self._feed_limit = feed_limit

    def body_limit(self, path: bytes) -> int:
        """The largest body kept for a request to ``path``."""
        return self._feed_limit() if path.startswith(CALLBACK_PREFIX) else MAX_BODY_BYTES

    def log(self, request: HttpRequest) -> None:
        logger.debug(
            "web: %s %s %d",
            request.method.decode(errors="replace"),
            request.uri.decode(errors="replace")[:200],
            request.code,
        )


def start_web(service: NewswatchService) -> IListeningPort | None:
    """Serve the web UI of ``service`` at ``web.host:web.port`` on the running
    reactor; return the listening port (its ``getHost().port`` is the real port
    when ``web.port`` is 0), or None when the web UI is disabled or cannot listen.

    The address is taken once, here: a reload that changes ``web.host`` or
    ``web.port`` needs a restart. Everything else follows the reloaded configuration.
    """
    from twisted.internet import reactor as installed_reactor

    reactor: Any = installed_reactor  # zope interfaces: no useful static type

    web = service.config.web
    if not web.enabled:
        return None
    threads = ThreadPool(minthreads=0, maxthreads=WEB_THREADS, name="newswatch-web")
    ui = WebUI(
        lambda: service.config,
        service.store,
        service.metrics,
        scheduler_running=lambda: service.scheduler is not None and service.scheduler.running,
        next_runs=lambda: _next_runs(service),
        threads=threads,
    )
    ui.add_routes(Pages(ui).routes())
    ui.add_routes(StoryPages(ui).routes())
    ui.add_routes(QueryPages(ui).routes())
    ui.add_routes(HealthChecks(ui).routes())
    ui.add_routes(Api(ui).routes())
    ui.add_routes(Feeds(ui).routes())
    ui.add_routes(Actions(ui).routes())
    ui.add_routes(SentMessages(ui).routes())
    ui.add_routes(WebSubCallbacks(ui, service.websub).routes())
    site = _QuietSite(ui, timeout=60, feed_limit=lambda: service.config.download_maxsize)
    try:
        port = reactor.listenTCP(web.port, site, interface=web.host)
    except CannotListenError as error:
        logger.error(
            "web UI: cannot listen on %s port %d: %s", web.host, web.port, error.socketError
        )
        return None
    threads.start()
    reactor.addSystemEventTrigger("during", "shutdown", threads.stop)
    host = f"[{web.host}]" if ":" in web.host else web.host
    logger.info("web UI at http://%s:%d/", host, port.getHost().port)
    return port


def _next_runs(service: NewswatchService) -> dict[str, datetime | None]:
    scheduler = service.scheduler
    if scheduler is None:
        return {}
    return {job.id: job.next_run_time for job in scheduler.get_jobs()}
