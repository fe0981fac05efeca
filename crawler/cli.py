"""The ``newswatch`` command: a thin layer that turns domain errors into clean exits."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler import __version__
from crawler.config import ConfigError, config_path, load_config

if TYPE_CHECKING:
    from collections.abc import Sequence

    from crawler.config import Config
    from crawler.store import Store
    from spiders.items import ExtractedArticle

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

logger = logging.getLogger("newswatch")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.log_level)
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(f"newswatch: configuration error\n{error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newswatch",
        description="Polls news sources, matches watch rules and emails digests.",
    )
    parser.add_argument("--version", action="version", version=f"newswatch {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", help="configuration file (default: $NEWSWATCH_CONFIG, "
        "else ./config.yaml)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the service: poll on schedule, send digests")
    run.set_defaults(handler=_run)

    crawl = commands.add_parser("crawl", help="poll sources now, store and match, then exit")
    crawl.add_argument("--source", action="append", metavar="NAME",
                       help="only this source (repeatable)")
    crawl.set_defaults(handler=_crawl)

    digest = commands.add_parser("digest", help="send pending digests now, then exit")
    digest.add_argument("--dry-run", action="store_true",
                        help="print what would be sent; send and record nothing")
    digest.add_argument("--preview", metavar="PATH",
                        help="write the next digest's HTML to PATH; send and record nothing")
    digest.add_argument("--recipient", metavar="EMAIL",
                        help="only this recipient (default: all)")
    digest.set_defaults(handler=_digest)

    extract = commands.add_parser("extract", help="print the extracted article of pages as JSON")
    extract.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    extract.set_defaults(handler=_extract)

    check = commands.add_parser("check-config", help="validate the configuration and exit")
    check.set_defaults(handler=_check_config)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply the schema migrations")
    upgrade.set_defaults(handler=_db_upgrade)
    purge = db_commands.add_parser("purge", help="apply the retention settings now")
    purge.set_defaults(handler=_db_purge)
    return parser


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Scrapy's own per-request chatter stays out unless asked for; newswatch logs
    # one line per failed feed or page itself, with the URL and the reason.
    scrapy_level = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("scrapy").setLevel(scrapy_level)
    logging.getLogger("scrapy.downloadermiddlewares.retry").setLevel(
        logging.DEBUG if level == "DEBUG" else logging.CRITICAL
    )
    logging.getLogger("scrapy.core.scraper").setLevel(scrapy_level)
    for noisy in ("alembic", "apscheduler.executors", "apscheduler.scheduler", "trafilatura",
                  "htmldate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(args: argparse.Namespace) -> Config:
    return load_config(config_path(args.config))


def _open_store(config: Config) -> Store:
    from crawler.store import Store

    store = Store.from_url(config.database)
    store.upgrade()
    store.sync_sources(config.sources)
    return store


def _run(args: argparse.Namespace) -> int:
    from crawler.service import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.service import NewswatchService, run_service

    config = _load(args)
    store = _open_store(config)
    return run_service(lambda: NewswatchService(config, store, cpu_workers=config.workers))


def _crawl(args: argparse.Namespace) -> int:
    from crawler.service import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.poll import describe
    from crawler.service import NewswatchService, run_once

    config = _load(args)
    for name in args.source or []:
        try:
            config.source(name)
        except KeyError:
            raise ConfigError(f"no source named {name!r} in the configuration") from None
    store = _open_store(config)
    outcomes = run_once(
        lambda: NewswatchService(config, store, cpu_workers=config.workers),
        lambda service: service.poll_all(args.source),
    )
    for outcome in outcomes:
        print(f"{outcome.source}: {describe(outcome)}")
    return EXIT_FAILED if any(o.error for o in outcomes) else EXIT_OK


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
                email: digest for email, digest in preview_digests(store, config).items()
                if email in {r.email for r in recipients}
            }
            if not previews:
                print("nothing pending")
            for recipient, digest in previews.items():
                if args.preview:
                    Path(args.preview).write_text(digest.html, encoding="utf-8")
                    print(f"{recipient}: preview of \"{digest.subject}\" written to {args.preview}")
                    break
                print(f"To: {recipient}\nSubject: {digest.subject}\n\n{digest.text}\n")
            return EXIT_OK
        report = send_pending_digests(
            store, config, make_delivery(config.delivery), recipients=recipients, force=True
        )
    finally:
        store.close()
    for recipient, count in report.sent.items():
        print(f"{recipient}: sent {count} articles")
    for recipient, error in report.failed.items():
        print(f"{recipient}: FAILED, will retry: {error}")
    if not report.sent and not report.failed:
        print("nothing pending")
    return EXIT_FAILED if report.failed else EXIT_OK


def _extract(args: argparse.Namespace) -> int:
    from spiders.extract import extract_article
    from spiders.settings import user_agent

    contact = "https://github.com/newswatch/newswatch"
    with contextlib.suppress(ConfigError):  # extraction needs no configuration
        contact = _load(args).user_agent_contact
    status = EXIT_OK
    for source in args.inputs:
        try:
            html, url = _read_page(source, user_agent(contact))
        except (OSError, ValueError) as error:
            print(f"newswatch: {source}: {error}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        print(json.dumps(_article_json(source, extract_article(html, url)), ensure_ascii=False))
    return status


def _read_page(source: str, agent: str) -> tuple[bytes, str]:
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"User-Agent": agent})  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.read(), response.geturl()
    path = Path(source)
    return path.read_bytes(), path.resolve().as_uri()


def _article_json(source: str, article: ExtractedArticle) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return moment.astimezone(UTC).isoformat() if moment else None

    return {
        "source": source,
        "url": article.url,
        "title": article.title,
        "published": iso(article.published),
        "updated": iso(article.updated),
        "authors": list(article.authors),
        "language": article.language,
        "image": article.image,
        "description": article.description,
        "section": article.section,
        "keywords": list(article.keywords),
        "text": article.text,
    }


def _check_config(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    config = load_config(path)
    delivery = (
        f"SMTP {config.delivery.smtp.host}:{config.delivery.smtp.port}"
        if config.delivery.smtp
        else f"outbox {config.delivery.outbox}"
    )
    print(
        f"{path}: OK — {len(config.sources)} sources, {len(config.rules)} rules, "
        f"{len(config.digest.recipients)} recipients, digest '{config.digest.schedule}' "
        f"({config.digest.timezone}), delivery: {delivery}"
    )
    return EXIT_OK


def _db_upgrade(args: argparse.Namespace) -> int:
    config = _load(args)
    store = _open_store(config)
    store.close()
    print("database is at the latest schema")
    return EXIT_OK


def _db_purge(args: argparse.Namespace) -> int:
    from crawler.service import purge_old_articles

    config = _load(args)
    store = _open_store(config)
    try:
        purged, deleted = purge_old_articles(store, config)
    finally:
        store.close()
    print(f"{purged} article bodies purged, {deleted} old articles deleted")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
