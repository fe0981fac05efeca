"""The inspection commands: extract, rules test, status and stories."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.domain.config import ConfigError, name_hint
from crawler.domain.wording import counted
from crawler.faces.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, _load, _open_store

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alerts.channel_status import ChannelStatus
    from alerts.learning import Taste
    from alerts.ranking import Score
    from crawler.domain.config import Config
    from crawler.domain.health import Health
    from crawler.domain.items import ExtractedArticle, RuleMatch
    from crawler.storage.store import StoredArticle


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
    from alerts.rules import MatchDocument, QueryRule, RuleMatcher, covers_source, rules_from_config
    from crawler.domain.config import parse_duration
    from crawler.storage.store import StoredArticle

    config = _load(args)
    if args.query and args.name:
        # With --query every positional argument is a page to test on.
        args.pages, args.name = [args.name, *args.pages], None
    scope = ""  # the rule's `sources` as written, if it has them
    if args.query:
        try:
            rule: Any = QueryRule("inline", args.query)
            matcher = RuleMatcher([rule])
        except ValueError as error:
            raise ConfigError(f"--query: {error}") from None
    elif args.name:
        configured = [r for r in rules_from_config(config) if r.name == args.name]
        if not configured:
            raise ConfigError(
                f"no rule is named {args.name!r} in the configuration"
                + name_hint(args.name, config.rule_names(), "rules")
            )
        rule = configured[0]
        matcher = RuleMatcher([rule])
        scope = ", ".join(next(r for r in config.rules if r.name == args.name).sources or ())
    else:
        raise ConfigError("name a rule from the configuration, or give --query")
    if scope and args.pages:
        print(
            f"newswatch: rule {rule.name} is limited to sources ({scope}); the pages "
            "given are from no source, so they are tested on its words alone",
            file=sys.stderr,
        )

    articles: list[StoredArticle] = []
    if args.pages:
        from spiders.extract import extract_article

        for number, page in enumerate(args.pages):
            html, url = _read_page(page, "newswatch rules test")
            extracted = extract_article(html, url)
            articles.append(
                StoredArticle(
                    id=-number,
                    url=extracted.url,
                    source=page,
                    title=extracted.title,
                    body=extracted.text,
                    published=extracted.published,
                    authors=extracted.authors,
                    language=extracted.language,
                )
            )
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

    # Matched on the words alone, then split by the rule's sources (the test that
    # crawls apply), so that --explain can show what the sources left out.
    worded = [
        (article, match)
        for article in articles
        for match in matcher.match(
            MatchDocument.of_stored(article),
            any_source=True,
        )
    ]
    in_scope = [bool(args.pages) or covers_source(rule, article.source) for article, _ in worded]
    found = [hit for hit, kept in zip(worded, in_scope, strict=True) if kept]
    left_out = [hit for hit, kept in zip(worded, in_scope, strict=True) if not kept]
    hits = len(found)
    taste = _reader_taste(config, args) if args.explain and args.reader else None
    scores = _scores(found, articles, taste) if args.explain else {}
    if args.explain:
        # Best first, as a digest's section shows them (ties: newest first).
        found.sort(key=lambda hit: (-scores[id(hit[0])].log_total, -_timestamp(hit[0])))
    for article, match in found:
        snippet = make_snippet(article.body, match.terms)
        score = scores.get(id(article))
        if args.json:
            fields: dict[str, Any] = {
                "url": article.url,
                "title": article.title,
                "source": article.source,
                "terms": list(match.terms),
                "snippet": snippet,
            }
            if score is not None:
                fields["score"] = {
                    "total": score.total,
                    "relevance": score.relevance,
                    "prominence": score.prominence,
                    "freshness": score.freshness,
                    "age_half_lives": score.half_lives,
                    "learned": score.learned,
                    "learned_from": list(score.learned_from),
                }
            print(json.dumps(fields, ensure_ascii=False))
            continue
        explained = f"\n  {score.explain()}" if score is not None else ""
        print(
            f"{_highlight(article.title, match.terms)}\n  {article.source} · {article.url}"
            f"\n  terms: {', '.join(match.terms)}{explained}"
            f"\n  {_highlight(snippet, match.terms)}\n"
        )
    if args.explain:
        _print_left_out(left_out, scope, as_json=args.json)
    if not args.json:
        summary = f"{counted(hits, 'hit')} in {counted(len(articles), 'article')}"
        if left_out:
            listed = "listed above" if args.explain else "--explain lists them"
            summary += (
                f"; {len(left_out)} more match its words but come from sources outside "
                f"its sources ({listed})"
            )
        print(summary)
    return EXIT_OK


def _print_left_out(
    left_out: Sequence[tuple[StoredArticle, RuleMatch]], scope: str, *, as_json: bool
) -> None:
    """The articles a rule's words match that its ``sources`` leave out, and why."""
    for article, match in left_out:
        reason = f"its source {article.source} is not in the rule's sources ({scope})"
        if as_json:
            fields = {
                "url": article.url,
                "title": article.title,
                "source": article.source,
                "terms": list(match.terms),
                "left_out": reason,
            }
            print(json.dumps(fields, ensure_ascii=False))
            continue
        print(
            f"{_highlight(article.title, match.terms)}\n  {article.source} · {article.url}"
            f"\n  left out: {reason}\n"
        )


