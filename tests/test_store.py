"""Storage on real SQLite and real PostgreSQL: schema from migrations, dedup, exactly-once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from alerts.rules import RuleMatch
from crawler.domain.config import SourceConfig
from crawler.domain.items import ExtractedArticle
from crawler.storage.models import Base
from crawler.storage.store import MIGRATIONS, SCHEMA_REVISION, ArticleRecord, Store, make_message_id

IST = timezone(timedelta(hours=5, minutes=30))


def _save(store: Store, article: ExtractedArticle, matches: list[RuleMatch]) -> int | None:
    return store.insert_article(ArticleRecord("wire", article), matches)


def _article(n: int, **changes: object) -> ExtractedArticle:
    values: dict[str, object] = {
        "url": f"https://news.example/articles/{n}.html",
        "title": f"Story {n}",
        "text": f"Body of story {n}.",
        "published": datetime(2016, 3, 30, 7, 16, tzinfo=IST),
        "authors": ("AFP",),
        "language": "en",
    }
    values.update(changes)
    return ExtractedArticle(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(database_url: str) -> Store:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources([SourceConfig(name="wire", feed="https://news.example/rss.xml")])
    yield store
    store.close()


def test_schema_comes_from_the_migrations(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "sources",
        "articles",
        "matches",
        "deliveries",
        "delivery_items",
        "alembic_version",
    } <= tables
    store.upgrade()  # running it again is harmless
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head == SCHEMA_REVISION  # what upgrade() compares with to skip Alembic
    assert store.schema_revision() == head
    with store.engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == head
        # The models describe exactly the tables the migrations made.
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                # The full-text index is the database's own machinery, not a model.
                "include_name": lambda name, kind, _parent: (
                    not (
                        (kind == "table" and (name or "").startswith("articles_fts"))
                        or (kind == "index" and name == "ix_articles_search")
                    )
                ),
            },
        )
        assert compare_metadata(context, Base.metadata) == []


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", MIGRATIONS)
    return config


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path}/wal.db")
    with store.engine.connect() as connection:
        assert connection.scalar(text("PRAGMA journal_mode")) == "wal"
    store.close()


def test_an_article_is_stored_once_by_canonical_url(store: Store) -> None:
    first = _save(store, _article(1), [RuleMatch("syria", ("ISIS",))])
    again = _save(store, _article(1, title="Another headline"), [RuleMatch("other", ("x",))])
    assert first is not None
    assert again is None
    (stored,) = store.articles()
    assert stored.title == "Story 1"
    assert stored.source == "wire"
    assert store.matches() == [("syria", _article(1).url, ("ISIS",))]


def test_publish_time_is_stored_in_utc(store: Store) -> None:
    _save(store, _article(1), [])
    (stored,) = store.articles()
    assert stored.published == datetime(2016, 3, 30, 1, 46, tzinfo=UTC)
    assert stored.published.tzinfo == UTC


def test_new_urls_keeps_order_and_drops_stored_ones(store: Store) -> None:
    _save(store, _article(2), [])
    urls = [_article(n).url for n in (3, 2, 1, 3)]
    assert store.new_urls(urls) == [_article(3).url, _article(1).url]


def test_pending_items_and_delivery_claims(store: Store) -> None:
    ids = [_save(store, _article(n), [RuleMatch("syria", ("ISIS",))]) for n in (1, 2)]
    _save(store, _article(3), [RuleMatch("retired-rule", ("x",))])
    pending = store.pending_items("a@example.com", ["syria"])
    assert [item.article.id for item in pending] == ids
    assert pending[0].rules == (("syria", ("ISIS",)),)

    record = store.create_delivery("a@example.com", pending, "example.com")
    assert record is not None
    assert record.message_id == make_message_id(
        "a@example.com", [(i, 1) for i in ids], "example.com"
    )
    # Items are claimed: a second delivery of the same articles cannot be made.
    assert store.create_delivery("a@example.com", pending[:1], "example.com") is None
    assert store.pending_items("a@example.com", ["syria"]) == []
    # Another recipient has its own claim on the same articles.
    assert len(store.pending_items("b@example.com", ["syria"])) == 2

    assert [d.id for d in store.unsent_deliveries("a@example.com")] == [record.id]
    store.record_send_failure(record.id, "451 try later")
    store.mark_sent(record.id)
    assert store.unsent_deliveries("a@example.com") == []
    (sent,) = store.deliveries()
    assert sent.sent_at is not None
    assert sent.attempts == 2


def test_poll_state_counts_failures_and_resets_on_success(store: Store) -> None:
    store.record_poll("wire", error="HTTP 500")
    store.record_poll("wire", error="HTTP 500")
    state = store.source_state("wire")
    assert (state.consecutive_failures, state.last_error) == (2, "HTTP 500")
    store.record_poll("wire", error=None)
    state = store.source_state("wire")
    assert (state.consecutive_failures, state.last_error) == (0, None)
    assert state.last_success_at is not None


def test_the_polls_planned_since_a_moment_are_those_of_the_sources_polled_since(
    store: Store,
) -> None:
    store.sync_sources(
        [
            SourceConfig(name="wire", feed="https://news.example/rss.xml"),
            SourceConfig(name="blog", feed="https://blog.example/rss.xml"),
            SourceConfig(name="new", feed="https://new.example/rss.xml"),
        ]
    )
    before = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    store.record_poll("blog", error=None, at=before)
    store.record_next_poll("blog", before + timedelta(hours=6), timedelta(hours=6), "adaptive")
    since = before + timedelta(minutes=1)
    store.record_poll("wire", error="HTTP 503", at=since + timedelta(seconds=5))
    at = since + timedelta(minutes=30)
    store.record_next_poll("wire", at, timedelta(minutes=30), "backoff: Retry-After 30m")
    store.record_poll("new", error=None, at=since)  # polled, no next poll recorded yet

    assert store.polls_planned_since(since) == [("wire", at, timedelta(minutes=30))]
    assert sorted(store.polls_planned_since(None)) == [
        ("blog", before + timedelta(hours=6), timedelta(hours=6)),
        ("wire", at, timedelta(minutes=30)),
    ]


def test_concurrent_writers_store_each_article_once(store: Store) -> None:
    def save_all(offset: int) -> int:
        return sum(
            _save(store, _article(n), [RuleMatch("syria", ("ISIS",))]) is not None
            for n in range(offset, offset + 60)
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        inserted = sum(pool.map(save_all, [0, 20, 40, 0]))
    assert inserted == 100
    assert store.count_articles() == 100
    assert len(store.matches()) == 100


def test_each_channel_keeps_its_own_ledger(store: Store) -> None:
    """An article sent by email is still due on a webhook, and the reverse; a
    channel's delivery claims its items on that channel only."""
    ids = [_save(store, _article(n), [RuleMatch("syria", ("ISIS",))]) for n in (1, 2)]
    by_email = store.create_delivery(
        "a@example.com", store.pending_items("a@example.com", ["syria"]), "example.com"
    )
    assert by_email is not None
    assert by_email.channel == "email"
    assert store.pending_items("a@example.com", ["syria"]) == []
    due_on_hook = store.pending_items("a@example.com", ["syria"], channel="team-hook")
    assert [item.article.id for item in due_on_hook] == ids

    on_hook = store.create_delivery(
        "a@example.com", due_on_hook[:1], "example.com", channel="team-hook"
    )
    assert on_hook is not None
    assert on_hook.channel == "team-hook"
    assert on_hook.message_id != make_message_id("a@example.com", [(ids[0], 1)], "example.com")
    assert on_hook.message_id == make_message_id(
        "a@example.com", [(ids[0], 1)], "example.com", "team-hook"
    )
    # The same item twice on one channel: refused; on a third channel: its own.
    assert (
        store.create_delivery("a@example.com", due_on_hook[:1], "example.com", channel="team-hook")
        is None
    )
    assert len(store.pending_items("a@example.com", ["syria"], channel="chat")) == 2
    assert [
        item.article.id
        for item in store.pending_items("a@example.com", ["syria"], channel="team-hook")
    ] == ids[1:]

    assert [d.id for d in store.unsent_deliveries("a@example.com")] == [by_email.id]
    assert [d.id for d in store.unsent_deliveries("a@example.com", "team-hook")] == [on_hook.id]
    store.mark_sent(on_hook.id)
    assert store.count_sent("a@example.com", "digest", datetime(2000, 1, 1, tzinfo=UTC))[0] == 0
    assert (
        store.count_sent("a@example.com", "digest", datetime(2000, 1, 1, tzinfo=UTC), "team-hook")[
            0
        ]
        == 1
    )
    history = {row["id"]: row["channel"] for row in store.delivery_history()}
    assert history == {by_email.id: "email", on_hook.id: "team-hook"}


