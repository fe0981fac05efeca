"""Running the service on the reactor: the one reactor is installed, runs for the life
of the process (``run_service``) or for one step of a one-shot command (``run_once``),
and stops cleanly."""

from __future__ import annotations

import gc
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.reactor import install_reactor

from crawler.orchestration.signals import hand_over_to_reactor, stop_requested
from spiders.settings import ASYNCIO_REACTOR

if TYPE_CHECKING:
    from crawler.orchestration.service import NewswatchService

T = TypeVar("T")


def install_asyncio_reactor() -> None:
    """Install Scrapy's asyncio reactor; must run before anything imports the reactor."""
    install_reactor(ASYNCIO_REACTOR)


def settle_start_up() -> None:
    """Put what start-up made (modules, the configuration, compiled rules: all kept
    for the life of the process) out of the collector's sight, and turn collection
    back on: crawler.faces.cli turns it off while a service starts."""
    gc.freeze()
    gc.enable()


def run_service(
    service_factory: Callable[[], NewswatchService],
    stop_after: float | None = None,
    *,
    start_web: Callable[[NewswatchService], object] | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or ``stop_after`` seconds); stop cleanly, return 0.

    ``start_web`` (crawler.faces.web.start_web) is called once the reactor runs; it is
    passed in by the CLI, which sits above both, so that the service does not
    import the web UI that reads it (no import cycle between the two).
    """
    from twisted.internet import reactor as installed_reactor

    reactor: Any = installed_reactor  # zope interfaces: no useful static type

    service = service_factory()
    if stop_after is not None:
        reactor.callLater(stop_after, reactor.stop)
    reactor.callWhenRunning(service.start_scheduler)
    if start_web is not None:
        reactor.callWhenRunning(start_web, service)
    # A stop asked for while starting (see crawler.orchestration.signals) is carried out now.
    reactor.callWhenRunning(lambda: reactor.stop() if stop_requested() else None)

    def reload_on_hangup(_signum: int, _frame: object) -> None:
        reactor.callFromThread(lambda: deferred_from_coro(service.reload()))

    signal.signal(signal.SIGHUP, reload_on_hangup)
    hand_over_to_reactor()
    # Twisted's own SIGINT/SIGTERM handlers stop the reactor; "before shutdown"
    # triggers run first and the reactor waits for the Deferred they return.
    reactor.addSystemEventTrigger("before", "shutdown", lambda: deferred_from_coro(service.stop()))
    settle_start_up()
    reactor.run()
    return 0


def run_once(
    service_factory: Callable[[], NewswatchService],
    step: Callable[[NewswatchService], Awaitable[T]],
) -> T:
    """Run one ``step`` on the reactor (for one-shot commands), stop cleanly, return its result."""
    from twisted.internet import reactor as installed_reactor

    reactor: Any = installed_reactor  # zope interfaces: no useful static type

    service = service_factory()
    result: dict[str, Any] = {}

    async def main() -> None:
        try:
            result["value"] = await step(service)
        except BaseException as error:
            result["error"] = error
        finally:
            await service.stop()
            reactor.stop()

    reactor.callWhenRunning(lambda: deferred_from_coro(main()))
    settle_start_up()
    reactor.run(installSignalHandlers=True)
    if "error" in result:
        raise result["error"]
    return result["value"]
