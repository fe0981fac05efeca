"""A private feed as Atom, read from the ledger (built with feedgen).

The ledger is the feed: each story delivered to the (recipient, feed channel) is
one entry, the newest ``entries`` stories of it. An entry's id is a ``tag:`` URI
of the story, so it never changes, whatever copy is shown; its ``updated`` is when
the story was last delivered, so it moves when a revision of the story is. The
body depends on the ledger only (the feed's own ``updated`` is its newest entry's),
so the same ledger gives the same bytes and the same ETag.

Web text is untrusted: feedgen escapes it as XML, and characters XML 1.0 does not
allow (controls, lone surrogates) are dropped first, so the feed always parses.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from feedgen.feed import FeedGenerator
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from alerts.channel_sending import send_on_channel
from alerts.feed_channel import FeedChannel
from alerts.ledger import DIGEST, message_domain
from alerts.render import MAX_TITLE_CHARS, make_snippet, safe_url
from crawler import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alerts.feed_channel import FeedAddress
    from crawler.domain.config import Config
    from crawler.storage.store import FeedItem, Store

logger = logging.getLogger(__name__)

# Characters XML 1.0 allows (§2.2), besides which lxml refuses to write a string.
_NOT_XML_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SPACES_RE = re.compile(r"\s+")
# The date of every tag: URI newswatch mints (RFC 4151: the name was ours then).
TAG_DATE = "2026"
# The feed's `updated` while it holds no entry: fixed, so an empty feed keeps its ETag.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)
ATOM = "application/atom+xml; charset=utf-8"


@dataclass(frozen=True)
class RenderedFeed:
    """A feed's bytes, their strong ETag (quoted) and its newest entry's time."""

    body: bytes
    etag: str
    last_modified: datetime | None
    entries: int


@dataclass(frozen=True)
class FeedStory:
    """One entry: a story's copies (the main one first) and their rules in order."""

    key: int
    copies: tuple[FeedItem, ...]
    rules: tuple[tuple[str, tuple[str, ...]], ...]
    updated: datetime
    revised: bool


def xml_text(text: str | None, *, one_line: bool = False, limit: int | None = None) -> str:
    """``text`` with only characters XML 1.0 allows; on one line (whitespace
    collapsed) when asked, cut to ``limit`` characters with "…"."""
    text = _NOT_XML_RE.sub("", text or "")
    if one_line:
        text = _SPACES_RE.sub(" ", text).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def story_id(config: Config, key: int) -> str:
    """The entry id of a story: a tag: URI of the story id (or the article's id for
    an article that is a story of its own), never of the URL, which may change."""
    name = f"story:{key}" if key >= 0 else f"article:{-key}"
    return f"tag:{message_domain(config)},{TAG_DATE}:newswatch:{name}"


# One delivery into a given feed at a time in this process: a reader that asks
# twice at once waits for the first request's delivery instead of racing it. Other
# processes, and the scheduled digest, are kept apart by the ledger's claims.
_delivering: dict[tuple[str, str], threading.Lock] = {}
_delivering_lock = threading.Lock()


def deliver_to_feed(
    store: Store, config: Config, address: FeedAddress, now: datetime | None = None
) -> int:
    """Record what is pending for the feed's recipient in the feed now, through the
    ledger path a digest run takes (claims included, so this and a digest run at the
    same moment never both deliver an item); returns the articles added."""
    name, email = address.channel.name, address.recipient.email
    with _delivering_lock:
        lock = _delivering.setdefault((name, email.lower()), threading.Lock())
    with lock:
        return send_on_channel(
            store,
            config,
            FeedChannel(name),
            address.recipient,
            address.recipient.rules,
            DIGEST,
            now or datetime.now(UTC),
        ).sent  # a feed has no throttle: nothing is held back


def read_feed(
    store: Store,
    config: Config,
    address: FeedAddress,
    self_url: str,
    rule: str | None = None,
    now: datetime | None = None,
) -> RenderedFeed:
    """The feed as a reader gets it now: what is pending is delivered into it first,
    then the ledger is read (one rule's stories only, with ``rule``). Blocking."""
    try:
        deliver_to_feed(store, config, address, now)
    except SQLAlchemyError as error:
        # The ledger as it stands is still worth serving; the next request delivers.
        logger.warning(
            "feed %s of %s: could not deliver what is pending now: %s",
            address.channel.name,
            address.recipient.email,
            (str(error).strip().splitlines() or [type(error).__name__])[0][:300],
        )
    rules = [rule] if rule is not None else list(address.recipient.rules)
    items = store.feed_items(
        address.recipient.email, address.channel.name, rules, address.channel.entries
    )
    stories = group_stories(items, rules)
    bodies = store.article_bodies([story.copies[0].article.id for story in stories])
    return render_feed(config, address, stories, bodies, self_url, rule)