def test_deliveries_made_before_channels_stay_email_deliveries(store: Store) -> None:
    """Upgrading an install with a ledger (0008, no channels): what was sent stays
    sent, by email, and nothing is due again."""
    _save(store, _article(1), [RuleMatch("syria", ("ISIS",))])
    record = store.create_delivery(
        "a@example.com", store.pending_items("a@example.com", ["syria"]), "example.com"
    )
    assert record is not None
    store.mark_sent(record.id)
    with store.engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    with store.engine.connect() as connection:
        assert "channel" not in {
            c["name"] for c in inspect(connection).get_columns("delivery_items")
        }
        assert connection.scalar(text("SELECT count(*) FROM delivery_items")) == 1
    store.upgrade()
    assert store.pending_items("a@example.com", ["syria"]) == []
    (kept,) = store.deliveries()
    assert (kept.id, kept.channel, kept.message_id) == (record.id, "email", record.message_id)
    assert kept.sent_at is not None
    assert len(store.pending_items("a@example.com", ["syria"], channel="team-hook")) == 1


# What points at what: articles.source_id at sources (ON DELETE SET NULL), matches and
# delivery_items at articles, delivery_items at deliveries (ON DELETE CASCADE).
_LINKED_ROWS = {
    "articles": "SELECT id, source_id FROM articles ORDER BY id",
    "matches": "SELECT article_id, rule FROM matches ORDER BY article_id, rule",
    "delivery_items": "SELECT delivery_id, article_id FROM delivery_items ORDER BY id",
}


