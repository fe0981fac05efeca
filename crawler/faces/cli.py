"""The ``newswatch`` command: a thin layer that turns domain errors into clean exits."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler import __version__
from crawler.domain.config import ConfigError, config_path, load_config
from crawler.orchestration.signals import catch_early_stop_signals, stop_requested
from crawler.orchestration.startup import (
    DatabaseUnavailable,
    is_database_unreachable,
    open_store_or_fail,
    wait_for_store,
)
from crawler.orchestration.workers import return_large_blocks_promptly

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from crawler.domain.config import Config
    from crawler.domain.items import ExtractedArticle
    from crawler.storage.store import Store

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

logger = logging.getLogger("newswatch")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.log_level, args.log_format)
    return_large_blocks_promptly()
    if args.handler in (_run, _worker, _demo, _crawl):
        # Start-up makes a great many objects that live as long as the process
        # (modules, the configuration, compiled rules), and the collector would walk
        # them over and over for nothing (~0.15 s). It is turned back on, with those
        # objects frozen out of its sight, once the service is set up
        # (crawler.orchestration.service.settle_start_up).
        gc.disable()
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(f"newswatch: configuration error\n{error}", file=sys.stderr)
        return EXIT_CONFIG
    except DatabaseUnavailable as error:
        print(f"newswatch: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader of our output went away (`newswatch stories --json | head`):
        # nothing more to say, and nobody to say it to. Python's own advice: point
        # stdout at /dev/null so the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as error:
        if not is_database_unreachable(error):
            raise
        # The database went away in the middle of a command.
        print(f"newswatch: the database does not answer: {_first_line(error)}",
              file=sys.stderr)
        return EXIT_FAILED
    finally:
        # Python's last collection at exit walks every object (~0.25 s after a
        # crawl); they all go with the process anyway (files and the database are
        # closed by then, log handlers are flushed at exit).
        gc.freeze()


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
    parser.add_argument(
        "--log-format", default="text", choices=["text", "json"],
        help="json: one JSON object per log line, for log collectors",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the service: poll on schedule, send digests")
    run.add_argument(
        "--role", choices=["all", "scheduler"], default="all",
        help="all: the whole service in this process (default); scheduler: schedule polls "
        "for `newswatch worker` processes through Redis and send digests, active while it "
        "holds the scheduler lock (scale-out, see docs/scaling.md)",
    )
    run.set_defaults(handler=_run)

    worker = commands.add_parser(
        "worker", help="crawl the polls the active scheduler queues in Redis (scale-out)")
    worker.set_defaults(handler=_worker)

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

    demo = commands.add_parser(
        "demo", help="run the service against a bundled demo news site (no internet needed)")
    demo.add_argument("--folder", default="newswatch-demo", type=Path,
                      help="where the demo's config, database and outbox go")
    demo.add_argument("--web-port", type=int, default=8787, help="status page port (0: any)")
    demo.add_argument("--duration", type=float, metavar="SECONDS",
                      help="stop by itself after this long (default: run until Ctrl-C)")
    demo.set_defaults(handler=_demo)

    rules = commands.add_parser("rules", help="try watch rules")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rules_test = rules_commands.add_parser(
        "test", help="run a rule on stored articles (or pages) and show each hit")
    rules_test.add_argument("name", nargs="?",
                            help="a rule from the configuration (leave out with --query)")
    rules_test.add_argument("--query", help="try this query instead of a configured rule")
    rules_test.add_argument("--since", default="7d",
                            help="stored articles fetched this recently (default 7d)")
    rules_test.add_argument("pages", nargs="*", default=[], metavar="URL_OR_FILE",
                            help="test on these pages instead of stored articles")
    rules_test.add_argument("--json", action="store_true", help="one JSON object per hit")
    rules_test.set_defaults(handler=_rules_test)

    status = commands.add_parser(
        "status", help="sources, rules and digests at a glance (from the database)")
    status.add_argument("--json", action="store_true", help="one JSON document")
    status.set_defaults(handler=_status)

    stories = commands.add_parser("stories", help="list stories: copies of one story grouped")
    stories.add_argument("--since", default="2d", help="stories with articles fetched this "
                         "recently (default 2d)")
    stories.add_argument("--json", action="store_true",
                         help="one JSON object per story, with its members")
    stories.set_defaults(handler=_stories)

    check = commands.add_parser("check-config", help="validate the configuration and exit")
    check.set_defaults(handler=_check_config)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply the schema migrations")
    upgrade.set_defaults(handler=_db_upgrade)
    purge = db_commands.add_parser("purge", help="apply the retention settings now")
    purge.set_defaults(handler=_db_purge)
    return parser


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLogFormatter() if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Scrapy's own per-request chatter stays out unless asked for; newswatch logs
    # one line per failed feed or page itself, with the URL and the reason.
    scrapy_level = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("scrapy").setLevel(scrapy_level)
    logging.getLogger("scrapy.downloadermiddlewares.retry").setLevel(
        logging.DEBUG if level == "DEBUG" else logging.CRITICAL
    )
    logging.getLogger("scrapy.core.scraper").setLevel(scrapy_level)
    for noisy in ("alembic", "apscheduler.executors", "apscheduler.scheduler", "htmldate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # These report a page or robots.txt they could not read, with a traceback; newswatch
    # reports the same failure itself, once, with the source, the URL and the reason.
    for duplicate in ("trafilatura", "scrapy.downloadermiddlewares.robotstxt"):
        logging.getLogger(duplicate).setLevel(
            logging.DEBUG if level == "DEBUG" else logging.CRITICAL)


def _load(args: argparse.Namespace) -> Config:
    return load_config(config_path(args.config))


def _connect(config: Config) -> Store:
    """The store, migrated, with the configured sources; raises when the database
    does not answer."""
    from crawler.storage.store import Store

    store = Store.from_url(config.database)
    try:
        store.upgrade()
        store.sync_sources(config.sources)
    except BaseException:
        store.close()
        raise
    return store


def _open_store(config: Config) -> Store:
    """The store for a one-shot command; a database that does not answer is one line."""
    return open_store_or_fail(config.database, lambda: _connect(config))


def _wait_for_store(config: Config, opener: Callable[[], Store] | None = None) -> Store | None:
    """The store for a long-lived command: waits for a database that does not answer
    yet (crawler.orchestration.startup); None when stopped while waiting."""
    return wait_for_store(config.database, opener or (lambda: _connect(config)),
                          web=config.web, stop_requested=stop_requested)


def _first_line(error: BaseException) -> str:
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0][:500] if lines else type(error).__name__


def _run(args: argparse.Namespace) -> int:
    catch_early_stop_signals()
    path = config_path(args.config)
    config = load_config(path)
    if args.role == "scheduler":
        return _run_role(path, config, "scheduler")
    _start_cpu_pool_early(config)
    from crawler.orchestration.service import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.faces.web import start_web
    from crawler.orchestration.service import NewswatchService, run_service

    store = _wait_for_store(config)
    if store is None:
        return EXIT_OK
    return run_service(lambda: NewswatchService(
        config, store, cpu_workers=config.workers, config_path=path
    ), start_web=start_web)


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
    from crawler.orchestration.service import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.faces.web import start_web
    from crawler.orchestration.roles import SchedulerService, WorkerService
    from crawler.orchestration.service import run_service
    from crawler.storage.cluster import startup_lock

    service = SchedulerService if role == "scheduler" else WorkerService

    def open_locked() -> Store:
        with startup_lock(config.database):
            return _connect(config)

    store = _wait_for_store(config, open_locked)
    if store is None:
        return EXIT_OK
    return run_service(lambda: service(
        config, store, cpu_workers=config.workers, config_path=path
    ), start_web=start_web)


def _demo(args: argparse.Namespace) -> int:
    catch_early_stop_signals()
    from crawler.orchestration.service import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.faces.demo import DemoSite, write_demo_config
    from crawler.faces.web import start_web
    from crawler.orchestration.service import NewswatchService, run_service

    site = DemoSite()
    path = write_demo_config(args.folder, site, args.web_port)
    config = load_config(path)
    _start_cpu_pool_early(config)
    store = _wait_for_store(config)
    if store is None:
        site.stop()
        return EXIT_OK
    web = f"http://127.0.0.1:{args.web_port}/" if args.web_port else "(see the log for its port)"
    print(
        f"newswatch demo\n"
        f"  demo news site:   {site.base}/\n"
        f"  configuration:    {path.resolve()}  (edit it: the service reloads it)\n"
        f"  digests (.eml):   {config.delivery.outbox}  (the first within a minute)\n"
        f"  status page:      {web}\n"
        f"Stop with Ctrl-C.",
        flush=True,
    )
    try:
        return run_service(
            lambda: NewswatchService(config, store, cpu_workers=config.workers, config_path=path),
            stop_after=args.duration, start_web=start_web,
        )
    finally:
        site.stop()


def _crawl(args: argparse.Namespace) -> int:
    from crawler.orchestration.service import install_asyncio_reactor

    install_asyncio_reactor()
    from crawler.orchestration.poll import describe
    from crawler.orchestration.service import NewswatchService, run_once

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
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("polling sources", total=total)
            yield lambda outcome: progress.update(
                task, advance=1, description=f"polled {outcome.source}")
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


def _rules_test(args: argparse.Namespace) -> int:
    from alerts.render import make_snippet
    from alerts.rules import MatchDocument, QueryRule, RuleMatcher, rule_from_config
    from crawler.domain.config import parse_duration
    from crawler.storage.store import StoredArticle

    config = _load(args)
    if args.query and args.name:
        # With --query every positional argument is a page to test on.
        args.pages, args.name = [args.name, *args.pages], None
    if args.query:
        try:
            rule: Any = QueryRule("inline", args.query)
            matcher = RuleMatcher([rule])
        except ValueError as error:
            raise ConfigError(f"--query: {error}") from None
    elif args.name:
        configured = [r for r in config.rules if r.name == args.name]
        if not configured:
            raise ConfigError(f"no rule named {args.name!r} in the configuration")
        matcher = RuleMatcher([rule_from_config(configured[0])])
    else:
        raise ConfigError("name a rule from the configuration, or give --query")

    articles: list[StoredArticle] = []
    if args.pages:
        from spiders.extract import extract_article

        for number, page in enumerate(args.pages):
            html, url = _read_page(page, "newswatch rules test")
            extracted = extract_article(html, url)
            articles.append(StoredArticle(
                id=-number, url=extracted.url, source=page, title=extracted.title,
                body=extracted.text, published=extracted.published,
                authors=extracted.authors, language=extracted.language))
    else:
        try:
            since = datetime.now(UTC) - parse_duration(args.since)
        except ValueError as error:
            raise ConfigError(f"--since: {error}") from None
        store = _open_store(config)
        try:
            articles = store.articles(since=since)
        finally:
            store.close()

    hits = 0
    for article in articles:
        document = MatchDocument(title=article.title, body=article.body,
                                 author=", ".join(article.authors), source=article.source,
                                 url=article.url, language=article.language)
        for match in matcher.match(document):
            hits += 1
            snippet = make_snippet(article.body, match.terms)
            if args.json:
                print(json.dumps({"url": article.url, "title": article.title,
                                  "source": article.source, "terms": list(match.terms),
                                  "snippet": snippet}, ensure_ascii=False))
                continue
            print(f"{_highlight(article.title, match.terms)}\n  {article.source} · {article.url}"
                  f"\n  terms: {', '.join(match.terms)}"
                  f"\n  {_highlight(snippet, match.terms)}\n")
    if not args.json:
        print(f"{hits} hit{'s' if hits != 1 else ''} in {len(articles)} articles")
    return EXIT_OK


def _highlight(text: str, terms: Sequence[str]) -> str:
    """The text with each hit of ``terms`` in [[double brackets]] (bold on a terminal)."""
    from alerts.rules import find_terms

    start_mark, end_mark = ("\033[1;33m", "\033[0m") if sys.stdout.isatty() else ("[[", "]]")
    out, last = [], 0
    for start, end in find_terms(text, terms):
        out += [text[last:start], start_mark, text[start:end], end_mark]
        last = end
    return "".join([*out, text[last:]])


def _status(args: argparse.Namespace) -> int:
    from crawler.domain.config import cron_trigger
    from crawler.domain.urls import redact_text

    config = _load(args)
    store = _open_store(config)
    try:
        sources = store.source_statuses()
        matches = store.rule_match_counts()
        unsent = store.unsent_delivery_counts()
        last_runs = {r.email: store.last_run(f"digest:{r.email}")
                     for r in config.all_recipients()}
    finally:
        store.close()
    configured = {s.name for s in config.sources}
    now = datetime.now(UTC)
    digests = []
    for recipient in config.all_recipients():
        trigger = cron_trigger(recipient.schedule, recipient.timezone)
        digests.append({
            "recipient": recipient.email,
            "schedule": f"{recipient.schedule} ({recipient.timezone})",
            "last": last_runs[recipient.email],
            "next": trigger.get_next_fire_time(None, now),
        })
    report = {
        "sources": [
            {**row, "configured": row["name"] in configured,
             # Rows written before userinfo was split off source URLs may hold it.
             "url": redact_text(row["url"] or ""), "last_error": row["last_error"]
             and redact_text(row["last_error"]),
             "status": "failing" if row["consecutive_failures"] else (
                 "ok" if row["last_success_at"] else "not polled yet")}
            for row in sources
        ],
        "rules": [{"name": rule.name, "matches": matches.get(rule.name, 0),
                   "alert": rule.alert} for rule in config.rules],
        "digests": digests,
        "unsent": unsent,
    }
    if config.redis is not None:
        from crawler.storage.cluster import cluster_status

        try:
            report["cluster"] = cluster_status(config.redis, config.cluster.queue_prefix)
        except Exception as error:
            report["cluster"] = {"error": str(error)}
    if args.json:
        print(json.dumps(report, default=lambda value: value.isoformat(), ensure_ascii=False))
        return EXIT_OK
    _print_status(report)
    return EXIT_OK


def _print_status(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def when(moment: datetime | None) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"

    console = Console()
    sources = Table(title="Sources")
    for column in ("source", "kind", "status", "last poll", "last success", "articles",
                   "failures", "last error"):
        sources.add_column(column)
    for row in report["sources"]:
        status = row["status"] + ("" if row["configured"] else " (not configured)")
        sources.add_row(
            row["name"], row["kind"], status, when(row["last_polled_at"]),
            when(row["last_success_at"]), str(row["articles"]),
            str(row["consecutive_failures"]), (row["last_error"] or "")[:60],
        )
    rules = Table(title="Rules")
    for column in ("rule", "matches", "delivery"):
        rules.add_column(column)
    for rule in report["rules"]:
        rules.add_row(rule["name"], str(rule["matches"]), rule["alert"])
    digests = Table(title="Digests")
    for column in ("recipient", "schedule", "last", "next"):
        digests.add_column(column)
    for digest in report["digests"]:
        digests.add_row(digest["recipient"], digest["schedule"], when(digest["last"]),
                        when(digest["next"]))
    console.print(sources, rules, digests)
    if report["unsent"]:
        console.print(f"Unsent, waiting for a retry: {report['unsent']}")
    if "cluster" in report:
        cluster = report["cluster"]
        if "error" in cluster:
            console.print(f"Scale-out: Redis did not answer: {cluster['error']}")
        else:
            console.print(
                f"Scale-out: active scheduler {cluster['leader'] or '— (none)'}; "
                f"{len(cluster['workers'])} workers; {cluster['poll_jobs_waiting']} poll jobs "
                f"and {cluster['requests_queued']} requests queued")


def _stories(args: argparse.Namespace) -> int:
    from crawler.domain.config import parse_duration

    try:
        since = datetime.now(UTC) - parse_duration(args.since)
    except ValueError as error:
        print(f"newswatch: --since: {error}", file=sys.stderr)
        return EXIT_CONFIG
    config = _load(args)
    store = _open_store(config)
    try:
        stories = store.stories(since)
    finally:
        store.close()
    for members in stories:
        first = members[0]
        if args.json:
            print(json.dumps({
                "story": first.story_id or first.id,
                "title": first.title,
                "members": [
                    {"url": a.url, "source": a.source, "title": a.title,
                     "published": a.published.isoformat() if a.published else None}
                    for a in members
                ],
            }, ensure_ascii=False))
            continue
        print(f"{first.title}  [{len(members)} article{'s' if len(members) != 1 else ''}]")
        for article in members:
            when = article.published.isoformat() if article.published else "time unknown"
            print(f"  {when}  {article.source}: {article.title}\n    {article.url}")
    return EXIT_OK


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
    from crawler.orchestration.service import purge_old_articles

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