def group_stories(items: Sequence[FeedItem], rule_order: Sequence[str]) -> list[FeedStory]:
    """``items`` by story, newest delivery first; in each story the earliest copy
    (usually the wire original) first, and the rules in configuration order."""
    oldest = datetime.max.replace(tzinfo=UTC)
    by_story: dict[int, list[FeedItem]] = {}
    for item in items:
        by_story.setdefault(item.story, []).append(item)
    order = {name: position for position, name in enumerate(rule_order)}
    stories = []
    for key, copies in by_story.items():
        copies.sort(key=lambda i: (i.article.published or oldest, i.article.id))
        rules: dict[str, tuple[str, ...]] = {}
        for copy in copies:
            for rule, terms in copy.rules:
                rules[rule] = tuple(dict.fromkeys((*rules.get(rule, ()), *terms)))
        stories.append(
            FeedStory(
                key=key,
                copies=tuple(copies),
                rules=tuple(sorted(rules.items(), key=lambda kv: order.get(kv[0], len(order)))),
                updated=max(copy.delivered for copy in copies),
                revised=any(copy.revision > 1 for copy in copies),
            )
        )
    return sorted(stories, key=lambda story: (story.updated, story.key), reverse=True)


def render_feed(
    config: Config,
    address: FeedAddress,
    stories: Sequence[FeedStory],
    bodies: dict[int, str],
    self_url: str,
    rule: str | None = None,
) -> RenderedFeed:
    """The Atom document of ``stories``, times in the recipient's zone."""
    zone = ZoneInfo(address.recipient.timezone)
    channel = address.channel
    title = channel.title or f"newswatch: {channel.name}"
    feed = FeedGenerator()
    # Of the token, only a hash: the document may be shared, the URL's credential not.
    private = hashlib.sha256(address.token.encode()).hexdigest()[:32]
    suffix = f":rule:{hashlib.sha256(rule.encode()).hexdigest()[:16]}" if rule else ""
    feed.id(f"tag:{message_domain(config)},{TAG_DATE}:newswatch:feed:{private}{suffix}")
    feed.title(xml_text(f"{title} — {rule}" if rule else title, one_line=True, limit=300))
    feed.subtitle(
        xml_text(f"The stories newswatch found for you, each once ({len(stories)} shown).")
    )
    feed.link(href=xml_text(self_url), rel="self", type="application/atom+xml")
    feed.author({"name": "newswatch"})
    feed.generator("newswatch", version=__version__)
    newest = max((story.updated for story in stories), default=None)
    feed.updated((newest or EMPTY_FEED_UPDATED).astimezone(zone))
    for story in stories:
        _add_entry(feed, config, story, bodies, zone)
    body: bytes = feed.atom_str(pretty=True)
    etag = f'"{hashlib.sha256(body).hexdigest()[:40]}"'
    return RenderedFeed(body=body, etag=etag, last_modified=newest, entries=len(stories))


def _add_entry(
    feed: FeedGenerator,
    config: Config,
    story: FeedStory,
    bodies: dict[int, str],
    zone: ZoneInfo,
) -> None:
    main = story.copies[0].article
    terms = tuple(dict.fromkeys(term for _rule, found in story.rules for term in found))
    snippet = xml_text(make_snippet(bodies.get(main.id, main.body), terms))
    outlets = [xml_text(main.source, one_line=True, limit=200)]
    others = [
        xml_text(copy.article.source, one_line=True, limit=200)
        for copy in story.copies[1:]
        if copy.article.source and copy.article.source != main.source
    ]
    others = list(dict.fromkeys(others))
    entry = feed.add_entry(order="append")
    entry.id(story_id(config, story.key))
    entry.title(xml_text(main.title, one_line=True, limit=MAX_TITLE_CHARS) or "(untitled)")
    link = safe_url(main.url)
    if link is not None:
        entry.link(href=xml_text(link), rel="alternate", type="text/html")
    entry.updated(story.updated.astimezone(zone))
    published = main.published or min(copy.delivered for copy in story.copies)
    entry.published(published.astimezone(zone))
    if outlets[0]:
        entry.author({"name": outlets[0]})
    entry.category(
        [
            {"term": xml_text(rule, one_line=True), "label": xml_text(rule)}
            for rule, _ in story.rules
        ]
    )
    if snippet:
        entry.summary(snippet)
    entry.content(_content_html(snippet, outlets[0], others, terms, story.revised), type="html")


def _content_html(
    snippet: str, outlet: str, others: Sequence[str], terms: Sequence[str], revised: bool
) -> str:
    """The entry's HTML (escaped here; feedgen escapes it again as XML text)."""
    lines: list[Markup] = []
    if revised:
        lines.append(Markup("<p><strong>Updated:</strong> the story changed since first sent.</p>"))
    if snippet:
        lines.append(Markup("<p>{}</p>").format(snippet))
    if outlet:
        lines.append(Markup("<p>{}</p>").format(outlet))
    if others:
        lines.append(Markup("<p>Also reported by: {}</p>").format(", ".join(others)))
    if terms:
        shown = ", ".join(xml_text(term, one_line=True) for term in terms)
        lines.append(Markup("<p>Matched: {}</p>").format(shown))
    return str(Markup("\n").join(lines)) or "(no text)"