def _linked_rows(store: Store) -> dict[str, list[tuple[object, ...]]]:
    with store.engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.execute(text(query))]
            for table, query in _LINKED_ROWS.items()
        }


@pytest.mark.parametrize(
    ("revision", "dropped"),
    [
        pytest.param("0015", ("sources", "next_poll_at"), id="adaptive-polling"),
        pytest.param("0007", ("deliveries", "claimed_by"), id="delivery-claims"),
        pytest.param("0003", ("deliveries", "kind"), id="delivery-kind"),
    ],
)
def test_a_downgrade_keeps_every_row_that_points_at_a_changed_table(
    store: Store, revision: str, dropped: tuple[str, str]
) -> None:
    """A downgrade drops its columns and nothing else: every article still names its
    source, every match and delivered item is still there (a rebuilt ``sources`` or
    ``deliveries`` table, dropped on SQLite with foreign keys on, would set every
    articles.source_id to NULL or delete every delivery item with it)."""
    for n in (1, 2):
        _save(store, _article(n), [RuleMatch("syria", ("ISIS",))])
    assert store.create_delivery(
        "a@example.com", store.pending_items("a@example.com", ["syria"]), "example.com"
    )
    before = _linked_rows(store)
    assert all(len(rows) == 2 for rows in before.values())
    assert all(source_id is not None for _id, source_id in before["articles"])
    with store.engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    table, column = dropped
    with store.engine.connect() as connection:
        assert column not in {c["name"] for c in inspect(connection).get_columns(table)}
    assert _linked_rows(store) == before
    store.upgrade()
    assert store.schema_revision() == SCHEMA_REVISION
    assert _linked_rows(store) == before
