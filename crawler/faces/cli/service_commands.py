"""The service commands: run, worker, demo, crawl and digest."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.domain.config import ConfigError, config_path, config_warnings, load_config
from crawler.domain.wording import counted
from crawler.faces.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    _connect,
    _load,
    _open_store,
    _wait_for_store,
    logger,
)
from crawler.orchestration.signals import catch_early_stop_signals

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from crawler.domain.config import Config
    from crawler.storage.store import Store


def _run(args: argparse.Namespace) -> int:
    catch_early_stop_signals()
    path = config_path(args.config)
    config = load_config(path)
    for warning in config_warnings(config, path):
        logger.warning("%s", warning)
    if args.role == "scheduler":
        return _run_role(path, config, "scheduler")
    _start_cpu_pool_early(config)
    from crawler.orchestration.runtime import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.faces.web import start_web
    from crawler.orchestration.runtime import run_service
    from crawler.orchestration.service import NewswatchService

    store = _wait_for_store(config)
    if store is None:
        return EXIT_OK
    return run_service(
        lambda: NewswatchService(config, store, cpu_workers=config.workers, config_path=path),
        start_web=start_web,
    )


def _start_cpu_pool_early(config: Config) -> None:
    """Let the CPU pool's forkserver load the extraction stack on another core while
    this process imports and sets up the service (crawler.orchestration.workers.start_forkserver).

    Only for the long-lived commands, which will read pages soon: a ``crawl`` of
    sources that have not changed reads none, and would load it for nothing.
    """
    if config.workers != 0:
        from crawler.orchestration.workers import start_forkserver

        start_forkserver()


def _worker(args: argparse.Namespace) -> int:
    catch_early_stop_signals()
    path = config_path(args.config)
    return _run_role(path, load_config(path), "worker")


def _run_role(path: Path, config: Config, role: str) -> int:
    """Run a scale-out role: ``scheduler`` or ``worker``."""
    from crawler.domain.config import check_scale_out

    check_scale_out(config, path, role)
    if role == "worker":
        _start_cpu_pool_early(config)
    from crawler.orchestration.runtime import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.faces.web import start_web
    from crawler.orchestration.roles import SchedulerService, WorkerService
    from crawler.orchestration.runtime import run_service
    from crawler.storage.cluster import startup_lock

    service = SchedulerService if role == "scheduler" else WorkerService

    def open_locked() -> Store:
        with startup_lock(config.database):
            return _connect(config)

    store = _wait_for_store(config, open_locked)
    if store is None:
        return EXIT_OK
    return run_service(
        lambda: service(config, store, cpu_workers=config.workers, config_path=path),
        start_web=start_web,
    )


def _demo(args: argparse.Namespace) -> int:
    catch_early_stop_signals()
    from crawler.orchestration.runtime import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.faces.demo import (
        DemoFolderError,
        DemoSite,
        claim_demo_folder,
        demo_banner,
        web_port_for_demo,
        write_demo_config,
    )
    from crawler.faces.web import start_web
    from crawler.orchestration.runtime import run_service
    from crawler.orchestration.service import NewswatchService

    try:
        folder = claim_demo_folder(args.folder)
    except DemoFolderError as error:
        print(f"newswatch demo: {error}", file=sys.stderr)
        return EXIT_FAILED
    site = DemoSite(args.site_port)
    web_port = web_port_for_demo("127.0.0.1", args.web_port)
    path = write_demo_config(folder.path, site, web_port)
    config = load_config(path)
    _start_cpu_pool_early(config)
    store = _wait_for_store(config)
    if store is None:
        site.stop()
        return EXIT_OK

    def start_web_then_show_banner(service: NewswatchService) -> None:
        # Printed only now, so that the status page it names is the port this run got.
        listening: Any = start_web(service)
        web_url = None
        if listening:
            got = listening.getHost().port
            web_url = f"http://127.0.0.1:{got}/"
            if args.web_port not in (0, got):
                web_url += f"  (port {args.web_port} is taken)"
        banner = demo_banner(site, path, config.delivery.outbox, web_url, cleared=folder.cleared)
        print(banner, flush=True)

    try:
        return run_service(
            lambda: NewswatchService(config, store, cpu_workers=config.workers, config_path=path),
            stop_after=args.duration,
            start_web=start_web_then_show_banner,
        )
    finally:
        site.stop()


def _crawl(args: argparse.Namespace) -> int:
    from crawler.orchestration.runtime import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.orchestration.poll import describe
    from crawler.orchestration.runtime import run_once
    from crawler.orchestration.service import NewswatchService

    config = _load(args)
    for name in args.source or []:
        try:
            config.source(name)
        except KeyError:
            raise ConfigError(f"no source named {name!r} in the configuration") from None
    store = _open_store(config)
    names = args.source or [s.name for s in config.sources if s.enabled]
    with _progress(len(names), args.log_format) as advance:
        outcomes = run_once(
            lambda: NewswatchService(config, store, cpu_workers=config.workers),
            lambda service: service.poll_all(names, on_done=advance),
        )
    for outcome in outcomes:
        print(f"{outcome.source}: {describe(outcome)}")
    return EXIT_FAILED if any(o.error for o in outcomes) else EXIT_OK


@contextlib.contextmanager
def _progress(total: int, log_format: str) -> Iterator[Callable[[Any], None]]:
    """A progress bar on a terminal (log lines print above it); nothing otherwise."""
    if not sys.stderr.isatty() or log_format == "json":
        yield lambda _outcome: None
        return
    from rich.console import Console
    from rich.logging import RichHandler
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    root = logging.getLogger()
    previous = root.handlers[:]
    root.handlers = [RichHandler(console=console, show_path=False)]
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("polling sources", total=total)
            yield lambda outcome: progress.update(
                task, advance=1, description=f"polled {outcome.source}"
            )
    finally:
        root.handlers = previous


def _digest(args: argparse.Namespace) -> int:
    from alerts.digest import make_delivery, preview_digests, send_pending_digests

    config = _load(args)
    recipients = config.all_recipients()
    if args.recipient:
        try:
            recipients = [config.recipient(args.recipient)]
        except KeyError:
            raise ConfigError(f"no recipient {args.recipient!r} in the configuration") from None
    store = _open_store(config)
    try:
        if args.dry_run or args.preview:
            previews = {
                email: digest
                for email, digest in preview_digests(store, config).items()
                if email in {r.email for r in recipients}
            }
            if not previews:
                print("nothing pending")
            for recipient, digest in previews.items():
                if args.preview:
                    Path(args.preview).write_text(digest.html, encoding="utf-8")
                    print(f'{recipient}: preview of "{digest.subject}" written to {args.preview}')
                    break
                print(f"To: {recipient}\nSubject: {digest.subject}\n\n{digest.text}\n")
            return EXIT_OK
        report = send_pending_digests(
            store, config, make_delivery(config.delivery), recipients=recipients, force=True
        )
    finally:
        store.close()
    for recipient, count in report.sent.items():
        print(f"{recipient}: sent {counted(count, 'article')}")
    for recipient, error in report.failed.items():
        print(f"{recipient}: FAILED, will retry: {error}")
    for recipient, until in report.retry_at.items():
        print(
            f"{recipient}: held back by a channel's throttle until {until:%Y-%m-%d %H:%M:%S} "
            "UTC; it stays pending for the next digest"
        )
    if not report.sent and not report.failed and not report.retry_at:
        print("nothing pending")
    return EXIT_FAILED if report.failed else EXIT_OK
