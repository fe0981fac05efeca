"""Digests and alerts on every channel a reader names, exactly once per (recipient,
channel, story): email to the outbox, a signed webhook and Apprise's json:// plugin to
receivers on loopback, through the delivery ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from conftest import run_newswatch, write_config
from receivers import Receiver

from alerts.delivery import OutboxDelivery
from alerts.digest import send_pending_alerts, send_pending_digests
from alerts.rules import RuleMatch
from alerts.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify_signature
from crawler.domain.config import Config, ConfigError, parse_config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.orchestration.ingest import ingest_article
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
SECRET = "hook-secret"
BODY = (
    "Floods closed the port on Tuesday after three days of rain, the port authority said. "
    "Ships were turned away and the coast road was shut while crews cleared the water."
)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def chat() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, hook: Receiver, chat: Receiver
) -> tuple[Receiver, Receiver]:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("CHAT_URL", f"json://127.0.0.1:{chat.port}/notify")
    return hook, chat


def _config(hook: Receiver, channels: list[str] | None = None) -> Config:
    return Config.model_validate(
        {
            "sources": [{"name": "wire", "feed": "https://wire.example/rss"}],
            "rules": [
                {"name": "floods", "keywords": ["floods"]},
                {"name": "quakes", "keywords": ["earthquake"], "alert": "immediate"},
            ],
            "digest": {"sender": "news@example.org"},
            "channels": [
                {
                    "name": "team-hook",
                    "kind": "webhook",
                    "url": hook.url(),
                    "secret_env": "HOOK_SECRET",
                },
                {"name": "team-chat", "kind": "apprise", "url_env": "CHAT_URL"},
            ],
            "recipients": [
                {
                    "email": "ana@example.com",
                    "channels": channels or ["email", "team-hook", "team-chat"],
                }
            ],
        }
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(Config.model_validate({"sources": [
        {"name": "wire", "feed": "https://wire.example/rss"}]}).sources)  # fmt: skip
    yield store
    store.close()


def _ingest(store: Store, n: int, rule: str = "floods", term: str = "floods") -> int:
    url = f"https://wire.example/{n}"
    article = ExtractedArticle(url=url, title=f"Floods close the port ({n})", text=BODY,
                               published=NOW)  # fmt: skip
    result = ingest_article(
        store, ArticleItem("wire", url, article), [RuleMatch(rule, (term,))], stories=None
    )
    assert result.article_id is not None
    return result.article_id


def test_every_channel_gets_the_digest_once(
    store: Store, environment: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    hook, chat = environment
    config = _config(hook)
    outbox = OutboxDelivery(tmp_path / "outbox")
    for n in range(3):
        _ingest(store, n)
    report = send_pending_digests(store, config, outbox, NOW)
    assert report.failed == {}
    assert report.sent == {"ana@example.com": 9}  # 3 articles on each of 3 channels
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    assert len(hook.requests) == 1
    assert len(chat.requests) == 1  # a digest is one chat message, not one per story

    _path, headers, body = hook.requests[0]
    assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body)
    payload = json.loads(body)
    assert payload["kind"] == "digest"
    assert payload["id"] == headers[IDEMPOTENCY_HEADER]
    assert [e["url"] for e in payload["sections"][0]["entries"]] == [
        f"https://wire.example/{n}" for n in range(3)
    ]
    message = json.loads(chat.requests[0][2])["message"]
    assert all(f"https://wire.example/{n}" in message for n in range(3))

    # Nothing new: nothing sent anywhere. Something new: once more on each channel.
    assert send_pending_digests(store, config, outbox, NOW).sent == {}
    _ingest(store, 3)
    assert send_pending_digests(store, config, outbox, NOW).sent == {"ana@example.com": 3}
    assert (len(hook.requests), len(chat.requests)) == (2, 2)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    assert json.loads(hook.requests[1][2])["id"] != payload["id"]


def test_a_failing_webhook_is_retried_with_the_same_key_and_holds_back_nothing(
    store: Store, environment: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    hook, chat = environment
    config = _config(hook)
    outbox = OutboxDelivery(tmp_path / "outbox")
    _ingest(store, 1)
    hook.answers = [(500, {}), (429, {"Retry-After": "120"})]
    first = send_pending_digests(store, config, outbox, NOW)
    assert "HTTP 500" in first.failed["ana@example.com"]
    assert first.attempts == {"ana@example.com": 1}
    assert len(chat.requests) == 1  # the other channels went out
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1

    second = send_pending_digests(store, config, outbox, NOW + timedelta(minutes=1))
    assert "HTTP 429" in second.failed["ana@example.com"]
    assert second.attempts == {"ana@example.com": 2}
    assert second.not_before["ana@example.com"] == NOW + timedelta(minutes=1, seconds=120)

    third = send_pending_digests(store, config, outbox, NOW + timedelta(minutes=4))
    assert third.failed == {}
    assert third.sent == {"ana@example.com": 1}
    keys = {headers[IDEMPOTENCY_HEADER] for _path, headers, _body in hook.requests}
    bodies = {body for _path, _headers, body in hook.requests}
    assert len(hook.requests) == 3
    assert len(keys) == 1  # one delivery, three tries, one key
    assert len(bodies) == 1  # the same body on every try (only the signature's time moves)
    assert send_pending_digests(store, config, outbox, NOW + timedelta(minutes=5)).sent == {}
    assert len(chat.requests) == 1


def test_a_webhook_that_refuses_for_good_is_recorded_and_not_retried(
    store: Store, environment: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    hook, _chat = environment
    config = _config(hook, channels=["team-hook"])
    _ingest(store, 1)
    hook.answers = [(404, {})]
    outbox = OutboxDelivery(tmp_path / "outbox")
    report = send_pending_digests(store, config, outbox, NOW)
    assert report.failed == {}  # nothing to retry
    assert send_pending_digests(store, config, outbox, NOW + timedelta(hours=1)).sent == {}
    assert len(hook.requests) == 1
    (row,) = store.delivery_history()
    assert row["channel"] == "team-hook"
    assert row["failed_at"] is not None
    assert row["sent_at"] is None
    assert "HTTP 404" in row["last_error"]
    assert store.unsent_delivery_counts() == {}
    assert list((tmp_path / "outbox").glob("*.eml")) == []  # email was not asked for


def test_a_delivery_refused_for_good_cannot_be_claimed_by_a_run_that_read_it_before(
    store: Store,
) -> None:
    """Two runs read the same unsent delivery; the first sends it and the channel
    refuses it for good. The second, claiming from what it read, must not send it
    again: only a sent delivery was kept from a second claim."""
    _ingest(store, 1)
    pending = store.pending_items("ana@example.com", ["floods"], channel="team-hook")
    created = store.create_delivery("ana@example.com", pending, "example.org", channel="team-hook")
    assert created is not None
    (read_by_the_second_run,) = store.unsent_deliveries("ana@example.com", "team-hook")
    assert store.claim_delivery(created.id, "first-run", NOW + timedelta(minutes=15), now=NOW)
    store.mark_failed(created.id, "webhook team-hook: HTTP 404 (refused for good)")
    assert not store.claim_delivery(
        read_by_the_second_run.id, "second-run", NOW + timedelta(minutes=15), now=NOW
    )


def test_alerts_go_to_each_channel_and_are_throttled_per_channel(
    store: Store, environment: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    hook, chat = environment
    # Email by alerts.max_per_hour, every other channel by its own max_per_hour.
    settings = _config(hook).model_dump(exclude_defaults=True)
    settings["alerts"] = {"max_per_hour": 1}
    for channel in settings["channels"]:
        channel.pop("max_per_minute", None)  # the apprise default follows max_per_hour
        channel["max_per_hour"] = 1
    config = Config.model_validate(settings)
    outbox = OutboxDelivery(tmp_path / "outbox")
    _ingest(store, 1, rule="quakes", term="earthquake")
    report = send_pending_alerts(store, config, outbox, NOW)
    assert report.sent == {"ana@example.com": 3}
    assert json.loads(hook.requests[0][2])["kind"] == "alert"
    _ingest(store, 2, rule="quakes", term="earthquake")
    throttled = send_pending_alerts(store, config, outbox, NOW + timedelta(minutes=1))
    assert throttled.sent == {}
    assert throttled.retry_at["ana@example.com"] > NOW + timedelta(minutes=1)
    assert (len(hook.requests), len(chat.requests)) == (1, 1)


@pytest.mark.parametrize(
    ("channels_yaml", "expected"),
    [
        pytest.param(
            "channels:\n  - name: hook\n    kind: webhook\n    url: https://h.example/x\n",
            "channels[0]",
            id="webhook-without-secret",
        ),
        pytest.param(
            "channels:\n  - name: chat\n    kind: apprise\n    url: https://h.example/x\n",
            "url_env",
            id="apprise-url-in-the-file",
        ),
        pytest.param(
            "channels:\n  - name: email\n    kind: apprise\n    url_env: CHAT_URL\n",
            "every recipient's email",
            id="named-email",
        ),
        pytest.param(
            "channels:\n  - name: chat\n    kind: apprise\n    url_env: BAD_CHAT_URL\n",
            "channels[0].url_env (line 4): $BAD_CHAT_URL is not an Apprise URL",
            id="apprise-url-unusable",
        ),
        pytest.param(
            "channels:\n  - name: chat\n    kind: apprise\n    url_env: UNSET_CHAT_URL\n",
            "channels[0].url_env (line 4): the environment variable UNSET_CHAT_URL is not set",
            id="apprise-variable-unset",
        ),
        pytest.param(
            "recipients:\n  - email: a@example.com\n    channels: [email, pager]\n",
            "recipients[0].channels[1] (line 3): recipient a@example.com: no channel is "
            "named 'pager' (channels: email)",
            id="unknown-channel",
        ),
    ],
)
def test_channel_configuration_errors_name_the_key_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channels_yaml: str, expected: str
) -> None:
    monkeypatch.setenv("CHAT_URL", "json://127.0.0.1:9/x")
    monkeypatch.setenv("BAD_CHAT_URL", "nosuchservice://token")
    monkeypatch.delenv("UNSET_CHAT_URL", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(channels_yaml)
    with pytest.raises(ConfigError) as error:
        parse_config(path.read_text(), path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "secret_url",
    ["xoxb-0123456789-s3cr3tT0ken", "hooks.slack.example/services/T0/B0/s3cr3tT0ken"],
)
def test_an_unusable_apprise_url_without_a_scheme_is_not_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret_url: str
) -> None:
    """A bare token in the variable (no ``scheme://``) is all secret: the error names
    the variable, never a piece of its value."""
    monkeypatch.setenv("BAD_CHAT_URL", secret_url)
    path = tmp_path / "config.yaml"
    path.write_text("channels:\n  - name: chat\n    kind: apprise\n    url_env: BAD_CHAT_URL\n")
    with pytest.raises(ConfigError) as error:
        parse_config(path.read_text(), path)
    message = str(error.value)
    assert "channels[0].url_env (line 4): $BAD_CHAT_URL is not an Apprise URL" in message
    assert secret_url[:6] not in message


def test_apprise_urls_stay_out_of_the_log_at_debug_level(
    chat: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apprise's own debug lines quote the URL it posts to, and a chat service's
    token is in its path (Slack, Discord, Telegram): they never reach the log."""
    monkeypatch.setenv("CHAT_URL", f"json://127.0.0.1:{chat.port}/hook/s3cretPathToken")
    config = write_config(
        tmp_path,
        database=f"sqlite:///{tmp_path / 'nw.db'}",
        channels=[{"name": "team-chat", "kind": "apprise", "url_env": "CHAT_URL"}],
    )
    sent = run_newswatch(config, "--log-level", "DEBUG", "channels", "test", "team-chat")
    assert sent.returncode == 0, sent.stderr
    assert chat.requests[0][0] == "/hook/s3cretPathToken"
    assert "INFO apprise: Sent JSON POST notification" in sent.stderr  # still logged
    assert "s3cretPathToken" not in sent.stderr + sent.stdout


def test_channels_test_sends_a_test_message_and_says_how_it_went(
    environment: tuple[Receiver, Receiver], tmp_path: Path
) -> None:
    hook, chat = environment
    config = write_config(
        tmp_path,
        database=f"sqlite:///{tmp_path / 'nw.db'}",
        channels=[
            {
                "name": "team-hook",
                "kind": "webhook",
                "url": hook.url(),
                "secret_env": "HOOK_SECRET",
            },
            {"name": "team-chat", "kind": "apprise", "url_env": "CHAT_URL"},
        ],
    )
    sent = run_newswatch(config, "channels", "test", "team-hook")
    assert (sent.returncode, sent.stdout.strip()) == (0, "team-hook: delivered")
    _path, headers, body = hook.requests[0]
    assert headers["Newswatch-Event"] == "test"
    assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body)

    assert run_newswatch(config, "channels", "test", "team-chat").returncode == 0
    assert "test message" in json.loads(chat.requests[0][2])["title"]

    hook.answers = [(404, {})]
    refused = run_newswatch(config, "channels", "test", "team-hook")
    assert refused.returncode == 1
    assert "team-hook: FAILED (refused): webhook team-hook: HTTP 404" in refused.stdout
    unknown = run_newswatch(config, "channels", "test", "pager")
    assert unknown.returncode == 2
    assert "no channel 'pager'" in unknown.stdout
    assert "Traceback" not in refused.stderr + unknown.stderr
