"""Digests and alerts per recipient: rules, time zones, quiet days, stories, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.exc import OperationalError

from alerts.delivery import OutboxDelivery, SmtpDelivery
from alerts.digest import send_pending_alerts, send_pending_digests
from alerts.rules import RuleMatch
from crawler.domain.config import Config, cron_trigger
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.orchestration.ingest import ingest_article
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from smtpserver import RecordingSmtpServer

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)  # a Wednesday
WIRE = (
    "Regime troops were locked in heavy fighting on Tuesday with ISIS in central Syria, where "
    "they dealt the jihadists a major blow by seizing the ancient city of Palmyra. Just two "
    "days after seizing Palmyra from ISIS, pro-government fighters advanced south-west "
    "towards the jihadist-held town of Al-Qaryatain, the Syrian Observatory said. They "
    "captured a series of strategic hilltops overlooking the town, said the monitor."
)


def _config(**settings: object) -> Config:
    base: dict[str, object] = {
        "sources": [
            {"name": n, "feed": f"https://{n}.example/rss"} for n in ("wire", "daily", "herald")
        ],
        "rules": [
            {"name": "syria", "keywords": ["Palmyra"], "tags": ["mideast"]},
            {"name": "energy", "keywords": ["oil"]},
            {"name": "breaking", "keywords": ["earthquake"], "alert": "immediate"},
        ],
        "digest": {
            "timezone": "Asia/Kolkata",
            "sender": "news@example.org",
            "unsubscribe": "mailto:unsubscribe@example.org",
        },
        "recipients": [
            {
                "email": "ana@example.com",
                "tags": ["mideast"],
                "timezone": "Europe/Paris",
                "schedule": "0 7 * * *",
                "quiet_days": ["sat", "sun"],
            },
            {"email": "raj@example.com", "rules": ["energy", "breaking"]},
        ],
    }
    base.update(settings)
    return Config.model_validate(base)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(_config().sources)
    yield store
    store.close()


def _ingest(
    store: Store,
    source: str,
    url: str,
    title: str,
    body: str,
    rules: list[RuleMatch],
    published: datetime = NOW,
) -> int:
    article = ExtractedArticle(url=url, title=title, text=body, published=published)
    result = ingest_article(store, ArticleItem(source, url, article), rules, stories=None)
    assert result.article_id is not None
    return result.article_id


def test_each_recipient_gets_their_own_rules(store: Store, tmp_path: Path) -> None:
    _ingest(
        store,
        "wire",
        "https://wire.example/1",
        "Palmyra retaken",
        WIRE,
        [RuleMatch("syria", ("Palmyra",))],
    )
    _ingest(
        store,
        "daily",
        "https://daily.example/2",
        "Oil prices climb",
        "Oil " * 80,
        [RuleMatch("energy", ("oil",))],
    )
    outbox = OutboxDelivery(tmp_path)
    report = send_pending_digests(store, _config(), outbox, NOW)
    assert report.sent == {"ana@example.com": 1, "raj@example.com": 1}
    bodies = {path.read_text(): path for path in tmp_path.glob("*.eml")}
    ana = next(text for text in bodies if "To: ana@example.com" in text)
    assert "Palmyra retaken" in ana
    assert "Oil prices climb" not in ana
    assert "List-Unsubscribe: <mailto:unsubscribe@example.org>" in ana


def test_times_are_shown_in_each_readers_zone(store: Store, tmp_path: Path) -> None:
    _ingest(
        store,
        "wire",
        "https://wire.example/1",
        "Palmyra retaken",
        WIRE,
        [RuleMatch("syria", ("Palmyra",)), RuleMatch("energy", ("oil",))],
    )
    send_pending_digests(store, _config(), OutboxDelivery(tmp_path), NOW)
    texts = [path.read_text() for path in tmp_path.glob("*.eml")]
    ana = next(text for text in texts if "To: ana@example.com" in text)
    raj = next(text for text in texts if "To: raj@example.com" in text)
    assert "10:00 CET" in ana  # 09:00 UTC in Paris
    assert "14:30 IST" in raj  # 09:00 UTC in Kolkata


@pytest.mark.parametrize(
    ("email", "local", "utc"),
    [
        ("ana@example.com", "07:00 Europe/Paris", datetime(2024, 2, 15, 6, 0, tzinfo=UTC)),
        ("raj@example.com", "07:00 Asia/Kolkata", datetime(2024, 2, 15, 1, 30, tzinfo=UTC)),
    ],
)
def test_digests_fire_at_each_readers_local_hour(email: str, local: str, utc: datetime) -> None:
    recipient = _config().recipient(email)
    trigger = cron_trigger(recipient.schedule, recipient.timezone)
    assert trigger.get_next_fire_time(None, NOW) == utc, local


def test_weekly_digest_fires_on_its_weekday() -> None:
    config = _config(
        recipients=[
            {
                "email": "w@example.com",
                "frequency": "weekly",
                "weekday": "fri",
                "schedule": "30 8 * * *",
            }
        ]
    )
    recipient = config.recipient("w@example.com")
    fire = cron_trigger(recipient.schedule, recipient.timezone).get_next_fire_time(None, NOW)
    assert fire.astimezone(UTC) == datetime(2024, 2, 16, 3, 0, tzinfo=UTC)  # Fri 08:30 IST


def test_quiet_days_hold_the_digest_until_the_next_one(store: Store, tmp_path: Path) -> None:
    _ingest(
        store,
        "wire",
        "https://wire.example/1",
        "Palmyra retaken",
        WIRE,
        [RuleMatch("syria", ("Palmyra",))],
    )
    saturday = datetime(2024, 2, 17, 6, 0, tzinfo=UTC)
    report = send_pending_digests(store, _config(), OutboxDelivery(tmp_path), saturday)
    assert report.skipped == {"ana@example.com": "quiet day"}
    assert list(tmp_path.glob("*.eml")) == []
    monday = saturday + timedelta(days=2)
    report = send_pending_digests(store, _config(), OutboxDelivery(tmp_path), monday)
    assert report.sent == {"ana@example.com": 1}


def test_copies_of_one_story_are_one_entry_and_sent_once(store: Store, tmp_path: Path) -> None:
    first = _ingest(
        store,
        "wire",
        "https://wire.example/1",
        "Army pressures ISIS",
        WIRE,
        [RuleMatch("syria", ("Palmyra",))],
        NOW - timedelta(hours=3),
    )
    copy = _ingest(
        store,
        "daily",
        "https://daily.example/9",
        "Syria: army presses on",
        WIRE + " Local reaction followed.",
        [RuleMatch("syria", ("Palmyra",))],
    )
    store.set_stories({copy: first})
    send_pending_digests(store, _config(), OutboxDelivery(tmp_path), NOW)
    (email,) = [p.read_text() for p in tmp_path.glob("*.eml")]
    # One entry: the earliest copy's link, the most complete copy's headline.
    assert email.count("Syria: army presses on") >= 1
    assert "Army pressures ISIS" not in email
    assert "https://wire.example/1" in email
    assert "https://daily.example/9" not in email
    assert "wire and daily" in email

    # A third copy arriving the next day is not delivered again.
    late = _ingest(
        store,
        "herald",
        "https://herald.example/x",
        "Palmyra: army advances",
        WIRE + " Herald staff contributed.",
        [RuleMatch("syria", ("Palmyra",))],
    )
    store.set_stories({late: first})
    report = send_pending_digests(
        store, _config(), OutboxDelivery(tmp_path), NOW + timedelta(days=1)
    )
    assert report.sent == {}
    assert len(list(tmp_path.glob("*.eml"))) == 1


def test_immediate_alerts_are_throttled(store: Store, tmp_path: Path) -> None:
    config = _config(alerts={"max_per_hour": 2})
    outbox = OutboxDelivery(tmp_path)
    for n in range(3):
        _ingest(
            store,
            "wire",
            f"https://wire.example/quake{n}",
            f"Earthquake {n}",
            f"An earthquake number {n} struck. " * 10,
            [RuleMatch("breaking", ("earthquake",))],
        )
        report = send_pending_alerts(store, config, outbox, NOW + timedelta(minutes=n))
    assert len(list(tmp_path.glob("*.eml"))) == 2
    assert report.skipped == {"raj@example.com": "throttled"}
    assert report.retry_at["raj@example.com"] == NOW + timedelta(hours=1)
    later = send_pending_alerts(store, config, outbox, NOW + timedelta(hours=1, minutes=1))
    assert later.sent == {"raj@example.com": 1}
    subjects = [
        p.read_text().split("Subject: ", 1)[1].split("\n", 1)[0] for p in tmp_path.glob("*.eml")
    ]
    assert all(s.startswith("newswatch alert:") for s in subjects)


def test_a_failing_recipient_does_not_block_the_others(
    store: Store, smtp_server: RecordingSmtpServer
) -> None:
    config = _config(recipients=[{"email": "bad@nowhere.invalid"}, {"email": "good@example.com"}])
    _ingest(
        store,
        "wire",
        "https://wire.example/1",
        "Palmyra retaken",
        WIRE,
        [RuleMatch("syria", ("Palmyra",))],
    )
    smtp_server.fail_next(1)  # the first recipient's send gets 451
    smtp = SmtpDelivery(smtp_server.host, smtp_server.port, timeout=10)
    report = send_pending_digests(store, config, smtp, NOW)
    assert list(report.failed) == ["bad@nowhere.invalid"]
    assert report.sent == {"good@example.com": 1}
    retried = send_pending_digests(store, config, smtp, NOW + timedelta(minutes=1))
    assert retried.sent == {"bad@nowhere.invalid": 1}
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == len(set(ids)) == 2


def test_a_database_failure_while_building_a_digest_is_retried_not_lost(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ingest(
        store,
        "daily",
        "https://daily.example/2",
        "Oil prices climb",
        "Oil " * 80,
        [RuleMatch("energy", ("oil",))],
    )
    pending_items = store.pending_items

    def database_gone(*_args: object, **_options: object) -> object:
        raise OperationalError("SELECT …", {}, Exception("server closed the connection"))

    monkeypatch.setattr(store, "pending_items", database_gone)
    outbox = OutboxDelivery(tmp_path)
    report = send_pending_digests(store, _config(), outbox, NOW)
    # Reported like a failed send, so the service retries it with backoff.
    assert "database error" in report.failed["raj@example.com"]
    assert report.attempts["raj@example.com"] == 1
    assert list(tmp_path.glob("*.eml")) == []

    monkeypatch.setattr(store, "pending_items", pending_items)
    again = send_pending_digests(store, _config(), outbox, NOW)
    assert again.sent == {"raj@example.com": 1}
    assert again.failed == {}
