"""The ``newswatch`` command line: the parser, logging set-up and ``main``, which
turns domain errors into clean exits."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from crawler import __version__
from crawler.domain.config import ConfigError
from crawler.faces.cli.admin_commands import _check_config, _db_purge, _db_upgrade
from crawler.faces.cli.channel_commands import _channels_feeds, _channels_test
from crawler.faces.cli.common import EXIT_CONFIG, EXIT_FAILED, _first_line
from crawler.faces.cli.feedback_commands import _feedback_show
from crawler.faces.cli.inspect_commands import _extract, _rules_test, _status, _stories
from crawler.faces.cli.service_commands import _crawl, _demo, _digest, _run, _worker
from crawler.faces.cli.source_commands import (
    _sources_add,
    _sources_doctor,
    _sources_export,
    _sources_import,
    _sources_list,
    _sources_remove,
)
from crawler.orchestration.startup import DatabaseUnavailable, is_database_unreachable
from crawler.orchestration.workers import return_large_blocks_promptly

if TYPE_CHECKING:
    from collections.abc import Sequence


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
        # (crawler.orchestration.runtime.settle_start_up).
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
        print(f"newswatch: the database does not answer: {_first_line(error)}", file=sys.stderr)
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
        "--config",
        metavar="PATH",
        help="configuration file (default: $NEWSWATCH_CONFIG, else ./config.yaml)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per log line, for log collectors",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the service: poll on schedule, send digests")
    run.add_argument(
        "--role",
        choices=["all", "scheduler"],
        default="all",
        help="all: the whole service in this process (default); scheduler: schedule polls "
        "for `newswatch worker` processes through Redis and send digests, active while it "
        "holds the scheduler lock (scale-out, see docs/scaling.md)",
    )
    run.set_defaults(handler=_run)

    worker = commands.add_parser(
        "worker", help="crawl the polls the active scheduler queues in Redis (scale-out)"
    )
    worker.set_defaults(handler=_worker)

    crawl = commands.add_parser("crawl", help="poll sources now, store and match, then exit")
    crawl.add_argument(
        "--source", action="append", metavar="NAME", help="only this source (repeatable)"
    )
    crawl.set_defaults(handler=_crawl)

    digest = commands.add_parser("digest", help="send pending digests now, then exit")
    digest.add_argument(
        "--dry-run", action="store_true", help="print what would be sent; send and record nothing"
    )
    digest.add_argument(
        "--preview",
        metavar="PATH",
        help="write the next digest's HTML to PATH; send and record nothing",
    )
    digest.add_argument("--recipient", metavar="EMAIL", help="only this recipient (default: all)")
    digest.set_defaults(handler=_digest)

    extract = commands.add_parser("extract", help="print the extracted article of pages as JSON")
    extract.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    extract.set_defaults(handler=_extract)

    demo = commands.add_parser(
        "demo", help="run the service against a bundled demo news site (no internet needed)"
    )
    demo.add_argument(
        "--folder",
        default="newswatch-demo",
        type=Path,
        help="where the demo's config, database and outbox go (each run clears "
        "the previous run's database and digests)",
    )
    demo.add_argument(
        "--web-port",
        type=_port,
        metavar="PORT",
        default=8787,
        help="status page port (0: any); when it is taken, any free one",
    )
    demo.add_argument(
        "--site-port",
        type=_port,
        default=8788,  # crawler.faces.demo.DEMO_SITE_PORT, not imported: it loads http.server
        metavar="PORT",
        help="the demo news site's port (0: any); when it is taken, any free one",
    )
    demo.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop by itself after this long (default: run until Ctrl-C)",
    )
    demo.set_defaults(handler=_demo)

    rules = commands.add_parser("rules", help="try watch rules")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rules_test = rules_commands.add_parser(
        "test", help="run a rule on stored articles (or pages) and show each hit"
    )
    rules_test.add_argument(
        "name", nargs="?", help="a rule from the configuration (leave out with --query)"
    )
    rules_test.add_argument("--query", help="try this query instead of a configured rule")
    rules_test.add_argument(
        "--since", default="7d", help="stored articles fetched this recently (default 7d)"
    )
    rules_test.add_argument(
        "pages",
        nargs="*",
        default=[],
        metavar="URL_OR_FILE",
        help="test on these pages instead of stored articles",
    )
    rules_test.add_argument("--json", action="store_true", help="one JSON object per hit")
    rules_test.add_argument(
        "--explain",
        action="store_true",
        help="score each hit as a digest ranks it (relevance × prominence × freshness), best first",
    )
    rules_test.add_argument(
        "--reader",
        metavar="RECIPIENT",
        help="with --explain: also the learned factor of this reader's votes on the rule",
    )
    rules_test.set_defaults(handler=_rules_test)

    channels = commands.add_parser("channels", help="try delivery channels")
    channel_commands = channels.add_subparsers(
        dest="channels_command", required=True, metavar="ACTION"
    )
    channels_test = channel_commands.add_parser(
        "test", help="send a test message on a channel (channels[].name) and print the result"
    )
    channels_test.add_argument("name", metavar="NAME", help="the channel's name")
    channels_test.set_defaults(handler=_channels_test)
    channels_feeds = channel_commands.add_parser(
        "feeds", help="print the private URL of each reader's feed (feed channels)"
    )
    channels_feeds.set_defaults(handler=_channels_feeds)

    sources = commands.add_parser("sources", help="look into the configured sources")
    source_commands = sources.add_subparsers(
        dest="sources_command", required=True, metavar="ACTION"
    )
    doctor = source_commands.add_parser(
        "doctor",
        help="one diagnostic poll of a source, step by step (DNS, robots.txt, status, "
        "content type, feed, a sample article); stores nothing",
    )
    doctor.add_argument("name", metavar="NAME", help="the source's name (sources[].name)")
    doctor.set_defaults(handler=_sources_doctor)
    add = source_commands.add_parser(
        "add",
        help="add a source by its address: a feed, or a site or section page whose feeds "
        "and news sitemaps are found, tried and offered",
    )
    add.add_argument("url", metavar="URL")
    add.add_argument("--name", help="the source's name (default: from its title)")
    add.add_argument("--every", metavar="DURATION", help="poll interval (default 15m)")
    add.add_argument("--yes", action="store_true", help="take the best candidate")
    add.add_argument("--pick", type=int, metavar="N", help="take candidate N")
    add.set_defaults(handler=_sources_add)
    listing = source_commands.add_parser("list", help="the configured sources, one a line")
    listing.set_defaults(handler=_sources_list)
    remove = source_commands.add_parser(
        "remove", help="remove a source from config.yaml (its comments and layout kept)"
    )
    remove.add_argument("name", metavar="NAME", help="the source's name")
    remove.set_defaults(handler=_sources_remove)
    opml_in = source_commands.add_parser(
        "import",
        help="add the feeds of an OPML file (a feed reader's export) as sources; a dry run "
        "that prints the plan unless --write",
    )
    opml_in.add_argument("file", metavar="FILE.opml")
    opml_in.add_argument("--write", action="store_true", help="write the plan to config.yaml")
    opml_in.add_argument("--every", metavar="DURATION", help="poll interval of the new sources")
    opml_in.set_defaults(handler=_sources_import)
    opml_out = source_commands.add_parser(
        "export", help="the feed sources as OPML 2.0 (for Miniflux, FreshRSS, NetNewsWire …)"
    )
    opml_out.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    opml_out.set_defaults(handler=_sources_export)

    feedback = commands.add_parser("feedback", help="what readers answered from their messages")
    feedback_commands = feedback.add_subparsers(
        dest="feedback_command", required=True, metavar="ACTION"
    )
    feedback_show = feedback_commands.add_parser(
        "show",
        help="per reader and rule: what their votes taught (words and outlets that move "
        "stories up and down), their muted stories and paused rules",
    )
    feedback_show.add_argument(
        "recipient", nargs="?", metavar="RECIPIENT", help="one reader's address (default: all)"
    )
    feedback_show.set_defaults(handler=_feedback_show)

    status = commands.add_parser(
        "status", help="sources, rules and digests at a glance (from the database)"
    )
    status.add_argument("--json", action="store_true", help="one JSON document")
    status.set_defaults(handler=_status)

    stories = commands.add_parser("stories", help="list stories: copies of one story grouped")
    stories.add_argument(
        "--since", default="2d", help="stories with articles fetched this recently (default 2d)"
    )
    stories.add_argument(
        "--json", action="store_true", help="one JSON object per story, with its members"
    )
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


def _port(text: str) -> int:
    """A TCP port number for argparse: a bad one is a usage error, not a traceback."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0 to 65535): {text!r}")
    return int(text)


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
        JsonLogFormatter()
        if log_format == "json"
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
    # Apprise's debug lines, and those of urllib3 under it, quote the URL it posts to,
    # and a chat service's token is in it (Slack, Discord, Telegram): never below
    # INFO, even with --log-level DEBUG. httpcore2's debug lines (under Scrapy's httpx
    # handler, for sources behind a SOCKS proxy) show the proxy's user and password.
    for quoting_urls in ("apprise", "urllib3", "httpcore2", "httpx2"):
        logging.getLogger(quoting_urls).setLevel(max(logging.INFO, logging.getLevelName(level)))
    # These report a page or robots.txt they could not read, with a traceback; newswatch
    # reports the same failure itself, once, with the source, the URL and the reason.
    for duplicate in ("trafilatura", "scrapy.downloadermiddlewares.robotstxt"):
        logging.getLogger(duplicate).setLevel(
            logging.DEBUG if level == "DEBUG" else logging.CRITICAL
        )
