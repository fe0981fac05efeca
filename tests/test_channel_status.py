"""Each channel's state where people look: `newswatch status` (table and JSON), the
web UI's status page and /metrics, after real deliveries to webhook receivers on
loopback (one answering 500 then 200, one refusing with 404) and to the outbox."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from conftest import run_newswatch, site_config, write_config
from receivers import Receiver
from test_web import Reply, running_service

from alerts.channel_status import channel_statuses
from alerts.delivery import OutboxDelivery
from alerts.digest import send_pending_alerts, send_pending_digests
from alerts.rules import RuleMatch
from crawler.domain.config import Config, load_config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.orchestration.ingest import ingest_article
from crawler.orchestration.metrics import Metrics
from crawler.storage.records import ArticleRecord, KnownArticle
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from newssite import NewsSite

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
READER = "ana@example.com"
# A name with markup in it: the page must show it as text (it is in the errors too).
PARTNER = "partner <i>hook</i>"
BODY = (
    "Floods closed the port on Tuesday after three days of rain, the port authority said. "
    "Ships were turned away and the coast road was shut while crews cleared the water."
)


@pytest.fixture
def team() -> Iterator[Receiver]:
    receiver = Receiver(answers=[(500, {})]).start()  # then 200
    yield receiver
    receiver.stop()


@pytest.fixture
def partner() -> Iterator[Receiver]:
    receiver = Receiver(answers=[(404, {})] * 10).start()  # refuses every time
    yield receiver
    receiver.stop()


def _settings(team: Receiver, partner: Receiver, folder: Path) -> dict[str, Any]:
    return {
        "sources": [{"name": "wire", "feed": "https://wire.example/rss"}],
        "rules": [{"name": "floods", "keywords": ["floods"]}],
        # Never due while a test runs: the ledger is filled by the test alone.
        "digest": {"sender": "news@example.org", "schedule": "0 0 1 1 *"},
        "delivery": {"outbox": str(folder / "outbox")},
        "channels": [
            {
                "name": "team-hook",
                "kind": "webhook",
                "url": team.url(),
                "secret_env": "HOOK_SECRET",
            },
            {"name": PARTNER, "kind": "webhook", "url": partner.url(), "secret_env": "HOOK_SECRET"},
        ],
        "recipients": [{"email": READER, "channels": ["email", "team-hook", PARTNER]}],
    }


def _ingest(store: Store, n: int) -> int:
    url = f"https://wire.example/{n}"
    article = ExtractedArticle(url=url, title=f"Floods close the port ({n})", text=BODY,
                               published=NOW)  # fmt: skip
    result = ingest_article(
        store, ArticleItem("wire", url, article), [RuleMatch("floods", ("floods",))], stories=None
    )
    assert result.article_id is not None
    return result.article_id


def _status_json(config: Path) -> dict[str, dict[str, Any]]:
    shown = run_newswatch(config, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    return {channel["name"]: channel for channel in json.loads(shown.stdout)["channels"]}


def _metric(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_status_and_metrics_show_each_channels_deliveries_pending_and_errors(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    team: Receiver,
    partner: Receiver,
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "hook-secret")
    settings = {"database": database_url, **_settings(team, partner, tmp_path)}
    config_file = write_config(tmp_path, **settings)
    config = load_config(config_file)
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(config.sources)
    metrics = Metrics(store, config=lambda: config)
    outbox = OutboxDelivery(tmp_path / "outbox")
    try:
        _ingest(store, 1)
        _ingest(store, 2)
        first = send_pending_digests(store, config, outbox, NOW)
        assert "HTTP 500" in first.failed[READER]
        _ingest(store, 3)  # in no delivery yet, on every channel

        channels = _status_json(config_file)
        assert list(channels) == ["email", "team-hook", PARTNER]
        team_row, partner_row, email_row = (channels[n] for n in ("team-hook", PARTNER, "email"))
        assert team_row["kind"] == "webhook"
        assert team_row["recipients"] == [READER]
        assert team_row["status"] == "retrying"
        assert team_row["last_sent_at"] is None
        assert (team_row["pending"], team_row["pending_in_unsent_deliveries"]) == (3, 2)
        assert (team_row["unsent"], team_row["failed"]) == (1, 0)
        assert "HTTP 500" in team_row["last_error"]
        assert partner_row["status"] == "refused"
        assert (partner_row["pending"], partner_row["failed"]) == (1, 1)
        assert "HTTP 404" in partner_row["last_error"]
        assert partner_row["last_error_at"] is not None
        assert email_row["status"] == "ok"
        assert email_row["last_sent_at"] == NOW.isoformat()
        assert email_row["pending"] == 1
        assert _metric(metrics, "newswatch_channel_pending", kind="webhook",
                       channel="team-hook") == 3  # fmt: skip
        assert _metric(metrics, "newswatch_channel_deliveries_total", kind="webhook",
                       channel=PARTNER, outcome="failed") == 1  # fmt: skip

        second = send_pending_digests(store, config, outbox, LATER)
        assert second.failed == {}
        assert len(team.requests) == 3  # the retry of the first digest, then the new one
        assert len(partner.requests) == 2  # refused twice, never retried
        channels = _status_json(config_file)
        team_row, partner_row = channels["team-hook"], channels[PARTNER]
        assert team_row["status"] == "ok"
        assert team_row["last_sent_at"] == LATER.isoformat()
        assert (team_row["sent"], team_row["pending"], team_row["last_error"]) == (2, 0, None)
        assert partner_row["status"] == "refused"
        assert (partner_row["failed"], partner_row["pending"]) == (2, 0)
        for kind, channel, sent, failed in [
            ("email", "email", 2, 0),
            ("webhook", "team-hook", 2, 0),
            ("webhook", PARTNER, 0, 2),
        ]:
            for outcome, count in (("sent", sent), ("failed", failed)):
                assert _metric(metrics, "newswatch_channel_deliveries_total", kind=kind,
                               channel=channel, outcome=outcome) == count  # fmt: skip
            assert _metric(metrics, "newswatch_channel_pending", kind=kind, channel=channel) == 0

        table = run_newswatch(config_file, "status")
        assert table.returncode == 0, table.stderr
        _assert_channel_table(table.stdout)
    finally:
        store.close()


def _assert_channel_table(output: str) -> None:
    """The Channels table: one line per channel, every line within 80 columns, the
    partner's 404 under it."""
    section = output[output.index("Channels (times UTC)") :].splitlines()
    assert all(len(line) <= 80 for line in section), "\n".join(section)
    # In 80 columns the kind column is the first to go (crawler/faces/cli/status_view.py).
    table = section[section.index(next(line for line in section if line.startswith("─"))) + 1 :]
    rows = [line.split() for line in table[:3]]
    assert rows[0] == ["email", "1", "2024-02-14", "09:05", "0", "0"]
    assert rows[1] == ["team-hook", "1", "2024-02-14", "09:05", "0", "0"]
    assert rows[2][0] == "partner"
    assert rows[2][-6:-2] == ["1", "—", "0", "2"]
    assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d", " ".join(rows[2][-2:]))  # when it was refused
    assert f"  {PARTNER}: webhook {PARTNER}: HTTP 404" in output


