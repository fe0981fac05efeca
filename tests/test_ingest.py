"""Deduplication at storage: aliases, exact copies, revisions, retention, races."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from alerts.rules import RuleMatch
from crawler.domain.config import SourceConfig
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.domain.stories import StoryIndex
from crawler.domain.urls import site_host
from crawler.orchestration.ingest import (
    Outcome,
    ResendPolicy,
    content_fingerprint,
    ingest_article,
    ingest_batch,
    is_material_change,
)
from crawler.orchestration.story_index import StoryIndexFollower
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator

BODY = (
    "Regime troops were locked in heavy fighting on Tuesday with ISIS in central Syria, "
    "where they dealt the jihadists a major blow by seizing the ancient city of Palmyra. "
    "Just two days after seizing Palmyra, pro-government fighters advanced south-west "
    "towards the jihadist-held town of Al-Qaryatain, the monitor said."
)
SYRIA = [RuleMatch("syria", ("Palmyra",))]


def _item(
    url: str, *, fetched: str | None = None, title: str = "Army pressures ISIS", body: str = BODY
) -> ArticleItem:
    article = ExtractedArticle(
        url=url, title=title, text=body, published=datetime(2016, 3, 30, 1, 46, tzinfo=UTC)
    )
    return ArticleItem(source="wire", fetched_url=fetched or url, article=article)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources([SourceConfig(name="wire", feed="https://news.example/rss.xml")])
    yield store
    store.close()


def test_an_article_reached_through_amp_and_tracking_urls_is_stored_once(store: Store) -> None:
    canonical = "https://news.example/world/palmyra.html"
    first = ingest_article(
        store, _item(canonical, fetched="https://news.example/world/palmyra.html/amp/"), SYRIA
    )
    second = ingest_article(
        store,
        _item(canonical, fetched="https://m.news.example/world/palmyra.html?utm_source=x"),
        SYRIA,
    )
    assert first.outcome is Outcome.NEW
    assert second.outcome is Outcome.DUPLICATE
    assert second.article_id == first.article_id
    assert store.count_articles() == 1
    # Neither URL is fetched again.
    assert (
        store.new_urls(
            [
                "https://news.example/world/palmyra.html",
                "https://m.news.example/world/palmyra.html",
            ]
        )
        == []
    )


def test_the_same_body_under_another_url_of_the_site_is_the_same_article(store: Store) -> None:
    first = ingest_article(store, _item("https://news.example/story"), SYRIA)
    again = ingest_article(
        store,
        _item("https://www.news.example/print/story", body=BODY.replace("Tuesday", "Tuesday ")),
        SYRIA,
    )
    assert again.outcome is Outcome.DUPLICATE
    assert again.article_id == first.article_id
    assert store.count_articles() == 1
    assert store.new_urls(["https://www.news.example/print/story"]) == []


def test_another_outlets_word_for_word_copy_joins_the_story(store: Store) -> None:
    first = ingest_article(store, _item("https://a.example/story"), SYRIA)
    copy = ingest_article(
        store,
        _item(
            "https://b.example/copied-story",
            title="Syrian army presses ISIS",
            body=BODY.replace("Tuesday", "Tuesday "),
        ),
        SYRIA,
    )
    assert copy.outcome is Outcome.COPY
    assert copy.article_id != first.article_id
    assert copy.story_id == first.story_id
    (story,) = store.stories(datetime(2000, 1, 1, tzinfo=UTC))
    assert [member.url for member in story] == [
        "https://a.example/story",
        "https://b.example/copied-story",
    ]
    assert store.new_urls(["https://b.example/copied-story"]) == []
    # Fetched again, the copy is itself, not another copy.
    again = ingest_article(
        store, _item("https://b.example/copied-story", title="Syrian army presses ISIS"), SYRIA
    )
    assert again.outcome is Outcome.DUPLICATE
    assert store.count_articles() == 2


def test_word_for_word_copies_in_one_batch_all_join_the_first_ones_story(store: Store) -> None:
    index = StoryIndex(window=timedelta(days=7))
    batch = [
        (_item(f"https://{outlet}.example/story"), SYRIA)
        for outlet in ("alpha", "bravo", "charlie")
    ]
    batch.append((_item("https://alpha.example/story?page=1"), SYRIA))  # an alias, not a copy
    results = ingest_batch(store, batch, stories=index)
    assert [r.outcome for r in results] == [
        Outcome.NEW,
        Outcome.COPY,
        Outcome.COPY,
        Outcome.DUPLICATE,
    ]
    assert len({r.story_id for r in results}) == 1
    assert store.count_articles() == 3
    # Each copy carries its matches, so a digest can name its outlet.
    assert sorted(url for rule, url, _terms in store.matches()) == sorted(
        f"https://{outlet}.example/story" for outlet in ("alpha", "bravo", "charlie")
    )
    # The story index knows the copies: a near copy on a fourth site joins too.
    near = ingest_article(
        store,
        _item("https://delta.example/story", body=BODY + " The monitor said more."),
        SYRIA,
        stories=index,
    )
    assert near.outcome is Outcome.NEW
    assert near.story_id == results[0].story_id


def test_the_outlet_of_an_article_is_its_site() -> None:
    assert site_host("https://www.news.example/a") == site_host("https://m.news.example/b")
    assert site_host("https://news.example/a") != site_host("https://other.example/a")
    assert site_host("https://m.example/a") == "m.example"  # a site called m.example


def test_short_bodies_are_not_fingerprinted() -> None:
    assert content_fingerprint("Photo gallery") is None
    assert content_fingerprint(BODY) == content_fingerprint(BODY.upper().replace(",", " ,"))


@pytest.mark.parametrize(
    ("old", "new", "material"),
    [
        (("Headline", BODY), ("Headline", BODY + " "), False),
        (("Headline", BODY), ("Headline", BODY.replace("Tuesday", "Wednesday")), False),
        (("Headline", BODY), ("A new headline", BODY), True),
        (
            ("Headline", BODY),
            (
                "Headline",
                BODY
                + " "
                + BODY.replace("Syria", "Iraq").upper()
                + " Officials later said dozens of civilians had fled the town "
                "overnight, and aid groups warned of shortages.",
            ),
            True,
        ),
    ],
    ids=["whitespace", "one-word", "headline", "new-paragraph"],
)
def test_material_change(old: tuple[str, str], new: tuple[str, str], material: bool) -> None:
    assert is_material_change(*old, *new) is material


def test_a_changed_headline_is_a_revision_and_pending_again(store: Store) -> None:
    url = "https://news.example/world/palmyra.html"
    first = ingest_article(store, _item(url), SYRIA)
    pending = store.pending_items("a@example.com", ["syria"])
    store.mark_sent(store.create_delivery("a@example.com", pending, "x").id)  # type: ignore[union-attr]
    assert store.pending_items("a@example.com", ["syria"]) == []

    revised = ingest_article(store, _item(url, title="Army retakes Palmyra from ISIS"), SYRIA)
    assert revised.outcome is Outcome.REVISED
    assert revised.article_id == first.article_id
    assert store.revisions(first.article_id) == [(1, "Army pressures ISIS", BODY)]  # type: ignore[arg-type]
    (again,) = store.pending_items("a@example.com", ["syria"])
    assert again.is_update
    assert again.article.title == "Army retakes Palmyra from ISIS"


@pytest.mark.parametrize(
    ("policy", "resent"),
    [(ResendPolicy.HEADLINE, False), (ResendPolicy.ANY, True), (ResendPolicy.NEVER, False)],
)
def test_resend_policy_for_a_changed_body(store: Store, policy: ResendPolicy, resent: bool) -> None:
    url = "https://news.example/world/palmyra.html"
    ingest_article(store, _item(url), SYRIA, resend=policy)
    pending = store.pending_items("a@example.com", ["syria"])
    store.mark_sent(store.create_delivery("a@example.com", pending, "x").id)  # type: ignore[union-attr]
    rewritten = "Officials said the offensive stalled near the town. " * 8
    result = ingest_article(store, _item(url, body=rewritten), SYRIA, resend=policy)
    assert result.outcome is Outcome.REVISED
    assert bool(store.pending_items("a@example.com", ["syria"])) is resent


def test_a_rule_that_newly_matches_resends_by_default(store: Store) -> None:
    url = "https://news.example/world/palmyra.html"
    ingest_article(store, _item(url), SYRIA)
    pending = store.pending_items("a@example.com", ["syria", "iraq"])
    store.mark_sent(store.create_delivery("a@example.com", pending, "x").id)  # type: ignore[union-attr]
    extended = BODY + " Iraqi forces were reported to be massing on the border. " * 6
    ingest_article(store, _item(url, body=extended), [*SYRIA, RuleMatch("iraq", ("Iraqi",))])
    (item,) = store.pending_items("a@example.com", ["syria", "iraq"])
    assert {rule for rule, _ in item.rules} == {"syria", "iraq"}


def test_retention_purges_bodies_then_rows_but_keeps_keys(store: Store) -> None:
    url = "https://news.example/world/palmyra.html"
    ingest_article(store, _item(url), SYRIA)
    now = datetime.now(UTC)
    assert store.purge(
        bodies_before=now + timedelta(seconds=1), rows_before=now - timedelta(days=1)
    ) == (1, 0)
    (article,) = store.articles()
    assert article.body == ""
    assert store.new_urls([url]) == []  # the key stays: never comes back as new
    assert store.purge(
        bodies_before=now + timedelta(seconds=1), rows_before=now + timedelta(seconds=1)
    ) == (0, 1)
    assert store.count_articles() == 0


WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from alerts.rules import RuleMatch
    from crawler.orchestration.ingest import ingest_article
    from crawler.storage.store import Store
    from crawler.domain.items import ArticleItem, ExtractedArticle

    url, offset = sys.argv[1], int(sys.argv[2])
    store = Store.from_url(url)
    for n in list(range(offset, 1000)) + list(range(0, offset)):
        article = ExtractedArticle(
            url=f"https://news.example/a/{n}", title=f"Story {n}",
            text=f"Story number {n} " + "word " * 60 + f"end {n}",
            published=datetime(2024, 1, 1, tzinfo=UTC))
        ingest_article(store, ArticleItem("wire", article.url, article),
                       [RuleMatch("all", ("Story",))])
    store.close()
""")


