"""Digests that fit a mailbox: a busy day's matches become one email under the size
budget (``digest.max_bytes``, and never above the SMTP server's SIZE), each rule's
section cut to ``digest.max_stories`` stories with "N more" pointing to where all
of them are, and one log line saying that the digest was cut."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

import pytest
from smtpserver import RecordingSmtpServer

from alerts import story_scores
from alerts.delivery import MessageTooLarge, OutboxDelivery, SmtpDelivery, message_size
from alerts.digest import send_pending_digests
from alerts.learning import Taste, learn
from alerts.render import DigestEntry, DigestSection, RenderedDigest, build_message, render_digest
from alerts.rules import RuleMatch
from alerts.sections import group_by_rule
from crawler.domain.config import Config, SourceConfig
from crawler.domain.items import ExtractedArticle
from crawler.storage.records import LearningExample
from crawler.storage.store import ArticleRecord, PendingItem, Store, StoredArticle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from pathlib import Path

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
BUSY_DAY = 10_000
BODY = (
    "Regime troops were locked in heavy fighting with ISIS in central Syria, where they "
    "seized the ancient city of Palmyra. "
) * 30  # ~3 kB, a real article's length


def _config(**digest: object) -> Config:
    return Config.model_validate(
        {
            "sources": [{"name": "wire", "feed": "https://wire.example/rss"}],
            "rules": [
                {"name": "syria", "keywords": ["Palmyra"]},
                {"name": "energy", "keywords": ["oil"]},
            ],
            "digest": {"sender": "news@example.org", **digest},
            "recipients": [{"email": "ana@example.com"}],
            "web": {"public_url": "https://news.example.org/watch/"},
        }
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources([SourceConfig(name="wire", feed="https://wire.example/rss")])
    yield store
    store.close()


@pytest.fixture
def busy_store(store: Store) -> Store:
    """A busy day: 10,000 matches of "syria" and 30 of "energy", pending for ana."""
    _fill(store, BUSY_DAY)
    return store


def _fill(store: Store, count: int) -> None:
    """``count`` matches of "syria", the first 30 also of "energy", newest first."""
    batch = [
        (
            ArticleRecord(
                "wire",
                ExtractedArticle(
                    url=f"https://wire.example/{n}",
                    title=f"Palmyra report number {n}",
                    text=f"{BODY} Report {n}.",
                    published=NOW - timedelta(seconds=n),
                ),
            ),
            [RuleMatch("syria", ("Palmyra",))]
            + ([RuleMatch("energy", ("oil",))] if n < 30 else []),
        )
        for n in range(count)
    ]
    for start in range(0, len(batch), 1000):
        store.insert_articles(batch[start : start + 1000])


def _received(path: Path) -> bytes:
    [eml] = path.glob("*.eml")
    return eml.read_bytes()


def test_a_busy_days_digest_is_one_email_under_budget_with_n_more(
    busy_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config()
    with caplog.at_level(logging.WARNING, logger="alerts.digest"):
        report = send_pending_digests(busy_store, config, OutboxDelivery(tmp_path), NOW)
    # Every match is delivered (as an entry, or counted in "N more"), none is left.
    assert report.sent == {"ana@example.com": BUSY_DAY}
    assert busy_store.pending_items("ana@example.com", ["syria", "energy"]) == []
    raw = _received(tmp_path)
    assert len(raw) < config.digest.max_bytes
    assert len(raw) < 1_000_000  # was 15.7 MB: 50 stories per rule are a few hundred kB
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Subject"] == f"newswatch: {BUSY_DAY} new articles"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    # The best 50 of syria's stories are shown (equal scores: the newest). The 30 that
    # also match energy score better for syria (their terms are in the text): each is
    # shown once, there, naming the other rule.
    assert text.count("Palmyra report number") == 50
    assert text.count("Also matches: energy") == 30
    assert "== energy" not in text
    assert "Palmyra report number 0\n" in text
    assert "Palmyra report number 49\n" in text
    assert "Palmyra report number 50\n" not in text
    assert f"== syria ({BUSY_DAY}) ==" in text
    more = (
        "- ... and 9,950 more stories not shown here, to keep this email small:\n"
        "  https://news.example.org/watch/matches?rule=syria"
    )
    assert more in text
    assert text.count("more stories not shown here") == 1
    assert '<a href="https://news.example.org/watch/matches?rule=syria">' in html
    assert "9,950 more stories" in html
    [line] = [r.getMessage() for r in caplog.records if " cut: " in r.getMessage()]
    assert (
        "ana@example.com cut: 50 stories shown, 9950 more only counted "
        "(digest.max_stories is 50)" in line
    )


def test_a_small_budget_cuts_deeper_and_still_fits(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(store, 1000)
    config = _config(max_stories=10_000, max_bytes=100_000)
    with caplog.at_level(logging.WARNING, logger="alerts.digest"):
        report = send_pending_digests(store, config, OutboxDelivery(tmp_path), NOW)
    assert report.sent == {"ana@example.com": 1000}
    raw = _received(tmp_path)
    assert len(raw) <= 100_000
    text = BytesParser(policy=policy.default).parsebytes(raw).get_body(("plain",)).get_content()
    shown = text.count("Palmyra report number")
    assert 2 <= shown < 100
    [line] = [r.getMessage() for r in caplog.records if " cut: " in r.getMessage()]
    assert "per rule fit the budget of 100,000 bytes" in line


def test_without_a_public_url_the_n_more_line_says_how_to_see_them() -> None:
    assert group_by_rule([], ["syria"], max_stories=1) == []
    entry = DigestEntry(
        title="Palmyra",
        url="https://wire.example/1",
        source="wire",
        published=NOW,
        snippet_text="Palmyra",
        terms=("Palmyra",),
    )
    digest = render_digest(
        [DigestSection("syria news", (entry,), more=7)],
        timezone="UTC",
        subject_template="{count}",
        generated_at=NOW,
        count=8,
    )
    assert digest.subject == "8"
    assert (
        "- ... and 7 more stories not shown here, to keep this email small:\n"
        "  the web UI's Matches page, or: newswatch rules test 'syria news'"
    ) in digest.text
    assert (
        "see them in the web UI's Matches page, or: newswatch rules test 'syria news'"
        in digest.html
    )


def test_the_smtp_servers_size_is_never_exceeded(store: Store) -> None:
    """The server advertises SIZE 100,000 (below the 5 MB budget): the first try
    learns it without sending DATA, the digest is cut to fit and goes through."""
    _fill(store, 1000)
    config = _config()
    with RecordingSmtpServer(size_limit=100_000) as server:
        delivery = SmtpDelivery(server.host, server.port, timeout=10)
        report = send_pending_digests(store, config, delivery, NOW)
        assert report.sent == {"ana@example.com": 1000}, report
        [received] = server.messages
    assert delivery.size_limit == 100_000
    assert len(received.raw) <= 100_000
    assert "more stories not shown here" in received.message.get_body(("plain",)).get_content()


def test_a_message_over_the_advertised_size_is_refused_before_data() -> None:
    digest = RenderedDigest(subject="big", html="<p>" + "x" * 300_000 + "</p>", text="x")
    message = build_message(
        digest,
        sender="a@example.org",
        recipient="b@example.org",
        message_id="<big@example.org>",
        date=NOW,
    )
    with RecordingSmtpServer(size_limit=100_000) as server:
        delivery = SmtpDelivery(server.host, server.port, timeout=10)
        with pytest.raises(MessageTooLarge) as raised:
            delivery.send(message)
        assert server.messages == []
    assert raised.value.limit == 100_000
    assert raised.value.size == message_size(message)
    assert str(raised.value) == (
        f"SMTP delivery via {server.host}:{server.port} not tried: the message is "
        f"{message_size(message):,} bytes and the server takes at most 100,000 (SIZE)"
    )


# --- a cut section is the whole section's first stories -------------------------------

WORDS = ("floods", "port", "oil", "council", "storm", "vote", "the", "a", "said", "on")


def _random_day(seed: int) -> tuple[list[PendingItem], dict[int, str]]:
    """A day of 120 articles (bodies apart, as a delivery's items come) under three
    rules, one no longer configured: copies of one story from several outlets,
    terms hit in the title, the body, both or neither (a stem), equal scores, a
    story without a publish time and one from the future."""
    draw = random.Random(seed)  # noqa: S311 - test data, not secrets
    items, bodies = [], {}
    for article_id in range(1, 121):
        # Mostly one rule; a story of several is placed by its scores, so is scored.
        rules = {
            rule: tuple(draw.sample(terms, draw.randint(1, len(terms))))
            for n, (rule, terms) in enumerate(
                draw.sample(
                    [
                        ("floods", ("floods", "port", "storm")),
                        ("energy", ("oil", "port")),
                        ("gone", ("vote", "council")),
                    ],
                    3,
                )
            )
            if n == 0 or draw.random() < 0.15
        }
        hours = draw.choice((None, -1.0, 0.0, 2.0, 2.0, 30.0, 200.0, draw.uniform(0, 48)))
        bodies[article_id] = " ".join(draw.choices(WORDS, k=draw.randint(5, 60)))
        items.append(
            PendingItem(
                article=StoredArticle(
                    id=article_id,
                    url=f"https://wire.example/{article_id}",
                    source=draw.choice(("wire", "daily", "herald")),
                    title=" ".join(draw.choices(WORDS, k=draw.randint(2, 6))),
                    body="",
                    published=None if hours is None else NOW - timedelta(hours=hours),
                    authors=(),
                    language="en",
                    story_id=draw.choice((None, None, draw.randint(1, 15))),
                ),
                rules=tuple(rules.items()),
            )
        )
    return items, bodies


def _reading(
    bodies: Mapping[int, str], read: list[int]
) -> Callable[[Sequence[int]], Mapping[int, str]]:
    """``bodies`` as ``Store.article_bodies`` reads them, noting each id read in ``read``."""

    def article_bodies(article_ids: Sequence[int]) -> Mapping[int, str]:
        read.extend(article_ids)
        return {article_id: bodies[article_id] for article_id in article_ids}

    return article_bodies


def _taste() -> Taste:
    """A reader who marked the storm stories of "floods" not relevant: factors above
    and below 1 reorder the section, so the scorer's bounds must allow for them."""
    draw = random.Random(99)  # noqa: S311 - test data, not secrets
    examples = [
        LearningExample(
            "less" if n < 6 else "ordinary",
            f"{'storm' if n < 6 else 'port'} council {n}",
            " ".join(draw.choices(WORDS, k=30)) + (" storm storm" if n < 6 else " port oil"),
            draw.choice(("wire", "daily", "herald")),
            "en",
        )
        for n in range(14)
    ]
    taste = learn("floods", examples, learn_after=5)
    assert taste.active
    return taste


@pytest.mark.parametrize("learned", [False, True], ids=["", "learned"])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    ("max_stories", "top_stories", "repeat_stories"),
    [(1, 0, False), (3, 3, False), (5, 3, True), (10, 0, True), (25, 3, False)],
    ids=["one", "three-top", "five-top-repeat", "ten-repeat", "twenty-five-top"],
)
def test_a_cut_section_shows_the_whole_sections_first_stories_reading_fewer_bodies(
    seed: int,
    max_stories: int,
    top_stories: int,
    repeat_stories: bool,
    learned: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scoring only the stories that can make the cut (alerts/story_scores.py) shows
    what scoring every story shows: the same stories, in the same order, with the
    same scores, and the same count of the rest; also with a reader's learned taste."""
    monkeypatch.setattr(story_scores, "SCORE_BATCH", 4)  # a day of 120 takes a few batches
    items, bodies = _random_day(seed)
    options: dict[str, Any] = {
        "now": NOW,
        "top_stories": top_stories,
        "repeat_stories": repeat_stories,
        "tastes": {"floods": _taste()} if learned else None,
    }
    whole_read: list[int] = []
    whole = group_by_rule(
        items, ["floods", "energy"], bodies=_reading(bodies, whole_read), **options
    )
    read: list[int] = []
    cut = group_by_rule(
        items,
        ["floods", "energy"],
        max_stories=max_stories,
        bodies=_reading(bodies, read),
        **options,
    )
    expected = [
        section
        if section.top
        else DigestSection(
            section.rule,
            section.entries[:max_stories],
            more=max(len(section.entries) - max_stories, 0),
        )
        for section in whole
    ]
    assert cut == expected
    assert [section.rule for section in cut][-1] == "gone"
    assert len(read) == len(set(read))  # each body read once
    if max_stories <= 5:
        assert len(read) < len(whole_read)
