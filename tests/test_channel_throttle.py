"""Per-channel throttles, alert batching and the channels rules name: a burst of
matches becomes a few messages that together hold every story once; a held-back
digest goes out whole when the channel may send; a story two rules match reaches
their channel once. Webhook and Apprise receivers on loopback, real ledger."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from conftest import site_config, write_config
from receivers import Receiver

from alerts.delivery import OutboxDelivery
from alerts.digest import send_pending_alerts, send_pending_digests
from alerts.rules import RuleMatch
from crawler.domain.config import Config, ConfigError, load_config, parse_config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.orchestration.ingest import ingest_article
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from newssite import NewsSite

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
BODY = (
    "An earthquake shook the coast on Tuesday and floods followed, the agency said. "
    "Roads were closed while crews checked the bridges and cleared the water."
)


@pytest.fixture
def desk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("DESK_SECRET", "desk-secret")
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(
        Config.model_validate(
            {"sources": [{"name": "wire", "feed": "https://wire.example/rss"}]}
        ).sources
    )
    yield store
    store.close()


def _desk(receiver: Receiver, **limits: int) -> dict[str, Any]:
    return {
        "name": "desk",
        "kind": "webhook",
        "url": receiver.url(),
        "secret_env": "DESK_SECRET",
        **limits,
    }


def _ingest(store: Store, n: int, *rules: str) -> str:
    url = f"https://wire.example/{n}"
    article = ExtractedArticle(
        url=url, title=f"Earthquake and floods ({n})", text=BODY, published=NOW
    )
    matches = [RuleMatch(rule, ("earthquake",)) for rule in rules or ("quakes",)]
    result = ingest_article(store, ArticleItem("wire", url, article), matches, stories=None)
    assert result.article_id is not None
    return url


def _story_urls(receiver: Receiver, start: int = 0) -> list[str]:
    """The story URLs of the webhook messages from request ``start`` on, in order."""
    return [
        entry["url"]
        for _path, _headers, body in receiver.requests[start:]
        for section in json.loads(body)["sections"]
        for entry in section["entries"]
    ]


def test_a_burst_of_alerts_becomes_at_most_five_messages_a_minute_holding_every_story(
    store: Store, desk: Receiver, tmp_path: Path
) -> None:
    config = Config.model_validate(
        {
            "rules": [
                {
                    "name": "quakes",
                    "keywords": ["earthquake"],
                    "alert": "immediate",
                    "channels": ["desk"],
                },
            ],
            "channels": [_desk(desk, max_per_minute=5)],
            "alerts": {"window": "1s"},
        }
    )
    outbox = OutboxDelivery(tmp_path / "outbox")
    sent_at: list[datetime] = []  # the time of each message, from the runs' clock
    scheduled: datetime | None = None  # the next alert run, as the service schedules it

    def run(at: datetime) -> datetime | None:
        before = len(desk.requests)
        report = send_pending_alerts(store, config, outbox, at)
        assert report.failed == {}
        sent_at.extend([at] * (len(desk.requests) - before))
        return min(report.retry_at.values()) if report.retry_at else None

    urls = []
    for n in range(50):  # a match every 2 seconds for 100 seconds
        at = NOW + timedelta(seconds=2 * n)
        while scheduled is not None and scheduled <= at:
            scheduled = run(scheduled)
        urls.append(_ingest(store, n))
        if scheduled is None:  # new matches start the batching window
            scheduled = at + config.alerts.window
    for _ in range(100):
        if scheduled is None:
            break
        scheduled = run(scheduled)
    assert scheduled is None

    for start in sent_at:
        assert sum(start <= other < start + timedelta(minutes=1) for other in sent_at) <= 5
    assert 5 < len(sent_at) < 50
    assert sorted(_story_urls(desk)) == sorted(urls)  # every story, each exactly once
    assert send_pending_alerts(store, config, outbox, NOW + timedelta(hours=1)).sent == {}


def test_a_held_back_digest_goes_out_whole_when_the_channel_may_send(
    store: Store, desk: Receiver, tmp_path: Path
) -> None:
    config = Config.model_validate(
        {
            "rules": [{"name": "quakes", "keywords": ["earthquake"]}],
            "channels": [_desk(desk, max_per_minute=1)],
            "recipients": [
                {"email": "ana@example.com", "channels": ["desk"]},
                {"email": "bob@example.com", "channels": ["desk"]},
            ],
        }
    )
    outbox = OutboxDelivery(tmp_path / "outbox")
    urls = [_ingest(store, n) for n in range(3)]
    # One room, two readers: the channel's limit counts both.
    first = send_pending_digests(store, config, outbox, NOW)
    assert first.sent == {"ana@example.com": 3}
    assert first.retry_at == {"bob@example.com": NOW + timedelta(minutes=1)}
    assert len(desk.requests) == 1

    early = send_pending_digests(store, config, outbox, NOW + timedelta(seconds=30))
    assert early.sent == {}
    assert early.retry_at["bob@example.com"] == NOW + timedelta(minutes=1)
    assert len(desk.requests) == 1

    assert first.held == {"bob@example.com": ["desk"]}
    later = send_pending_digests(store, config, outbox, NOW + timedelta(minutes=1))
    assert later.sent == {"bob@example.com": 3}
    assert later.retry_at == {}
    assert len(desk.requests) == 2
    payload = json.loads(desk.requests[1][2])
    assert (payload["kind"], payload["recipient"]) == ("digest", "bob@example.com")
    assert sorted(_story_urls(desk, start=1)) == sorted(urls)  # the whole digest


def test_the_service_retries_a_held_digest_on_the_held_channel_only(
    store: Store, desk: Receiver, tmp_path: Path
) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from crawler.orchestration.service import NewswatchService

    config = Config.model_validate(
        {
            "rules": [{"name": "quakes", "keywords": ["earthquake"]}],
            "channels": [_desk(desk, max_per_minute=1)],
            "recipients": [
                {"email": "ana@example.com", "channels": ["desk"]},
                {"email": "bob@example.com", "channels": ["email", "desk"]},
            ],
            "delivery": {"outbox": str(tmp_path / "outbox")},
            "workers": 0,
        }
    )
    _ingest(store, 1)

    async def digests() -> list[tuple[str, Any, datetime]]:
        service = NewswatchService(config, store, cpu_workers=0)
        service.scheduler = AsyncIOScheduler(timezone=UTC)
        service.scheduler.start(paused=True)  # jobs are kept, none runs
        report = await service.send_digests()
        assert report.held == {"bob@example.com": ["desk"]}
        assert len(desk.requests) == 1
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1  # bob's email went
        _ingest(store, 2)
        # The retry the service scheduled: bob's desk only, not a second email.
        again = await service.send_digests("bob@example.com", ["desk"])
        assert again.held == {"bob@example.com": ["desk"]}
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
        jobs = [(job.id, job.args, job.trigger.run_date) for job in service.scheduler.get_jobs()]
        service.scheduler.shutdown(wait=False)
        return jobs

    # In a thread of its own: in a full run, this test process may already have a
    # running event loop (Scrapy's asyncio reactor, installed by earlier tests).
    with ThreadPoolExecutor(max_workers=1) as thread:
        ((job_id, args, run_date),) = thread.submit(lambda: asyncio.run(digests())).result(
            timeout=120
        )
    assert (job_id, args) == ("held:digest:bob@example.com", ("bob@example.com", ["desk"]))
    (sent,) = [row["sent_at"] for row in store.delivery_history() if row["channel"] == "desk"]
    assert run_date == sent.replace(tzinfo=UTC) + timedelta(minutes=1)


def test_a_rule_sends_its_alerts_to_its_channels_and_a_story_of_two_rules_once(
    store: Store, desk: Receiver, tmp_path: Path
) -> None:
    config = Config.model_validate(
        {
            "rules": [
                {
                    "name": "quakes",
                    "keywords": ["earthquake"],
                    "alert": "immediate",
                    "channels": ["desk"],
                },
                {
                    "name": "floods",
                    "keywords": ["floods"],
                    "alert": "immediate",
                    "channels": ["desk"],
                },
            ],
            "channels": [_desk(desk)],
        }
    )
    assert config.all_recipients() == []  # no reader: the status page and schedules see none
    (room,) = config.channel_recipients()
    assert (room.email, room.rules, room.channels) == (
        "channel:desk",
        ("quakes", "floods"),
        ("desk",),
    )
    outbox = OutboxDelivery(tmp_path / "outbox")
    both = _ingest(store, 1, "quakes", "floods")
    only_quakes = _ingest(store, 2, "quakes")

    report = send_pending_alerts(store, config, outbox, NOW)
    assert report.sent == {"channel:desk": 2}
    assert len(desk.requests) == 1
    assert set(_story_urls(desk)) == {both, only_quakes}
    (row,) = store.delivery_history()
    assert (row["recipient"], row["channel"], row["articles"]) == ("channel:desk", "desk", 2)

    assert send_pending_alerts(store, config, outbox, NOW + timedelta(minutes=5)).sent == {}
    assert send_pending_digests(store, config, outbox, NOW + timedelta(days=1)).sent == {}
    assert len(desk.requests) == 1
    assert list((tmp_path / "outbox").glob("*.eml")) == []


def test_matches_of_one_window_are_one_message_per_channel(
    store: Store, desk: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = Receiver().start()
    try:
        monkeypatch.setenv("CHAT_URL", f"json://127.0.0.1:{chat.port}/notify")
        config = Config.model_validate(
            {
                "rules": [{"name": "quakes", "keywords": ["earthquake"], "alert": "immediate"}],
                "channels": [
                    _desk(desk),
                    {"name": "chat", "kind": "apprise", "url_env": "CHAT_URL"},
                ],
                "recipients": [{"email": "ana@example.com", "channels": ["email", "desk", "chat"]}],
                "digest": {"sender": "news@example.org"},
            }
        )
        assert Config().alerts.window == timedelta(seconds=60)
        urls = [_ingest(store, n) for n in range(4)]
        report = send_pending_alerts(store, config, OutboxDelivery(tmp_path / "outbox"), NOW)
        assert report.sent == {"ana@example.com": 12}  # 4 stories on each of 3 channels
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
        assert len(desk.requests) == 1
        assert len(chat.requests) == 1
        assert sorted(_story_urls(desk)) == sorted(urls)
        message = json.loads(chat.requests[0][2])["message"]
        assert all(url in message for url in urls)
    finally:
        chat.stop()


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        pytest.param(
            "rules:\n  - name: quakes\n    keywords: [earthquake]\n    alert: immediate\n"
            "    channels: [pager]\n",
            "rules[0].channels[0] (line 5): rule quakes: no channel is named 'pager' "
            "(no channels are configured)",
            id="unknown-channel",
        ),
        pytest.param(
            "rules:\n  - name: quakes\n    keywords: [earthquake]\n    alert: immediate\n"
            "    channels: [email]\n",
            "rules[0].channels[0] (line 5): rule quakes: email is no channel of a rule; email "
            "goes to recipients, list the rule in theirs",
            id="email-is-no-rule-channel",
        ),
        pytest.param(
            "channels:\n  - name: desk\n    kind: webhook\n    url: https://h.example/x\n"
            "    secret_env: DESK_SECRET\n"
            "rules:\n  - name: quakes\n    keywords: [earthquake]\n    channels: [desk]\n",
            "rules[0].channels (line 9): rule quakes: channels take its immediate alerts",
            id="digest-rule-with-channels",
        ),
        pytest.param(
            "channels:\n  - name: mine\n    kind: feed\n"
            "rules:\n  - name: quakes\n    keywords: [earthquake]\n    alert: immediate\n"
            "    channels: [mine]\n",
            "rules[0].channels[0] (line 8): rule quakes: mine is a feed channel, read per "
            "recipient",
            id="feed-is-no-rule-channel",
        ),
        pytest.param(
            "channels:\n  - name: desk\n    kind: webhook\n    url: https://h.example/x\n"
            "    secret_env: DESK_SECRET\n    max_per_minute: 0\n",
            "channels[0].max_per_minute (line 6): Input should be greater than or equal to 1",
            id="zero-per-minute",
        ),
        pytest.param(
            "channels:\n  - name: chat\n    kind: apprise\n    url_env: CHAT_URL\n"
            "    max_per_hour: lots\n",
            "channels[0].max_per_hour (line 5): Input should be a valid integer",
            id="per-hour-not-a-number",
        ),
        pytest.param(
            "channels:\n  - name: chat\n    kind: apprise\n    url_env: CHAT_URL\n"
            "    max_per_minute: 30\n    max_per_hour: 10\n",
            "channels[0].max_per_minute (line 5): max_per_minute (30) is more than "
            "max_per_hour (10)",
            id="minute-over-hour",
        ),
    ],
)
def test_rule_channel_and_throttle_errors_name_the_key_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml_text: str, expected: str
) -> None:
    monkeypatch.setenv("CHAT_URL", "json://127.0.0.1:9/x")
    monkeypatch.setenv("DESK_SECRET", "s")
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as error:
        parse_config(yaml_text, path)
    assert f"{path}: {expected}" in str(error.value)


def test_chat_channels_are_throttled_by_default_and_webhooks_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHAT_URL", "json://127.0.0.1:9/x")
    config = Config.model_validate(
        {
            "channels": [
                {"name": "chat", "kind": "apprise", "url_env": "CHAT_URL"},
                {"name": "quiet", "kind": "apprise", "url_env": "CHAT_URL", "max_per_hour": 10},
                {
                    "name": "free",
                    "kind": "apprise",
                    "url_env": "CHAT_URL",
                    "max_per_minute": None,
                    "max_per_hour": None,
                },
                {
                    "name": "hook",
                    "kind": "webhook",
                    "url": "https://h.example/x",
                    "secret_env": "S",
                },
            ]
        }
    )
    limits = [(c.name, c.max_per_minute, c.max_per_hour) for c in config.channels]
    assert limits == [
        ("chat", 20, 200),
        ("quiet", 10, 10),
        ("free", None, None),
        ("hook", None, None),
    ]


@pytest.mark.slow
def test_the_service_batches_a_windows_alerts_into_one_message(
    news_site: NewsSite, tmp_path: Path, desk: Receiver
) -> None:
    from test_service import _start, _stop, _wait_for

    settings = site_config(news_site, tmp_path)
    for rule in settings["rules"]:  # both feeds' matches, from two polls, to one room
        rule.update(alert="immediate", channels=["desk"])
    settings["channels"] = [_desk(desk)]
    settings["alerts"] = {"window": "5s"}
    config = write_config(tmp_path, **settings)
    process = _start(config, tmp_path / "service.log")
    store = Store.from_url(load_config(config).database)
    try:
        _wait_for(lambda: store.count_articles() == 5, 60, "the first crawl")
        _wait_for(
            lambda: not store.pending_items("channel:desk", ["syria", "chips"], channel="desk"),
            30,
            "every match to reach the room",
        )
    finally:
        _stop(process)
    # Matches of both feeds, stored by two polls within the window: one message.
    assert [row["channel"] for row in store.delivery_history()].count("desk") == 1
    assert len(desk.requests) == 1
    assert {"syria", "chips"} <= {
        section["rule"] for section in json.loads(desk.requests[0][2])["sections"]
    }


def test_a_throttled_channels_readers_take_turns_on_a_busy_day(
    store: Store, desk: Receiver, tmp_path: Path
) -> None:
    """Two readers on a channel that lets one message a minute go, a match every
    minute: the reader first in the file, who always has something new, must not take
    every message while the other's alerts wait as long as the news keeps coming."""
    config = Config.model_validate(
        {
            "rules": [{"name": "quakes", "keywords": ["earthquake"], "alert": "immediate"}],
            "channels": [_desk(desk, max_per_minute=1)],
            "recipients": [
                {"email": "ana@example.com", "channels": ["desk"]},
                {"email": "bo@example.com", "channels": ["desk"]},
            ],
        }
    )
    outbox = OutboxDelivery(tmp_path / "outbox")
    messages: dict[str, int] = {}
    for minute in range(6):
        _ingest(store, minute)
        report = send_pending_alerts(
            store, config, outbox, NOW + timedelta(minutes=minute, seconds=1)
        )
        assert report.failed == {}
        for reader in report.sent:
            messages[reader] = messages.get(reader, 0) + 1
    assert messages == {"ana@example.com": 3, "bo@example.com": 3}
    assert len(desk.requests) == 6
