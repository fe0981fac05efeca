"""Each bad health state detected on the fixture site on loopback, through the real
poll path (`newswatch crawl`, one poll each), with its reason and evidence as
`newswatch status --json` reports them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import run_newswatch, site_config, write_config
from newssite import NewsSite, Reply

if TYPE_CHECKING:
    from pathlib import Path as PathType

CHALLENGES = Path(__file__).parent / "fixtures" / "challenges"


def _config(site: NewsSite, folder: PathType, sources: list[dict[str, Any]]) -> PathType:
    return write_config(folder, **site_config(site, folder, sources=sources))


def _poll(config: PathType, times: int = 1) -> None:
    for _ in range(times):
        result = run_newswatch(config, "crawl")
        assert "Traceback" not in result.stderr, result.stderr


def _health(config: PathType) -> dict[str, dict[str, Any]]:
    status = run_newswatch(config, "status", "--json")
    assert status.returncode == 0, status.stderr
    return {row["name"]: row for row in json.loads(status.stdout)["sources"]}


def _operated(
    site: NewsSite, folder: PathType, source: dict[str, Any], receiver: Any, *, min_gap: str
) -> PathType:
    """A config polling ``source`` every second whose operators are ops@example.org
    and the webhook ``receiver`` (its secret in $OPS_KEY)."""
    hook = {"name": "ops-room", "kind": "webhook", "url": receiver.url(), "secret_env": "OPS_KEY"}
    settings = site_config(
        site,
        folder,
        sources=[source],
        max_backoff="1s",
        channels=[hook],
        operators={"recipients": ["ops@example.org"], "channels": ["ops-room"], "min_gap": min_gap},
    )
    return write_config(folder, **settings)


def _notices(outbox: PathType) -> list[str]:
    """The text of each message to the operators in ``outbox``, oldest first."""
    import email
    import email.policy

    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == "ops@example.org":
            found.append(message.get_content())  # type: ignore[attr-defined]
    return found


def test_a_403_feed_is_blocked_at_the_second_refused_poll(
    news_site: NewsSite, tmp_path: PathType
) -> None:
    config = _config(
        news_site, tmp_path, [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    )
    _poll(config)
    assert _health(config)["world"]["state"] == "ok"
    news_site.script("world/rss.xml", [Reply(403), Reply(403), Reply(200)])
    _poll(config)
    assert _health(config)["world"]["state"] == "ok"  # one refusal is chance
    _poll(config)
    world = _health(config)["world"]
    assert world["state"] == "blocked"
    assert world["state_reason"] == "refused by the site (HTTP 403) 2 polls in a row"
    assert world["evidence"]["statuses"] == [403]
    _poll(config)  # the site serves the feed again
    assert _health(config)["world"]["state"] == "ok"


def test_a_challenge_page_blocks_the_source_and_is_never_stored(
    news_site: NewsSite, tmp_path: PathType
) -> None:
    page = (CHALLENGES / "cloudflare-connection-secure.html").read_bytes()
    config = _config(
        news_site, tmp_path, [{"name": "world", "feed": news_site.url("world/rss.xml")}]
    )
    news_site.script("world/rss.xml", [Reply(200, body=page)])
    _poll(config, times=2)
    world = _health(config)["world"]
    assert world["state"] == "blocked"
    assert "bot challenge" in world["state_reason"]
    assert world["articles"] == 0


def test_a_permanent_redirect_moves_and_a_410_is_gone(
    news_site: NewsSite, tmp_path: PathType
) -> None:
    sources = [
        {"name": "world", "feed": news_site.url("world/rss.xml")},
        {"name": "old", "feed": news_site.url("old/rss.xml")},
    ]
    config = _config(news_site, tmp_path, sources)
    target = news_site.url("tech/atom.xml")
    news_site.script("world/rss.xml", [Reply(301, headers={"Location": target})])
    news_site.script("old/rss.xml", [Reply(410)])
    _poll(config)
    health = _health(config)
    assert health["world"]["state"] == "moved"
    assert health["world"]["state_reason"] == (
        f"moved permanently to {target}: update the configuration"
    )
    assert health["world"]["evidence"]["moved_to"] == target
    assert health["old"]["state"] == "moved"
    assert health["old"]["state_reason"] == "gone: the source URL answers 410"


def test_a_dead_server_is_failing_after_three_polls(
    tmp_path: PathType, news_site: NewsSite
) -> None:
    config = _config(news_site, tmp_path, [{"name": "dead", "feed": "http://127.0.0.1:9/rss.xml"}])
    _poll(config, times=2)
    assert _health(config)["dead"]["state"] == "ok"
    _poll(config)
    dead = _health(config)["dead"]
    assert dead["state"] == "failing"
    assert dead["state_reason"] == "3 failed polls in a row (cannot connect)"
    assert dead["evidence"]["class"] == "connect"


def test_a_template_change_that_empties_the_bodies_degrades_the_source(
    news_site: NewsSite, tmp_path: PathType
) -> None:
    config = _config(
        news_site, tmp_path, [{"name": "daily", "feed": news_site.url("daily/rss.xml")}]
    )
    good = " ".join(["The council voted on the new harbour plan after a long debate."] * 20)

    def publish(names: list[str], body: str) -> None:
        items = "".join(
            f"<item><title>Story {name}</title><link>{news_site.url(f'daily/{name}.html')}</link>"
            f"<pubDate>Tue, 13 Feb 2024 10:00:00 GMT</pubDate></item>"
            for name in names
        )
        news_site.set_content(
            "daily/rss.xml",
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Daily</title>{items}'
            "</channel></rss>".encode(),
            "application/rss+xml",
        )
        for name in names:
            news_site.set_content(
                f"daily/{name}.html",
                f"<html><head><title>Story {name}</title>"
                '<meta property="article:published_time" content="2024-02-13T10:00:00Z">'
                f"</head><body><article><h1>Story {name}</h1>"
                f"<p>{body and f'{body} ({name})'}</p></article>"
                "</body></html>".encode(),
                "text/html",
            )

    publish([f"a{n}" for n in range(12)], good)  # its baseline: pages with their text
    _poll(config)
    assert _health(config)["daily"]["state"] == "ok"
    publish([f"b{n}" for n in range(6)], "")  # the new template: no article text
    _poll(config)
    daily = _health(config)["daily"]
    assert daily["state"] == "degraded"
    assert daily["evidence"]["no_body"] == 6
    assert "did the page template change?" in daily["state_reason"]


def test_the_running_service_tells_operators_once_by_email_and_webhook(
    news_site: NewsSite, tmp_path: PathType
) -> None:
    """The whole path: `newswatch run` polls a feed that starts refusing it; the
    operators get one message on each channel when it is blocked, with the evidence,
    none while it stays blocked, and one when it recovers."""

    from receivers import Receiver
    from test_web import _wait_for, running_service

    receiver = Receiver().start()
    source = {"name": "world", "feed": news_site.url("world/rss.xml"), "every": "1s"}
    config = _operated(news_site, tmp_path, source, receiver, min_gap="1s")

    def notices() -> list[str]:
        return _notices(tmp_path / "outbox")

    news_site.script("world/rss.xml", [Reply(200), Reply(403)])  # then 403 at every poll
    try:
        with running_service(config, env={"OPS_KEY": "k" * 32}):
            _wait_for(lambda: len(notices()) >= 1, 60, "the operators' notice")
            (blocked,) = notices()
            assert "world is blocked" in blocked
            assert "refused by the site (HTTP 403)" in blocked
            assert "statuses: [403]" in blocked
            _wait_for(lambda: len(receiver.requests) >= 1, 30, "the webhook notice")
            payload = json.loads(receiver.requests[0][2])
            assert payload["kind"] == "health"
            assert payload["sections"][0]["entries"][0]["title"] == "world is blocked"
            polls = len(news_site.requests_for("world/rss.xml"))
            _wait_for(
                lambda: len(news_site.requests_for("world/rss.xml")) >= polls + 3,
                60,
                "three more refused polls",
            )
            assert len(notices()) == 1  # still blocked: nothing new to say
            news_site.script("world/rss.xml", [Reply(200)])
            _wait_for(lambda: len(notices()) >= 2, 60, "the recovery notice")
            assert "world recovered: ok again (was blocked)" in notices()[1]
            _wait_for(lambda: len(receiver.requests) >= 2, 30, "the webhook's recovery notice")
    finally:
        receiver.stop()
    assert len(notices()) == len(receiver.requests) == 2


@pytest.mark.parametrize("state", ["quiet", "failing", "degraded", "moved"])
def test_the_running_service_tells_operators_of_each_state_once(
    state: str, news_site: NewsSite, tmp_path: PathType
) -> None:
    """`newswatch run` on the fixture site: a source that goes quiet (its own
    quiet_after), fails (the feed turns into a page that is no feed), degrades (its
    pages lose their text) or moves (301) is told to the operators once, with the
    evidence, by email and on the webhook channel."""

    from receivers import Receiver
    from test_web import _wait_for, running_service

    feed = news_site.url("world/rss.xml")
    source: dict[str, Any] = {"name": "world", "feed": feed, "every": "1s"}
    if state == "quiet":
        source["quiet_after"] = "4s"
    elif state == "failing":
        news_site.script("world/rss.xml", [Reply(200, body=b"<html><p>Not a feed</p></html>")])
    elif state == "moved":
        target = news_site.url("tech/atom.xml")
        news_site.script("world/rss.xml", [Reply(301, headers={"Location": target})])
    else:  # degraded: after a first poll of pages with text, pages without any

        def publish(prefix: str, body: str) -> None:
            items = "".join(
                f"<item><title>Story {prefix}{n}</title>"
                f"<link>{news_site.url(f'daily/{prefix}{n}.html')}</link></item>"
                for n in range(8)
            )
            news_site.set_content(
                "world/rss.xml",
                f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>{items}'
                "</channel></rss>".encode(),
                "application/rss+xml",
            )
            for n in range(8):
                news_site.set_content(
                    f"daily/{prefix}{n}.html",
                    f"<html><head><title>Story {prefix}{n}</title>"
                    '<meta property="article:published_time" content="2024-02-13T10:00:00Z">'
                    "</head><body><article>"
                    f"<h1>Story {prefix}{n}</h1><p>{body and f'{body} ({n})'}</p>"
                    "</article></body></html>".encode(),
                    "text/html",
                )

        publish("a", " ".join(["The harbour council met to vote on the new plan."] * 20))
    receiver = Receiver().start()
    config = _operated(news_site, tmp_path, source, receiver, min_gap="1h")

    def notices() -> list[str]:
        return _notices(tmp_path / "outbox")

    try:
        with running_service(config, env={"OPS_KEY": "k" * 32}):
            if state == "degraded":  # the first poll stores the pages with text
                _wait_for(
                    lambda: all(news_site.requests_for(f"daily/a{n}.html") for n in range(8)),
                    60,
                    "the first poll's pages",
                )
                publish("b", "")
            _wait_for(lambda: len(notices()) >= 1, 90, f"the operators' notice ({state})")
            _wait_for(lambda: len(receiver.requests) >= 1, 30, "the webhook notice")
            polls = len(news_site.requests_for("world/rss.xml"))
            _wait_for(
                lambda: len(news_site.requests_for("world/rss.xml")) >= polls + 3,
                60,
                "three more polls",
            )
    finally:
        receiver.stop()
    (notice,) = notices()  # once, however many polls saw it
    assert f"world is {state}" in notice
    assert "Evidence:" in notice
    expected = {
        "quiet": "quiet after hours",
        "failing": "class: unparseable",
        "degraded": "no body: ",
        "moved": f"moved to: {news_site.url('tech/atom.xml')}",
    }[state]
    assert expected in notice, notice
    (request,) = receiver.requests
    assert json.loads(request[2])["sections"][0]["entries"][0]["title"] == f"world is {state}"


def test_a_weekday_sources_silence_is_quiet_on_a_tuesday_not_at_the_weekend(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the store, with the test's clock: four weeks of a wire that publishes
    on weekdays; its health is assessed from what the store kept."""
    from datetime import UTC, datetime, timedelta

    from crawler.domain.config import Config
    from crawler.domain.items import ArticleItem, ExtractedArticle
    from crawler.orchestration.health import update_health
    from crawler.orchestration.ingest import ingest_article
    from crawler.storage.store import Store

    config = Config.model_validate(
        {"sources": [{"name": "wire", "feed": "https://wire.example/rss", "every": "15m"}]}
    )
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(config.sources)
    monday = datetime(2024, 3, 4, tzinfo=UTC)
    try:
        n = 0
        day = monday
        while day < monday + timedelta(weeks=4):
            for hour in range(8, 18) if day.weekday() < 5 else ():
                for minute in (5, 35):
                    seen = day.replace(hour=hour, minute=minute)
                    monkeypatch.setattr("crawler.storage.articles.utcnow", lambda seen=seen: seen)
                    url = f"https://wire.example/{n}"
                    body = f"Report number {n} from the wire desk, filed at {seen:%H:%M}. " * 5
                    article = ExtractedArticle(
                        url=url, title=f"Report {n}", text=body, published=seen
                    )
                    ingest_article(store, ArticleItem("wire", url, article), [])
                    n += 1
            day += timedelta(days=1)
        source = config.source("wire")
        next_monday = monday + timedelta(weeks=4)  # nothing since Friday 17:35
        # The weekend and Monday before 08:00 are the wire's rhythm: not quiet.
        for at in (next_monday - timedelta(hours=12), next_monday + timedelta(hours=7, minutes=55)):
            change = update_health(store, source, at)
            assert change is not None
            assert change.now.state.value == "ok", (at, change.now.reason)
        # Still silent on Monday morning: about 2 an hour were due from 08:00 (and a
        # little around the edges, as the hourly rates are smoothed): at 09:00 about 3
        # expected, not yet quiet; by 10:00 past 4.6, quiet.
        at_nine = update_health(store, source, next_monday + timedelta(hours=9))
        assert at_nine is not None
        assert at_nine.now.state.value == "ok"
        change = update_health(store, source, next_monday + timedelta(hours=10))
        assert change is not None
        assert change.now.state.value == "quiet"
        assert "its rhythm expects" in change.now.reason
        assert change.now.evidence["history_articles"] > 200
    finally:
        store.close()
