"""A newsroom on the fixture site, and a ledger that holds newswatch to account.

``Newsroom`` publishes generated articles on a ``NewsSite`` (one RSS feed that
grows, one page per article, each body its own random text so no two are copies
of one story), and knows which rules each article must match. ``Ledger`` reads
the database and the outbox (and, when the readers also have a webhook and Apprise
channels, the receiver of tests/faults/inbox.py) and checks them against what was
published: nothing stored twice, every article with exactly its matches, every
delivery marked sent received with exactly its articles, and, once everything has
settled, every matching article in exactly one delivery per recipient and channel.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from email.utils import format_datetime
from html import escape
from typing import TYPE_CHECKING, Any

import wordfreq
from conftest import NEWSWATCH
from inbox import EMAIL, KINDS, ChannelTally, Copy, DeliveryRow, check_channel_copies, tally
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from pathlib import Path

    from inbox import ChannelInbox
    from newssite import NewsSite

# Rule name → its one keyword; the generated text never holds a keyword by chance.
KEYWORDS = {"quake": "earthquake", "flood": "flood"}
RULES = [{"name": name, "keywords": [keyword]} for name, keyword in KEYWORDS.items()]
# Recipient → the rules they get.
RECIPIENTS = {"ana@example.com": frozenset(KEYWORDS), "ben@example.com": frozenset({"flood"})}
# What an article matches: both rules, one, or none (a control: never sent).
RULE_CHOICES = [frozenset(KEYWORDS), frozenset({"quake"}), frozenset({"flood"}), frozenset()]
_VOCABULARY = [
    word
    for word in wordfreq.top_n_list("en", 4000)
    if word.isalpha() and len(word) > 2 and not any(k in word for k in KEYWORDS.values())
]
_URL = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class Published:
    """One article the newsroom published."""

    number: int
    url: str
    title: str
    rules: frozenset[str]


class Newsroom:
    """Publishes articles on ``site`` under ``section/``: a feed and their pages."""

    def __init__(self, site: NewsSite, seed: int = 0, section: str = "wire") -> None:
        self.site = site
        self.section = section
        self.random = random.Random(seed)  # noqa: S311 - test data, not secrets
        self.published: list[Published] = []
        self.started = datetime.now(UTC).replace(microsecond=0)
        self.site.set_content(self.feed_path, self._feed(), "application/rss+xml")

    @property
    def feed_path(self) -> str:
        return f"{self.section}/rss.xml"

    @property
    def feed_url(self) -> str:
        return self.site.url(self.feed_path)

    def publish(self, count: int) -> list[Published]:
        """Put ``count`` new articles on the site (pages first, then the feed)."""
        new = []
        for _ in range(count):
            number = len(self.published) + 1
            rules = self.random.choice(RULE_CHOICES)
            words = self.random.sample(_VOCABULARY, 5)
            title = f"{' '.join(words).capitalize()} (report {number})"
            path = f"{self.section}/articles/{number}.html"
            article = Published(number, self.site.url(path), title, rules)
            self.site.set_content(path, self._page(article), "text/html; charset=utf-8")
            self.published.append(article)
            new.append(article)
        self.site.set_content(self.feed_path, self._feed(), "application/rss+xml")
        return new

    def expected_urls(self, recipient: str) -> set[str]:
        """The published articles ``recipient`` must get: those matching their rules."""
        wanted = RECIPIENTS[recipient]
        return {article.url for article in self.published if article.rules & wanted}

    def _when(self, article: Published) -> datetime:
        return self.started + timedelta(seconds=article.number)

    def _page(self, article: Published) -> bytes:
        paragraphs = [" ".join(self.random.choices(_VOCABULARY, k=40)) for _ in range(4)]
        for n, rule in enumerate(sorted(article.rules)):
            words = paragraphs[n + 1].split()
            words.insert(len(words) // 2, KEYWORDS[rule])
            paragraphs[n + 1] = " ".join(words)
        body = "".join(f"<p>{escape(p.capitalize())}.</p>\n" for p in paragraphs)
        title = escape(article.title)
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<title>{title}</title><meta property="og:title" content="{title}">'
            f'<meta property="article:published_time" content="{self._when(article).isoformat()}">'
            f"</head><body><article><h1>{title}</h1>\n{body}</article></body></html>\n"
        ).encode()

    def _feed(self) -> bytes:
        items = "".join(
            f"<item><title>{escape(article.title)}</title><link>{article.url}</link>"
            f"<guid>{article.url}</guid>"
            f"<pubDate>{format_datetime(self._when(article), usegmt=True)}</pubDate></item>\n"
            for article in reversed(self.published)
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>Newsroom</title><link>{self.site.url(self.section + '/')}</link>"
            f"<description>generated</description>\n{items}</channel></rss>\n"
        ).encode()


def newsroom_settings(newsroom: Newsroom, settings: dict[str, Any], **overrides: Any) -> dict:
    """``settings`` (from conftest.site_config) polling only the newsroom's feed, with
    the newsroom's rules and recipients."""
    settings = dict(settings)
    settings["sources"] = [{"name": "newsroom", "feed": newsroom.feed_url, "every": "1h"}]
    settings["rules"] = RULES
    settings["digest"] = {**settings["digest"], "recipients": []}
    settings["recipients"] = [
        {"email": email, "rules": sorted(rules)} for email, rules in RECIPIENTS.items()
    ]
    settings.update(overrides)
    return settings


