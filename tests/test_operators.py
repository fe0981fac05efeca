"""Operators are told of sources in trouble (alerts/operators.py): once per change
of state, by email and on a webhook channel, with the reason and the evidence; a
source flapping ten times in an hour sends at most two messages; a recovery once."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from receivers import Receiver

from alerts.channel_sending import make_channels
from alerts.delivery import OutboxDelivery
from alerts.operators import tell_operators
from crawler.domain.config import Config
from crawler.domain.health import Health, State
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

NOW = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
OK = Health(State.OK, "ok")
BLOCKED = Health(
    State.BLOCKED,
    "refused by the site (HTTP 403) 2 polls in a row",
    {"polls": 2, "statuses": [403], "url": "https://world.example/rss"},
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSWATCH_TEST_OPS_SECRET", "s3cret-for-the-ops-room")


def _config(receiver: Receiver, **operators: Any) -> Config:
    return Config.model_validate(
        {
            "sources": [
                {"name": "world", "feed": "https://world.example/rss"},
                {"name": "tech", "feed": "https://tech.example/rss"},
            ],
            "digest": {"sender": "newswatch@example.org"},
            "channels": [
                {
                    "name": "ops-room",
                    "kind": "webhook",
                    "url": receiver.url(),
                    "secret_env": "NEWSWATCH_TEST_OPS_SECRET",
                }
            ],
            "operators": {"recipients": ["ops@example.org"], "channels": ["ops-room"], **operators},
        }
    )


def _emails(outbox: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for path in sorted(outbox.glob("*.eml"))
    ]


def _tell(store: Store, config: Config, outbox: Path, now: datetime) -> int:
    return len(tell_operators(store, config, OutboxDelivery(outbox), make_channels(config), now))


def test_operators_hear_once_when_a_source_goes_bad_and_once_when_it_recovers(
    store: Store, receiver: Receiver, tmp_path: Path
) -> None:
    config = _config(receiver)
    outbox = tmp_path / "outbox"
    store.save_health("world", Health(OK.state, OK.reason, since=NOW), NOW)
    store.save_health("tech", Health(OK.state, OK.reason, since=NOW), NOW)
    assert _tell(store, config, outbox, NOW) == 0  # all well: nothing to say

    bad_at = NOW + timedelta(minutes=30)
    store.save_health("world", Health(**{**BLOCKED.__dict__, "since": bad_at}), bad_at)
    assert _tell(store, config, outbox, bad_at) == 1
    (message,) = _emails(outbox)
    assert message["To"] == "ops@example.org"
    assert message["Subject"] == "newswatch: 1 source in trouble"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_content()
    assert "world is blocked" in text
    assert "refused by the site (HTTP 403) 2 polls in a row since 2024-03-05 09:30 UTC" in text
    assert "statuses: [403]" in text
    assert "url: https://world.example/rss" in text
    ((_path, headers, body),) = receiver.requests
    payload = json.loads(body)
    assert payload["kind"] == "health"
    assert payload["subject"] == "newswatch: 1 source in trouble"
    (entry,) = payload["sections"][0]["entries"]
    assert entry["title"] == "world is blocked"
    assert entry["url"] == "https://world.example/rss"
    assert headers["Newswatch-Signature"].startswith("t=")  # signed like every delivery

    # Still blocked, hours later: nothing new to say.
    for hours in (1, 2, 5):
        later = bad_at + timedelta(hours=hours)
        store.save_health("world", Health(**{**BLOCKED.__dict__, "since": bad_at}), later)
        assert _tell(store, config, outbox, later) == 0
    fine_at = bad_at + timedelta(hours=6)
    store.save_health("world", Health(OK.state, OK.reason, since=fine_at), fine_at)
    assert _tell(store, config, outbox, fine_at) == 1
    assert _emails(outbox)[-1]["Subject"] == "newswatch: 1 recovered"
    assert "world recovered: ok again (was blocked)" in _emails(outbox)[-1].get_content()
    assert len(_emails(outbox)) == len(receiver.requests) == 2


def test_a_source_flapping_ten_times_in_an_hour_sends_at_most_two_messages(
    store: Store, receiver: Receiver, tmp_path: Path
) -> None:
    config = _config(receiver)  # operators.min_gap: 1 hour
    outbox = tmp_path / "outbox"
    sent = 0
    now = NOW
    for flip in range(10):  # a state change every six minutes, checked each time
        now = NOW + timedelta(minutes=6 * flip)
        store.save_health("world", BLOCKED if flip % 2 == 0 else OK, now)
        sent += _tell(store, config, outbox, now)
    assert sent == 1  # the first change, at once
    # The next check after the gap sums the hour up: back to ok after 9 changes.
    sent += _tell(store, config, outbox, NOW + timedelta(minutes=61))
    assert sent == len(_emails(outbox)) == len(receiver.requests) == 2
    summary = _emails(outbox)[-1].get_content()
    assert "world changed state" in summary or "world recovered" in summary
    assert _tell(store, config, outbox, NOW + timedelta(hours=3)) == 0


def test_a_source_with_tell_operators_false_is_shown_but_not_told(
    store: Store, receiver: Receiver, tmp_path: Path
) -> None:
    config = _config(receiver)
    silent = config.model_copy(
        update={
            "sources": [
                config.sources[0].model_copy(update={"tell_operators": False}),
                config.sources[1],
            ]
        }
    )
    store.save_health("world", BLOCKED, NOW)
    assert _tell(store, silent, tmp_path / "outbox", NOW) == 0
    assert receiver.requests == []
    assert store.all_health()["world"].state is State.BLOCKED  # still kept and shown
    assert _tell(store, config, tmp_path / "outbox", NOW) == 1  # told once it is allowed


def test_operators_configured_later_hear_of_no_old_flapping(
    store: Store, receiver: Receiver, tmp_path: Path
) -> None:
    for flip in range(6):  # changes nobody was told of, before operators existed
        store.save_health("world", BLOCKED if flip % 2 == 0 else OK, NOW + timedelta(minutes=flip))
    config = _config(receiver)
    assert _tell(store, config, tmp_path / "outbox", NOW + timedelta(hours=1)) == 0  # ok now
    assert receiver.requests == []


def test_operators_name_known_channels_that_are_not_feeds() -> None:
    with pytest.raises(ValueError, match=r"operators\.channels: no channel is named 'room'"):
        Config.model_validate({"operators": {"channels": ["room"]}})
    with pytest.raises(ValueError, match="is a feed"):
        Config.model_validate(
            {"channels": [{"name": "r", "kind": "feed"}], "operators": {"channels": ["r"]}}
        )


def test_the_digest_ends_with_the_sources_in_trouble_until_they_recover(
    store: Store, tmp_path: Path
) -> None:
    from alerts.digest import send_pending_digests
    from alerts.rules import RuleMatch
    from crawler.domain.items import ArticleItem, ExtractedArticle
    from crawler.orchestration.ingest import ingest_article

    config = Config.model_validate(
        {
            "sources": [
                {"name": "world", "feed": "https://world.example/rss", "enabled": False},
                {"name": "tech", "feed": "https://tech.example/rss"},
            ],
            "rules": [{"name": "floods", "keywords": ["floods"]}],
            "digest": {"sender": "newswatch@example.org"},
            "recipients": [
                {"email": "ana@example.com"},
                {"email": "bob@example.com", "sources_in_trouble": False},
            ],
        }
    )
    store.sync_sources(config.sources)

    def ingest(n: int) -> None:
        url = f"https://tech.example/{n}"
        article = ExtractedArticle(
            url=url, title=f"Floods close the port ({n})", text=f"Floods, day {n}.", published=NOW
        )
        ingest_article(store, ArticleItem("tech", url, article), [RuleMatch("floods", ("floods",))])

    tech = Health(State.FAILING, "3 failed polls in a row (cannot connect)", since=NOW)
    store.save_health("tech", tech, NOW)
    store.save_health("world", BLOCKED, NOW)  # disabled: not polled, not listed
    ingest(1)
    send_pending_digests(store, config, OutboxDelivery(tmp_path / "one"), NOW)
    by_reader = {str(m["To"]): m for m in _emails(tmp_path / "one")}
    ana = by_reader["ana@example.com"]
    text = ana.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = ana.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "== Sources in trouble ==" in text
    assert "- tech: failing since 5 Mar 2024, 09:00 UTC" in text  # in the reader's zone
    assert "3 failed polls in a row (cannot connect)" in text
    assert "Sources in trouble</h2>" in html
    assert "world" not in text.split("== Sources in trouble ==")[1]
    bob = by_reader["bob@example.com"].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Sources in trouble" not in bob

    store.save_health("tech", Health(State.OK, "ok", since=NOW), NOW + timedelta(hours=1))
    ingest(2)
    send_pending_digests(store, config, OutboxDelivery(tmp_path / "two"), NOW)
    for message in _emails(tmp_path / "two"):
        assert "Sources in trouble" not in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
