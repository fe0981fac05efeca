"""The delivery ledger under random interleavings (hypothesis): digest runs and alert
runs overlapping in threads (a catch-up run, cron ticks, retries, a `newswatch digest`
beside the service), slow and failing servers, runs that die after the server took
the message, configuration reloads and restarts.

Whatever the order: no reader gets one message twice unless a run died between the
server's acceptance and the commit (the documented at-least-once gap, then with the
same Message-ID); no article reaches a reader in two different messages; nothing is
marked sent that the server did not take; and once the dust settles every match has
reached its readers.
"""

from __future__ import annotations

import itertools
import random
import shutil
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

import alerts.claims
from alerts.delivery import DeliveryError
from alerts.digest import send_pending_alerts, send_pending_digests
from alerts.rules import RuleMatch
from crawler.domain.config import Config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.orchestration.ingest import ingest_article
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from email.message import EmailMessage
    from pathlib import Path

READERS = ("ana@example.com", "raj@example.com")
RULES = ("syria", "energy", "breaking")
# A reload flips raj between these two rule sets.
RAJ_RULES = (["energy", "breaking"], ["energy", "syria", "breaking"])
EXAMPLES = max(20, settings.default.max_examples // 4)


def _config(raj_rules: list[str]) -> Config:
    return Config.model_validate(
        {
            "sources": [{"name": "wire", "feed": "https://wire.example/rss"}],
            "rules": [
                {"name": "syria", "keywords": ["Palmyra"]},
                {"name": "energy", "keywords": ["oil"]},
                {"name": "breaking", "keywords": ["earthquake"], "alert": "immediate"},
            ],
            "alerts": {"max_per_hour": 60},
            "recipients": [
                {"email": "ana@example.com"},
                {"email": "raj@example.com", "rules": raj_rules},
            ],
        }
    )


class _Died(BaseException):
    """The process died: the run stops where it is, nothing after runs."""


@dataclass
class _Server:
    """A mail server whose behaviour each step chooses; it records what it took."""

    mode: str = "ok"
    received: list[tuple[str, str]] = field(default_factory=list)  # (reader, Message-ID)
    died_after_accept: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311 - timing jitter

    def send(self, message: EmailMessage) -> None:
        with self.lock:
            pause = self.rng.random() * 0.02
        threading.Event().wait(pause if self.mode != "ok" else 0)
        if self.mode == "fail":
            raise DeliveryError("451 try later", temporary=True)
        with self.lock:
            self.received.append((str(message["To"]), str(message["Message-ID"])))
        if self.mode == "accept-then-die":
            with self.lock:
                self.died_after_accept[str(message["Message-ID"])] += 1
            raise _Died


def _restart_process() -> None:
    """What a restart with the same pid looks like to the claims: a new token."""
    alerts.claims._token = f"restart{next(_restarts)}"
    alerts.claims._process = None


_restarts = itertools.count()

RUNS = st.sampled_from(["digest:ana", "digest:raj", "digest:all", "alerts"])
STEPS = st.one_of(
    st.tuples(st.just("articles"), st.lists(st.sampled_from(RULES), min_size=1, max_size=4)),
    st.tuples(
        st.just("runs"),
        st.lists(RUNS, min_size=1, max_size=3),
        st.sampled_from(["ok", "slow", "fail", "accept-then-die"]),
    ),
    st.tuples(st.just("reload")),
    st.tuples(st.just("restart")),
)


@dataclass
class _World:
    url: str
    store: Store
    raj: int = 0
    articles: int = 0

    @property
    def config(self) -> Config:
        return _config(RAJ_RULES[self.raj])


def _add_articles(world: _World, rules: list[str]) -> None:
    words = {"syria": "Palmyra", "energy": "oil", "breaking": "earthquake"}
    for rule in rules:
        world.articles += 1
        number = world.articles
        url = f"https://wire.example/{number}"
        body = f"Story {number}: {words[rule]} news, " + " ".join(
            f"w{number}x{i}" for i in range(40)
        )
        article = ExtractedArticle(
            url=url, title=f"Story {number}", text=body, published=datetime.now(UTC)
        )
        ingest_article(
            world.store, ArticleItem("wire", url, article), [RuleMatch(rule, (words[rule],))]
        )


def _run(world: _World, server: _Server, which: str) -> None:
    config = world.config
    try:
        if which == "alerts":
            send_pending_alerts(world.store, config, server)
        else:
            reader = {"digest:ana": READERS[0], "digest:raj": READERS[1]}.get(which)
            chosen = [config.recipient(reader)] if reader else None
            send_pending_digests(world.store, config, server, recipients=chosen)
    except _Died:
        pass


def _overlapping_runs(world: _World, server: _Server, runs: list[str]) -> None:
    start = threading.Barrier(len(runs))

    def one(which: str) -> None:
        start.wait()
        _run(world, server, which)

    threads = [threading.Thread(target=one, args=(which,)) for which in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a digest run hung"


def _play(world: _World, steps: list[tuple[object, ...]]) -> _Server:
    server = _Server()
    for step in steps:
        if step[0] == "articles":
            _add_articles(world, step[1])  # type: ignore[arg-type]
        elif step[0] == "runs":
            server.mode = step[2]  # type: ignore[assignment]
            _overlapping_runs(world, server, step[1])  # type: ignore[arg-type]
        elif step[0] == "reload":
            world.raj = 1 - world.raj
        else:
            world.store.close()
            _restart_process()
            world.store = Store.from_url(world.url)
    # The dust settles: a restart, then a working server and one run of each kind.
    world.store.close()
    _restart_process()
    world.store = Store.from_url(world.url)
    server.mode = "ok"
    _run(world, server, "alerts")
    _run(world, server, "digest:all")
    return server


def _check(world: _World, server: _Server) -> None:
    deliveries = world.store.deliveries()
    by_id = {d.message_id: d for d in deliveries}
    times = Counter(server.received)
    for (reader, message_id), count in times.items():
        # Twice only where a run died after the server took it, and then the same message.
        assert count <= 1 + server.died_after_accept[message_id], (reader, message_id, count)
        assert by_id[message_id].recipient == reader
    for reader in READERS:
        mine = [d for d in deliveries if d.recipient == reader]
        articles = [a for d in mine for a in d.article_ids]
        assert len(articles) == len(set(articles)), f"{reader} got an article in two messages"
        assert all(d.sent_at is not None for d in mine), "a delivery was left unsent"
        received = {message_id for to, message_id in server.received if to == reader}
        assert {d.message_id for d in mine} == received, "marked sent but never received"
        rules = world.config.recipient(reader).rules
        assert world.store.pending_items(reader, rules) == [], f"{reader} still has matches"


@pytest.fixture(scope="module")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite database, copied for each example (migrating is slow)."""
    path = tmp_path_factory.mktemp("ledger") / "template.db"
    store = Store.from_url(f"sqlite:///{path}")
    store.upgrade()
    store.sync_sources(_config(RAJ_RULES[0]).sources)
    store.close()
    return path


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the module, emptied for each example."""
    from conftest import fresh_postgres_database

    with fresh_postgres_database() as url:
        store = Store.from_url(url)
        store.upgrade()
        store.sync_sources(_config(RAJ_RULES[0]).sources)
        store.close()
        yield url


@settings(max_examples=EXAMPLES)
@given(steps=st.lists(STEPS, min_size=1, max_size=12))
def test_overlapping_runs_restarts_and_reloads_send_each_article_once_sqlite(
    template_database: Path,
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[object, ...]],
) -> None:
    path = tmp_path_factory.mktemp("example") / "newswatch.db"
    shutil.copy(template_database, path)
    world = _World(f"sqlite:///{path}", Store.from_url(f"sqlite:///{path}"))
    try:
        _check(world, _play(world, steps))
    finally:
        world.store.close()


@settings(max_examples=max(10, EXAMPLES // 3))
@given(steps=st.lists(STEPS, min_size=1, max_size=12))
def test_overlapping_runs_restarts_and_reloads_send_each_article_once_postgresql(
    postgres_database: str,
    steps: list[tuple[object, ...]],
) -> None:
    store = Store.from_url(postgres_database)
    with store.engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE delivery_items, deliveries, matches, article_aliases, "
                "article_revisions, articles RESTART IDENTITY CASCADE"
            )
        )
    world = _World(postgres_database, store)
    try:
        _check(world, _play(world, steps))
    finally:
        world.store.close()
