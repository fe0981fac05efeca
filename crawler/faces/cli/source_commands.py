"""`newswatch sources …`: list, remove, import from OPML and export to OPML the
configured sources (the file edited with its comments kept,
crawler/domain/config/editing.py), and `sources doctor NAME`, one diagnostic poll
step by step (crawler/orchestration/doctor.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.domain.config import name_hint
from crawler.domain.wording import counted
from crawler.faces.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, _load

if TYPE_CHECKING:
    import argparse
    from datetime import timedelta

MARKS = {"ok": "ok  ", "warn": "WARN", "failed": "FAIL"}


def _sources_doctor(args: argparse.Namespace) -> int:
    from crawler.orchestration.doctor import FAILED, diagnose

    config = _load(args)
    names = [source.name for source in config.sources]
    if args.name not in names:
        print(
            f"newswatch: no source {args.name!r} in the configuration"
            + name_hint(args.name, names, "sources")
        )
        return EXIT_CONFIG
    source = config.source(args.name)
    print(f"{source.name}: {source.kind} {source.url}")
    failed = False
    for step in diagnose(source, config):
        print(f"  [{MARKS[step.result]}] {step.name}: {step.detail}")
        failed |= step.result == FAILED
    print("  nothing was stored; `newswatch status` shows the source's health state")
    return EXIT_FAILED if failed else EXIT_OK


def _sources_list(args: argparse.Namespace) -> int:
    config = _load(args)
    if not config.sources:
        print("newswatch: no sources in the configuration")
        return EXIT_OK
    width = max(len(source.name) for source in config.sources)
    for source in config.sources:
        extra = [f"every {_duration(source.every)}"]
        if not source.enabled:
            extra.append("disabled")
        if source.tags:
            extra.append(f"tags: {', '.join(source.tags)}")
        print(f"{source.name:<{width}}  {source.kind:<7}  {source.url}  ({'; '.join(extra)})")
    return EXIT_OK


def _sources_remove(args: argparse.Namespace) -> int:
    from crawler.domain.config import config_path
    from crawler.domain.config.editing import remove_source

    path = config_path(args.config)
    remove_source(path, args.name)
    print(f"removed source {args.name} from {path}; a running service stops polling it")
    return EXIT_OK


def _sources_import(args: argparse.Namespace) -> int:
    from crawler.domain.config import config_path
    from crawler.domain.config.editing import add_sources
    from crawler.domain.config.opml import OpmlError, import_plan, read_opml

    config = _load(args)
    try:
        feeds = read_opml(Path(args.file).read_bytes())
    except OSError as error:
        print(f"newswatch: {args.file}: cannot read it: {error.strerror or error}")
        return EXIT_FAILED
    except OpmlError as error:
        print(f"newswatch: {args.file}: {error}")
        return EXIT_FAILED
    plan = import_plan(feeds, config.sources, every=args.every)
    added = [step for step in plan if step.action == "add"]
    for step in plan:
        if step.action == "add":
            tags = step.source.get("tags")
            notes = [f"listing, links: {step.source['links']}"] if "links" in step.source else []
            notes += [f"tags: {', '.join(tags)}"] if isinstance(tags, list) else []
            also = f"  ({'; '.join(notes)})" if notes else ""
            print(f"add   {step.source['name']}  {step.feed.url}{also}")
        else:
            print(f"skip  {step.feed.url}: {step.reason}")
    skipped = len(plan) - len(added)
    print(f"{len(added)} to add, {skipped} skipped", end="")
    if not args.write:
        print("; nothing written (a dry run: --write applies it)")
        return EXIT_OK
    if added:
        path = config_path(args.config)
        add_sources(path, [step.source for step in added])
        print(f"; written to {path} (a running service picks them up)")
    else:
        print("; nothing to write")
    return EXIT_OK


def _sources_export(args: argparse.Namespace) -> int:
    from crawler.domain.config.opml import export_opml

    config = _load(args)
    others = [source.name for source in config.sources if source.kind != "feed"]
    document = export_opml(config.sources)
    if args.output:
        Path(args.output).write_bytes(document)
        print(f"{counted(len(config.sources) - len(others), 'feed')} written to {args.output}")
    else:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
    if others:
        # Said on stderr: stdout is the OPML document itself.
        print(
            f"newswatch: not exported (not feeds, which OPML readers follow): {', '.join(others)}",
            file=sys.stderr,
        )
    return EXIT_OK


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _sources_add(args: argparse.Namespace) -> int:
    from crawler.domain.config import config_path
    from crawler.domain.config.browser import find_chromium
    from crawler.domain.config.editing import add_sources
    from crawler.domain.config.opml import slug
    from crawler.domain.urls import canonicalize_url
    from crawler.orchestration.discovery import Chromium, discover_sources
    from spiders.settings import user_agent

    config = _load(args)
    agent = user_agent(config.user_agent_contact)
    executable, _why_not = find_chromium(config.browser.executable)
    chromium = Chromium(str(executable), frozenset(config.browser.block)) if executable else None
    try:
        discovery = discover_sources(
            args.url, agent, config.download_timeout.total_seconds(), chromium
        )
    except (OSError, ValueError) as error:
        print(f"newswatch: {args.url}: {getattr(error, 'reason', None) or error}")
        return EXIT_FAILED
    candidates = discovery.candidates
    if not candidates:
        print(f"newswatch: no feed, news sitemap or list of article links found at {args.url}")
        if discovery.script_built and discovery.rendered:
            print(
                f"the page looks built by JavaScript ({discovery.script_built}), and "
                "rendered in Chromium it shows no list of article links either: add it by "
                "hand as a listing source with `render: browser` and the selector of its "
                "article links, `links:` (README)"
            )
        elif discovery.script_built:
            print(
                f"the page looks built by JavaScript ({discovery.script_built}): add it as a "
                "listing source with `render: browser`, which reads the page as a browser "
                "shows it (README)"
            )
        else:
            print(
                "a section page can be added by hand as a listing source with the CSS "
                "selector of its article links, `links:` (README)"
            )
        return EXIT_FAILED
    known = {canonicalize_url(source.url): source.name for source in config.sources}
    for number, candidate in enumerate(candidates, 1):
        where = known.get(canonicalize_url(candidate.url))
        already = f"  [already a source: {where}]" if where else ""
        if candidate.kind == "listing":
            rendered = ", `render: browser`" if candidate.render == "browser" else ""
            print(
                f"{number}. listing {candidate.url} ({candidate.how}): "
                f"{counted(candidate.entries, 'article link')} match "
                f"`links: {candidate.links}`{rendered}{already}"
            )
            for title, _published in candidate.samples:
                print(f"     {title[:90]}")
            continue
        print(
            f"{number}. {candidate.kind} {candidate.url} ({candidate.how}): "
            f"{counted(candidate.entries, 'entry', 'entries')}{already}"
        )
        for title, published in candidate.samples:
            when = f"{published:%Y-%m-%d %H:%M} UTC" if published else "no date"
            print(f"     {when}  {title[:90]}")
    choice = _choose(args, len(candidates))
    if choice is None:
        print("nothing written: choose one with --pick N, or --yes for the first")
        return EXIT_OK if not args.pick else EXIT_CONFIG
    chosen = candidates[choice - 1]
    if (name := known.get(canonicalize_url(chosen.url))) is not None:
        print(f"newswatch: {chosen.url} is already the source {name}")
        return EXIT_CONFIG
    names = {source.name for source in config.sources}
    base = args.name or slug(chosen.title) or slug(urlsplit_host(chosen.url)) or "source"
    name, number = base, 2
    while name in names and not args.name:
        name, number = f"{base}-{number}", number + 1
    entry: dict[str, object] = {"name": name, chosen.kind: chosen.url}
    if chosen.links:
        entry["links"] = chosen.links
    if chosen.render != "http":
        entry["render"] = chosen.render
    if args.every:
        entry["every"] = args.every
    path = config_path(args.config)
    add_sources(path, [entry])
    print(
        f"added source {name} ({chosen.kind} {chosen.url}) to {path}; a running service picks it up"
    )
    return EXIT_OK


def _choose(args: argparse.Namespace, count: int) -> int | None:
    """The candidate to add: --pick N, the first with --yes, else asked on a
    terminal; None when nothing is chosen."""
    if args.pick:
        return args.pick if 1 <= args.pick <= count else None
    if args.yes:
        return 1
    if not sys.stdin.isatty():
        return None
    answer = input(f"add which? [1-{count}, Enter for 1, n for none] ").strip().lower()
    if answer in ("", "y", "yes"):
        return 1
    return int(answer) if answer.isdigit() and 1 <= int(answer) <= count else None


def urlsplit_host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""