def test_the_pending_count_agrees_with_what_the_next_digest_would_hold(
    database_url: str,
) -> None:
    """Copies of a story the reader had are not pending, a revised article they had
    is, on each channel its own ledger; the count equals ``pending_items``."""
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(Config.model_validate({"sources": [
        {"name": "wire", "feed": "https://wire.example/rss"}]}).sources)  # fmt: skip
    try:
        first, copy, revised, fresh = (_ingest(store, n) for n in range(1, 5))
        store.set_stories({copy: first})
        had = [
            i for i in store.pending_items(READER, ["floods"]) if i.article.id in {first, revised}
        ]
        delivery = store.create_delivery(READER, had, "example.org", channel="hook")
        assert delivery is not None
        store.mark_sent(delivery.id, at=NOW)
        article = ExtractedArticle(
            url=f"https://wire.example/{revised}", title="Floods: the port reopens", text=BODY + "!"
        )
        known = KnownArticle(revised, article.url, "", "", 1, revised, frozenset(), None)
        store.save_revision(known, ArticleRecord("wire", article), [], notify=True)

        readers = [("hook", READER, ["floods"]), ("email", READER, ["floods"]),
                   ("hook", "bo@example.com", [])]  # fmt: skip
        states = store.channel_states(readers)
        pending = store.pending_items(READER, ["floods"], channel="hook")
        assert sorted(item.article.id for item in pending) == [revised, fresh]
        assert states["hook"].undelivered == len(pending) == 2
        assert states["hook"].pending == 2  # the delivery was sent: nothing in it waits
        assert states["email"].undelivered == len(store.pending_items(READER, ["floods"])) == 4
        assert (states["hook"].sent, states["hook"].last_sent_at) == (1, NOW)
    finally:
        store.close()


def test_errors_are_redacted_and_removed_channels_still_shown(database_url: str) -> None:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(Config.model_validate({"sources": [
        {"name": "wire", "feed": "https://wire.example/rss"}]}).sources)  # fmt: skip
    try:
        _ingest(store, 1)
        items = store.pending_items(READER, ["floods"], channel="old-chat")
        delivery = store.create_delivery(READER, items, "example.org", channel="old-chat")
        assert delivery is not None
        store.record_send_failure(delivery.id, "chat https://bot:t0ken@chat.example/x: timed out")
        config = Config.model_validate({"rules": [{"name": "floods", "keywords": ["floods"]}]})
        [old] = channel_statuses(store, config)
        assert (old.name, old.kind, old.condition) == ("old-chat", None, "not configured")
        assert old.ledger.last_error == "chat https://***@chat.example/x: timed out"
        assert (old.ledger.unsent, old.ledger.retrying, old.ledger.pending) == (1, 1, 1)
        assert old.ledger.last_error_at == delivery.created_at
        metrics = Metrics(store, config=lambda: config)
        assert (
            _metric(metrics, "newswatch_channel_pending", kind="webhook", channel="old-chat")
            is None
        )
    finally:
        store.close()