def _reader_taste(config: Config, args: argparse.Namespace) -> Taste | None:
    """What ``--reader``'s votes on the rule taught (None: no votes on it)."""
    from alerts.learning import reader_tastes

    if not args.name:
        raise ConfigError("--reader needs a rule from the configuration, not --query")
    readers = {r.email.lower(): r for r in config.all_recipients()}
    if args.reader.lower() not in readers:
        raise ConfigError(
            f"--reader: no recipient {args.reader!r}"
            + name_hint(args.reader, [r.email for r in readers.values()], "recipients")
        )
    store = _open_store(config)
    try:
        email = readers[args.reader.lower()].email
        learn_after = config.feedback.learn_after
        return reader_tastes(store, email, [args.name], learn_after, datetime.now(UTC)).get(
            args.name
        )
    finally:
        store.close()


def _scores(
    found: Sequence[tuple[StoredArticle, RuleMatch]],
    articles: Sequence[StoredArticle],
    taste: Taste | None = None,
) -> dict[int, Score]:
    """Each hit's score now, by the article's id(): its story's prominence counts the
    distinct outlets among the articles read that belong to the same story; with a
    reader's ``taste``, times its learned factor."""
    from dataclasses import replace

    from alerts.learning import story_features
    from alerts.ranking import score_story

    outlets: dict[int, set[str]] = {}
    for article in articles:
        if article.story_id is not None:
            outlets.setdefault(article.story_id, set()).add(article.source)
    now = datetime.now(UTC)
    scores = {}
    for article, match in found:
        score = score_story(
            title=article.title,
            body=article.body,
            terms=match.terms,
            outlets=len(outlets.get(article.story_id, ())) if article.story_id is not None else 1,
            published=article.published,
            now=now,
        )
        if taste is not None and taste.active:
            features = story_features(article.title, article.body, article.source, article.language)
            learned, reasons = taste.factor(features)
            score = replace(score, learned=learned, learned_from=reasons)
        scores[id(article)] = score
    return scores


def _timestamp(article: StoredArticle) -> float:
    return article.published.timestamp() if article.published is not None else 0.0


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
    from alerts.channel_status import channel_statuses
    from crawler.domain.config import cron_trigger
    from crawler.domain.urls import redact_text

    config = _load(args)
    store = _open_store(config)
    try:
        sources = store.source_statuses()
        matches = store.rule_match_counts()
        unsent = store.unsent_delivery_counts()
        channels = channel_statuses(store, config)
        health = store.all_health()
        last_runs = {r.email: store.last_run(f"digest:{r.email}") for r in config.all_recipients()}
    finally:
        store.close()
    configured = {s.name for s in config.sources}
    now = datetime.now(UTC)
    digests = []
    for recipient in config.all_recipients():
        trigger = cron_trigger(recipient.schedule, recipient.timezone)
        digests.append(
            {
                "recipient": recipient.email,
                "schedule": f"{recipient.schedule} ({recipient.timezone})",
                "timezone": recipient.timezone,
                "last": last_runs[recipient.email],
                "next": trigger.get_next_fire_time(None, now),
            }
        )
    report = {
        "sources": [
            {
                **row,
                "configured": row["name"] in configured,
                # Rows written before userinfo was split off source URLs may hold it.
                "url": redact_text(row["url"] or ""),
                "last_error": row["last_error"] and redact_text(row["last_error"]),
                "status": "failing"
                if row["consecutive_failures"]
                else ("ok" if row["last_success_at"] else "not polled yet"),
                **_health_json(health.get(row["name"])),
            }
            for row in sources
        ],
        "rules": [
            {"name": rule.name, "matches": matches.get(rule.name, 0), "alert": rule.alert}
            for rule in config.rules
        ],
        "digests": digests,
        "channels": [_channel_json(channel) for channel in channels],
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
    from crawler.faces.cli.status_view import print_status

    print_status(report, wide=args.wide)
    return EXIT_OK


def _health_json(health: Health | None) -> dict[str, Any]:
    """A source's health as ``status --json`` gives it (README, "Source health")."""
    if health is None:
        return {"state": None, "state_reason": None, "state_since": None, "evidence": {}}
    return {
        "state": health.state.value,
        "state_reason": health.reason,
        "state_since": health.since,
        "evidence": dict(health.evidence),
    }


def _channel_json(channel: ChannelStatus) -> dict[str, Any]:
    ledger = channel.ledger
    return {
        "name": channel.name,
        "kind": channel.kind,
        "recipients": list(channel.recipients),
        "status": channel.condition,
        "last_sent_at": ledger.last_sent_at,
        "sent": ledger.sent,
        # Articles waiting: in deliveries not sent yet, and not in any delivery yet.
        "pending": ledger.pending,
        "pending_in_unsent_deliveries": ledger.unsent_articles,
        "pending_not_in_a_delivery": ledger.undelivered,
        "unsent": ledger.unsent,
        "retrying": ledger.retrying,
        "failed": ledger.failed,
        "last_failed_at": ledger.last_failed_at,
        "last_error": ledger.last_error,
        "last_error_at": ledger.last_error_at,
    }


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
            print(
                json.dumps(
                    {
                        "story": first.story_id or first.id,
                        "title": first.title,
                        "members": [
                            {
                                "url": a.url,
                                "source": a.source,
                                "title": a.title,
                                "published": a.published.isoformat() if a.published else None,
                            }
                            for a in members
                        ],
                    },
                    ensure_ascii=False,
                )
            )
            continue
        print(f"{first.title}  [{counted(len(members), 'article')}]")
        for article in members:
            when = article.published.isoformat() if article.published else "time unknown"
            print(f"  {when}  {article.source}: {article.title}\n    {article.url}")
    return EXIT_OK
