"""Private Atom feeds (channel kind ``feed``): the ledger of a (recipient, feed)
served by the web UI at a URL whose token is its credential, one entry per story,
answering conditional GETs; over real HTTP on loopback with ``newswatch run``, and
the pieces in-process on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import feedparser
import pytest
from conftest import run_newswatch, site_config, write_config
from test_web import running_service

from alerts.atom import read_feed
from alerts.delivery import OutboxDelivery
from alerts.digest import send_pending_digests
from alerts.feed_channel import feed_addresses, feed_url, find_feed
from alerts.rules import RuleMatch
from crawler.domain.config import Config, ConfigError, parse_config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.domain.stories import StoryIndex
from crawler.orchestration.ingest import Outcome, ingest_article
from crawler.storage.store import LINK_SIGNING_KEY, Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from newssite import NewsSite

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
BODY = (
    "Floods closed the port on Tuesday after three days of rain, the port authority said. "
    "Ships were turned away and the coast road was shut while crews cleared the water "
    "from the docks, the warehouses and the fish market near the old lighthouse."
)
QUAKE_BODY = "An earthquake of magnitude 5.1 shook the valley at dawn; no one was hurt."
# Markup, an ampersand, a bell and a vertical tab (neither allowed in XML 1.0):
# escaped or dropped, never a broken feed.
HOSTILE = 'Floods <script>alert("x")</script> & more\x07 at\x0b sea'
SETTINGS = {
    "sources": [{"name": "wire", "feed": "https://wire.example/rss", "enabled": False}],
    "rules": [
        {"name": "floods", "keywords": ["floods"]},
        {"name": "quakes", "keywords": ["earthquake"]},
    ],
    "digest": {"sender": "news@example.org"},
    "channels": [{"name": "reader", "kind": "feed", "title": "Ana's news", "entries": 50}],
    "recipients": [{"email": "ana@example.com", "channels": ["reader"]}],
}


def _ingest(
    store: Store,
    url: str,
    title: str,
    body: str = BODY,
    rule: str = "floods",
    term: str = "floods",
    source: str = "wire",
    stories: StoryIndex | None = None,
) -> int:
    article = ExtractedArticle(url=url, title=title, text=body, published=NOW)
    result = ingest_article(
        store, ArticleItem(source, url, article), [RuleMatch(rule, (term,))], stories=stories
    )
    assert result.article_id is not None
    return result.article_id


# -- the pieces, in-process --------------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    sources = [
        {"name": "wire", "feed": "https://wire.example/rss"},
        {"name": "coast", "feed": "https://coast.example/rss"},
    ]
    store.sync_sources(Config.model_validate({"sources": sources}).sources)
    yield store
    store.close()


def test_the_service_key_is_made_once_and_kept(store: Store, database_url: str) -> None:
    keys: list[bytes] = []

    def ask() -> None:
        other = Store.from_url(database_url)
        try:
            keys.append(other.service_key("race"))
        finally:
            other.close()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1  # of four processes making it at once, one key
    assert store.service_key("race") == keys[0]
    assert len(keys[0]) == 32
    assert store.service_key(LINK_SIGNING_KEY) == store.service_key(LINK_SIGNING_KEY) != keys[0]


def _feed(store: Store, config: Config, rule: str | None = None) -> feedparser.FeedParserDict:
    key = store.service_key(LINK_SIGNING_KEY)
    (address,) = feed_addresses(config, key)
    rendered = read_feed(store, config, address, feed_url(config, address.token, rule), rule)
    parsed = feedparser.parse(rendered.body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def test_a_feed_is_the_ledger_one_entry_per_story(store: Store, tmp_path: Path) -> None:
    config = Config.model_validate(SETTINGS)
    index = StoryIndex()
    wire = _ingest(store, "https://wire.example/1", "Floods close the port", stories=index)
    coast = _ingest(
        store,
        "https://coast.example/1",
        "Floods close the port, officials say",
        body=BODY.replace("Tuesday", "Tuesday morning"),
        source="coast",
        stories=index,
    )
    quake = _ingest(store, "https://wire.example/2", "Valley shaken", QUAKE_BODY, "quakes",
                    "earthquake")  # fmt: skip
    feed = _feed(store, config)

    # Reading the feed delivered what was pending, through the ledger: sent, once.
    (delivery,) = store.deliveries()
    assert (delivery.channel, delivery.sent_at is not None) == ("reader", True)
    assert set(delivery.article_ids) == {wire, coast, quake}
    assert feed.feed.title == "Ana's news"
    by_link = {entry.link: entry for entry in feed.entries}
    assert set(by_link) == {"https://wire.example/1", "https://wire.example/2"}  # 2 stories
    floods = by_link["https://wire.example/1"]
    assert "Also reported by: coast" in floods.content[0].value
    assert "Matched: floods" in floods.content[0].value
    assert [tag.term for tag in floods.tags] == ["floods"]
    assert floods.author == "wire"
    assert floods.published_parsed[:5] == NOW.timetuple()[:5]
    assert floods.id.startswith("tag:example.org,2026:newswatch:story:")

    # A digest run now has nothing left for the feed; the feed reads the same.
    assert send_pending_digests(store, config, OutboxDelivery(tmp_path), NOW).sent == {}
    again = _feed(store, config)
    assert [e.id for e in again.entries] == [e.id for e in feed.entries]
    assert [e.updated for e in again.entries] == [e.updated for e in feed.entries]

    # One rule's feed: that rule's stories only.
    (only,) = _feed(store, config, "quakes").entries
    assert only.link == "https://wire.example/2"
    assert [tag.term for tag in only.tags] == ["quakes"]


def test_a_revision_moves_the_entry_updated_and_keeps_its_id(store: Store) -> None:
    config = Config.model_validate(SETTINGS)
    _ingest(store, "https://wire.example/1", "Floods close the port")
    _ingest(store, "https://wire.example/3", "Floods reach the town", BODY.replace("port", "town"))
    first = {entry.link: entry for entry in _feed(store, config).entries}
    revised = ingest_article(
        store,
        ArticleItem("wire", "https://wire.example/1", ExtractedArticle(
            url="https://wire.example/1", title="Floods shut the port for a week", text=BODY,
            published=NOW)),
        [RuleMatch("floods", ("floods",))],
    )  # fmt: skip
    assert revised.outcome is Outcome.REVISED
    after = {entry.link: entry for entry in _feed(store, config).entries}
    moved, kept = after["https://wire.example/1"], after["https://wire.example/3"]
    assert moved.id == first["https://wire.example/1"].id
    assert moved.title == "Floods shut the port for a week"
    was = datetime.fromisoformat(first["https://wire.example/1"].updated)
    assert datetime.fromisoformat(moved.updated) > was
    assert "the story changed since first sent" in moved.content[0].value
    assert (kept.id, kept.updated) == (
        first["https://wire.example/3"].id,
        first["https://wire.example/3"].updated,
    )


def test_a_feed_read_and_a_digest_run_at_once_deliver_each_item_once(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    config = Config.model_validate(SETTINGS)
    for n in range(20):
        _ingest(store, f"https://wire.example/{n}", f"Floods, day {n}", f"{BODY} Day {n}.")
    errors: list[BaseException] = []
    outbox = tmp_path / "outbox"

    def digest() -> None:
        other = Store.from_url(database_url)
        try:
            send_pending_digests(other, config, OutboxDelivery(outbox), NOW)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            other.close()

    def read() -> None:
        try:
            _feed(store, config)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=job) for job in (digest, read, read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    delivered = [a for d in store.deliveries() for a in d.article_ids]
    assert len(delivered) == len(set(delivered)) == 20
    assert len(_feed(store, config).entries) == 20


def test_hostile_text_is_escaped_and_the_feed_parses(store: Store) -> None:
    config = Config.model_validate(SETTINGS)
    _ingest(store, "https://wire.example/h", HOSTILE, BODY + " \x01\x1b[31m\ufffe end")
    key = store.service_key(LINK_SIGNING_KEY)
    (address,) = feed_addresses(config, key)
    body = read_feed(store, config, address, feed_url(config, address.token)).body
    assert b"<script>" not in body
    assert b"&lt;script&gt;" in body
    assert b"&amp; more" in body
    (entry,) = feedparser.parse(body).entries
    assert entry.title == 'Floods <script>alert("x")</script> & more at sea'


def test_tokens_are_per_channel_and_recipient_and_found_only_when_exact() -> None:
    config = Config.model_validate(
        {
            **SETTINGS,
            "channels": [{"name": "reader", "kind": "feed"}, {"name": "other", "kind": "feed"}],
            "recipients": [
                {"email": "ana@example.com", "channels": ["reader", "other"]},
                {"email": "bo@example.com", "channels": ["reader"]},
            ],
        }
    )
    key = b"k" * 32
    addresses = feed_addresses(config, key)
    tokens = [address.token for address in addresses]
    assert len(addresses) == 3
    assert len(set(tokens)) == 3
    assert all(len(token) == 64 and "example" not in token for token in tokens)
    for address in addresses:
        assert find_feed(config, key, address.token) == address
    assert find_feed(config, key, tokens[0][:-1]) is None
    assert find_feed(config, key, tokens[0].upper()) is None
    assert find_feed(config, b"x" * 32, tokens[0]) is None  # another key, another URL


@pytest.mark.parametrize(
    ("channel", "problem"),
    [
        ({"kind": "feed", "url": "https://x.example/"}, "a feed channel takes no url"),
        ({"kind": "feed", "secret_env": "S"}, "a feed channel takes no secret_env"),
        ({"kind": "feed", "entries": 0}, "entries"),
        (
            {"kind": "webhook", "url": "https://x.example/", "secret_env": "S", "entries": 5},
            "only a feed channel takes them",
        ),
    ],
    ids=["url", "secret", "no-entries", "entries-on-webhook"],
)
def test_feed_settings_are_checked(
    tmp_path: Path, channel: dict[str, object], problem: str
) -> None:
    path = write_config(tmp_path, **{**SETTINGS, "channels": [{"name": "reader", **channel}]})
    with pytest.raises(ConfigError) as raised:
        parse_config(path.read_text(), path)
    assert problem in str(raised.value)
    assert "channels[0]" in str(raised.value)


def test_a_feed_needs_the_web_ui(tmp_path: Path) -> None:
    path = write_config(tmp_path, **SETTINGS, web={"enabled": False})
    with pytest.raises(ConfigError) as raised:
        parse_config(path.read_text(), path)
    assert "channels[0].kind (line" in str(raised.value)
    assert "web.enabled is false" in str(raised.value)


def test_channels_feeds_says_when_the_urls_use_the_bind_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEED_TEST_WEB_TOKEN", "web-token-0123456789")
    database = f"sqlite:///{tmp_path / 'nw.db'}"
    web = {"host": "0.0.0.0", "token_env": "FEED_TEST_WEB_TOKEN"}  # noqa: S104 (as users write it)
    bound = write_config(tmp_path, **SETTINGS, database=database, web=web)
    listed = run_newswatch(bound, "channels", "feeds")
    assert listed.returncode == 0, listed.stderr
    assert "http://0.0.0.0:8787/feeds/" in listed.stdout
    assert "web.public_url is not set" in listed.stdout

    public = write_config(
        tmp_path, **SETTINGS, database=database, web={"public_url": "https://news.example/"}
    )
    listed = run_newswatch(public, "channels", "feeds")
    assert listed.returncode == 0, listed.stderr
    assert "  https://news.example/feeds/" in listed.stdout
    assert "web.public_url" not in listed.stdout


# -- the running service -----------------------------------------------------------


@pytest.mark.slow
def test_a_feed_reader_gets_the_ledger_with_conditional_gets(
    news_site: NewsSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEED_TEST_WEB_TOKEN", "web-token-0123456789")
    settings = site_config(
        news_site,
        tmp_path,
        **SETTINGS,
        web={"port": 0, "token_env": "FEED_TEST_WEB_TOKEN"},
    )
    config_path = write_config(tmp_path, **settings)
    config = Config.model_validate(settings)

    # The CLI lists the URL (and makes the key the service will use).
    listed = run_newswatch(config_path, "channels", "feeds")
    assert listed.returncode == 0, listed.stderr
    urls = [word for word in listed.stdout.split() if "/feeds/" in word]
    whole = urlsplit(urls[0]).path
    assert any(url.endswith("?rule=quakes") for url in urls)
    tested = run_newswatch(config_path, "channels", "test", "reader")
    assert tested.returncode == 0, tested.stderr
    assert "nothing to send" in tested.stdout
    assert whole in tested.stdout

    store = Store.from_url(settings["database"])
    store.upgrade()
    store.sync_sources(config.sources)
    try:
        with running_service(config_path) as web:
            assert web.get("/").status == 401  # the pages want the web token; the feed not
            _ingest(store, "https://wire.example/1", HOSTILE)
            _ingest(store, "https://wire.example/2", "Valley shaken", QUAKE_BODY, "quakes",
                    "earthquake")  # fmt: skip
            first = web.get(whole)
            assert first.status == 200, first.body
            assert first.headers["content-type"].startswith("application/atom+xml")
            assert first.headers["cache-control"] == "private, no-cache"
            feed = feedparser.parse(first.body.encode())
            assert feed.bozo == 0
            ledger = {a for d in store.deliveries() if d.sent_at for a in d.article_ids}
            assert len(ledger) == 2
            assert {e.link for e in feed.entries} == {
                "https://wire.example/1",
                "https://wire.example/2",
            }
            assert 'Floods <script>alert("x")</script> & more at sea' in {
                e.title for e in feed.entries
            }

            etag, modified = first.headers["etag"], first.headers["last-modified"]
            assert etag.startswith('"')
            second = web.get(whole)
            assert (second.body, second.headers["etag"]) == (first.body, etag)
            for headers in (
                {"If-None-Match": etag},
                {"If-None-Match": f'"other", W/{etag}'},
                {"If-Modified-Since": modified},
            ):
                cached = web.request(whole, headers=headers)
                assert (cached.status, cached.body) == (304, ""), headers
                assert cached.headers["etag"] == etag
            later = format_datetime(datetime.now(UTC) - timedelta(days=400), usegmt=True)
            assert web.request(whole, headers={"If-Modified-Since": later}).status == 200
            assert web.request(whole, headers={"If-None-Match": '"other"'}).status == 200

            (quake,) = feedparser.parse(web.get(f"{whole}?rule=quakes").body.encode()).entries
            assert quake.link == "https://wire.example/2"
            assert web.get(f"{whole}?rule=nonesuch").status == 404

            token = whole.rsplit("/", 1)[1]
            for wrong in (token[:-1] + ("0" if token[-1] != "0" else "1"), "x", token[:32]):
                refused = web.get(f"/feeds/{wrong}")
                assert refused.status == 404
                assert "Valley" not in refused.body
                assert "wire.example" not in refused.body
                assert "<feed" not in refused.body

            # Something new: the next GET has it and a new ETag; the old one is stale.
            _ingest(store, "https://wire.example/3", "Floods reach the town", f"{BODY} Town.")
            fresh = web.request(whole, headers={"If-None-Match": etag})
            assert fresh.status == 200
            assert fresh.headers["etag"] != etag
            assert len(feedparser.parse(fresh.body.encode()).entries) == 3
    finally:
        store.close()