@pytest.mark.slow
def test_the_status_page_and_metrics_show_each_channel(
    news_site: NewsSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    team: Receiver,
    partner: Receiver,
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "hook-secret")
    settings = {**site_config(news_site, tmp_path), **_settings(team, partner, tmp_path)}
    settings["sources"] = []  # nothing to crawl: the ledger is filled below
    config_file = write_config(tmp_path, **settings)
    config = load_config(config_file)
    store = Store.from_url(config.database)
    store.upgrade()
    store.sync_sources(Config.model_validate({"sources": [
        {"name": "wire", "feed": "https://wire.example/rss"}]}).sources)  # fmt: skip
    outbox = OutboxDelivery(tmp_path / "outbox")
    _ingest(store, 1)
    send_pending_digests(store, config, outbox, NOW)  # team-hook: 500; partner: 404
    send_pending_digests(store, config, outbox, LATER)  # team-hook: 200
    _ingest(store, 2)  # waiting for the next digest, on every channel
    store.close()

    with running_service(config_file, {"HOOK_SECRET": "hook-secret"}) as service:
        page = service.get("/")
        assert page.status == 200
        section = page.body.split("<h2>Channels</h2>")[1]
        rows = {
            Reply(200, {}, cells[0]).text: [Reply(200, {}, cell).text for cell in cells]
            for cells in (
                re.findall(r"<td.*?</td>", row, re.DOTALL)
                for row in re.findall(r"<tr>.*?</tr>", section, re.DOTALL)[1:]
            )
        }
        assert "<i>" not in section  # the partner's name is text, not markup
        assert "partner &lt;i&gt;hook&lt;/i&gt;" in section
        email, team_row, partner_row = rows["email"], rows["team-hook"], rows[PARTNER]
        assert email[1:4] == ["email", READER, "ok"]
        assert team_row[1:4] == ["webhook", READER, "ok"]
        assert "2024-02-14 09:05" in team_row[4]
        assert team_row[5:8] == ["1", "0", ""]  # the new article pending, no error left
        assert partner_row[1:4] == ["webhook", READER, "refused"]
        assert partner_row[4] == "—"
        assert partner_row[5:7] == ["1", "1"]
        assert f"webhook {PARTNER}: HTTP 404" in partner_row[7]
        assert re.search(r'<span class="badge failing">refused</span>', section)
        assert re.search(r'<span class="badge ok">ok</span>', section)

        def metric(name: str, **labels: str) -> float:
            return service.metric(name, **labels)

        sent = "newswatch_channel_deliveries_total"
        assert metric(sent, kind="webhook", channel="team-hook", outcome="sent") == 1
        assert metric(sent, kind="webhook", channel="team-hook", outcome="failed") == 0
        assert metric(sent, kind="webhook", channel=PARTNER, outcome="failed") == 1
        assert metric(sent, kind="webhook", outcome="sent") == 1  # summed over the kind
        assert metric(sent, kind="email", outcome="sent") == 1
        assert metric("newswatch_channel_pending", kind="webhook") == 2
        assert metric("newswatch_channel_pending", kind="email", channel="email") == 1
    assert "Traceback" not in service.output()


def test_a_rule_channels_held_back_alerts_are_pending_in_its_status(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, team: Receiver
) -> None:
    """A channel only a rule names (ledger recipient ``channel:<name>``) has readers
    too: what its throttle holds back counts as pending, not 0."""
    monkeypatch.setenv("HOOK_SECRET", "hook-secret")
    team.answers.clear()
    config = Config.model_validate(
        {
            "database": database_url,
            "sources": [{"name": "wire", "feed": "https://wire.example/rss"}],
            "rules": [
                {
                    "name": "floods",
                    "keywords": ["floods"],
                    "alert": "immediate",
                    "channels": ["team-hook"],
                },
            ],
            "channels": [
                {
                    "name": "team-hook",
                    "kind": "webhook",
                    "url": team.url(),
                    "secret_env": "HOOK_SECRET",
                    "max_per_minute": 1,
                },
            ],
        }
    )
    store = Store.from_url(database_url)
    try:
        store.upgrade()
        store.sync_sources(config.sources)
        outbox = OutboxDelivery(tmp_path / "outbox")
        _ingest(store, 1)
        assert send_pending_alerts(store, config, outbox, NOW).sent == {"channel:team-hook": 1}
        _ingest(store, 2)
        _ingest(store, 3)
        held = send_pending_alerts(store, config, outbox, NOW + timedelta(seconds=10))
        assert held.retry_at
        assert held.sent == {}
        (status,) = channel_statuses(store, config)
    finally:
        store.close()
    assert status.recipients == ("channel:team-hook",)
    assert (status.ledger.sent, status.ledger.pending) == (1, 2)
    assert len(team.requests) == 1