@dataclass(frozen=True)
class Message:
    """One .eml file in the outbox."""

    path: Path
    message_id: str
    recipient: str
    urls: frozenset[str]


def read_outbox(folder: Path) -> list[Message]:
    """Every message in the outbox; each must be complete (both parts, parseable)."""
    messages = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
        assert plain is not None, f"{path.name} has no text part"
        assert html is not None, f"{path.name} has no HTML part"
        assert "</html>" in html.get_content(), f"{path.name} is cut short"
        urls = frozenset(_URL.findall(plain.get_content()))
        messages.append(Message(path, str(parsed["Message-ID"]), str(parsed["To"]), urls))
    return messages


@dataclass
class Ledger:
    """What the database and the outbox say, checked against the newsroom."""

    database: str
    outbox: Path
    newsroom: Newsroom
    inbox: ChannelInbox | None = None  # the webhook and Apprise channels, when configured

    def rows(self, query: str) -> list[Any]:
        engine = create_engine(self.database)
        try:
            with engine.connect() as connection:
                return list(connection.execute(text(query)))
        finally:
            engine.dispose()

    def stored_urls(self) -> list[str]:
        return [url for (url,) in self.rows("SELECT url FROM articles")]

    def check(self) -> list[Message]:
        """The invariants that hold at every moment, even right after a SIGKILL.

        Returns the outbox's messages.
        """
        published = {article.url: article for article in self.newsroom.published}
        articles = dict(self.rows("SELECT id, url FROM articles"))
        urls = list(articles.values())
        assert len(urls) == len(set(urls)), "an article is stored twice"
        assert set(urls) <= set(published), set(urls) - set(published)
        matches: dict[int, set[str]] = {}
        for article_id, rule in self.rows("SELECT article_id, rule FROM matches"):
            matches.setdefault(article_id, set()).add(rule)
        for article_id, url in articles.items():
            # Stored in one transaction with its matches: never without them.
            assert matches.get(article_id, set()) == published[url].rules, (url, matches)

        items: dict[int, set[str]] = {}
        seen: set[tuple[str, str, int]] = set()
        for delivery_id, recipient, channel, article_id in self.rows(
            "SELECT delivery_id, recipient, channel, article_id FROM delivery_items"
        ):
            assert (recipient, channel, article_id) not in seen, "an article claimed twice"
            seen.add((recipient, channel, article_id))
            url = articles[article_id]
            assert published[url].rules & RECIPIENTS[recipient], (recipient, url)
            items.setdefault(delivery_id, set()).add(url)
        deliveries = [
            DeliveryRow(
                id_,
                recipient,
                channel,
                message_id,
                sent_at,
                failed_at,
                frozenset(items.get(id_, set())),
            )
            for id_, recipient, channel, message_id, sent_at, failed_at in self.rows(
                "SELECT id, recipient, channel, message_id, sent_at, failed_at FROM deliveries"
            )
        ]
        emails = {row.message_id: row for row in deliveries if row.channel == EMAIL}
        messages = read_outbox(self.outbox)
        by_id: dict[str, Message] = {}
        for message in messages:
            assert message.message_id not in by_id, f"{message.message_id} written twice"
            by_id[message.message_id] = message
            # Written only after its delivery row (with its items) was committed.
            assert message.message_id in emails, f"{message.path.name}: no delivery row"
            row = emails[message.message_id]
            assert message.recipient == row.recipient
            assert message.urls == row.urls, message.path.name
        for message_id, row in emails.items():
            # Marked sent only once it really was (the .eml is in the outbox).
            if row.sent_at is not None:
                assert message_id in by_id, f"{message_id} to {row.recipient} marked sent, not sent"
        if self.inbox is not None:
            check_channel_copies(self.inbox.copies(), deliveries)
        return messages

    def settled(self) -> bool:
        """Every article stored, and nothing left to send to anyone."""
        try:
            stored = set(self.stored_urls())
            unsent = self.rows("SELECT count(*) FROM deliveries WHERE sent_at IS NULL")[0][0]
        except SQLAlchemyError:  # the service has not made its tables yet
            return False
        if stored != {article.url for article in self.newsroom.published}:
            return False
        if unsent:
            return False
        received: dict[tuple[str, str], set[str]] = {}
        for copy in self.copies():
            received.setdefault((copy.kind, copy.recipient), set()).update(copy.urls)
        kinds = KINDS if self.inbox is not None else (EMAIL,)
        return all(
            received.get((kind, email), set()) >= self.newsroom.expected_urls(email)
            for kind in kinds
            for email in RECIPIENTS
        )

    def received(self) -> dict[str, set[str]]:
        """The article URLs each recipient got, over every message in the outbox."""
        received: dict[str, set[str]] = {}
        for message in read_outbox(self.outbox):
            received.setdefault(message.recipient, set()).update(message.urls)
        return received

    def copies(self) -> list[Copy]:
        """Every message each channel received: the outbox's, then the inbox's."""
        emails = [
            Copy(EMAIL, EMAIL, message.recipient, message.message_id, message.urls)
            for message in read_outbox(self.outbox)
        ]
        return emails + (self.inbox.copies() if self.inbox is not None else [])

    def check_delivered_exactly_once(self) -> list[ChannelTally]:
        """Each matching article reached each recipient on each of their channels under
        exactly one key (email: in exactly one message), and no other article reached
        anyone. Returns the account of each kind of channel."""
        messages = self.check()
        for email in RECIPIENTS:
            copies: dict[str, int] = {}
            for message in messages:
                if message.recipient == email:
                    for url in message.urls:
                        copies[url] = copies.get(url, 0) + 1
            assert set(copies) == self.newsroom.expected_urls(email), email
            assert all(count == 1 for count in copies.values()), (email, copies)
        expected = {email: self.newsroom.expected_urls(email) for email in RECIPIENTS}
        received = self.copies()
        tallies = [
            tally(kind, received, expected)
            for kind in (KINDS if self.inbox is not None else (EMAIL,))
        ]
        for account in tallies:
            assert (account.missing, account.two_keys) == (0, 0), account
            assert account.stories == sum(len(urls) for urls in expected.values()), account
        return tallies


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def service_running(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``newswatch run`` on ``config`` (output appended to ``log``) for the block,
    entered once the service runs; then SIGTERM, which must stop it cleanly (exit 0).

    Waiting for the start matters: a block whose condition already holds (everything
    settled by an earlier run) would otherwise signal a process still importing
    Python, before newswatch handles any signal."""
    started_at = log.stat().st_size if log.exists() else 0
    with log.open("ab") as output:
        process = subprocess.Popen(
            [NEWSWATCH, "--config", str(config), "run"], stdout=output, stderr=subprocess.STDOUT
        )

    def running() -> bool:
        with log.open("rb") as text:
            text.seek(started_at)
            return b"newswatch running:" in text.read() or process.poll() is not None

    try:
        wait_for(running, 60, "the service to start")
        yield process
        assert process.poll() is None, f"the service exited:\n{log.read_text()[-3000:]}"
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        assert code == 0, f"exit status {code}:\n{log.read_text()[-3000:]}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