@pytest.mark.slow
def test_four_processes_inserting_overlapping_articles_store_each_once(
    postgres_url: str,
) -> None:
    store = Store.from_url(postgres_url)
    store.upgrade()
    store.sync_sources([SourceConfig(name="wire", feed="https://news.example/rss.xml")])
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, postgres_url, str(offset)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for offset in (0, 250, 500, 750)
    ]
    errors = [writer.communicate(timeout=600)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0, 0], errors
    assert store.count_articles() == 1000
    assert len(store.matches()) == 1000
    store.close()


def test_a_story_index_follows_what_other_processes_store(store: Store) -> None:
    store.sync_sources(
        [
            SourceConfig(name="wire", feed="https://news.example/rss.xml"),
            SourceConfig(name="daily", feed="https://daily.example/rss.xml"),
        ]
    )
    now = datetime.now(UTC)

    def copy_of_the_wire(url: str, source: str, extra: str) -> ArticleItem:
        article = ExtractedArticle(
            url=url, title="Army pressures ISIS near Palmyra", text=f"{BODY} {extra}", published=now
        )
        return ArticleItem(source=source, fetched_url=url, article=article)

    # Two processes writing to one database, each with its own index.
    theirs, mine, unfollowed = StoryIndex(), StoryIndex(), StoryIndex()
    follow = StoryIndexFollower(store, mine)
    original = ingest_article(
        store,
        copy_of_the_wire("https://news.example/a", "wire", "The monitor gave no toll."),
        [],
        stories=theirs,
    )

    follow()  # what the service does before storing each batch
    copy = ingest_article(
        store,
        copy_of_the_wire(
            "https://daily.example/b", "daily", "Fighting went on overnight, AFP said."
        ),
        [],
        stories=mine,
    )
    assert copy.story_id == original.story_id
    assert len(mine) == 2

    # The same copy without following: a story of its own (what the follower prevents).
    alone = ingest_article(
        store,
        copy_of_the_wire(
            "https://daily.example/c", "daily", "Residents fled towards Homs, witnesses said."
        ),
        [],
        stories=unfollowed,
    )
    assert alone.story_id == alone.article_id != original.story_id
