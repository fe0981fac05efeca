"""The read-only JSON API (/api/v1/): its listings in the store on SQLite and
PostgreSQL, and the API of a running service over real HTTP on loopback, with the
web UI's token, real stored articles, matches, stories and deliveries."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from conftest import run_newswatch, site_config, write_config
from test_web import HOSTILE_TITLE, TOKEN, RunningService, _wait_for, running_service

from alerts.rules import RuleMatch
from crawler.domain.config import SourceConfig
from crawler.domain.items import ExtractedArticle
from crawler.storage.store import ArticleRecord, Store, TimeWindow

if TYPE_CHECKING:
    from collections.abc import Callable

    from newssite import NewsSite

BEARER = {"Authorization": f"Bearer {TOKEN}"}
START = datetime(2024, 2, 1, 6, 0, tzinfo=UTC)


def _record(n: int, source: str = "wire", title: str | None = None) -> ArticleRecord:
    return ArticleRecord(
        source,
        ExtractedArticle(
            url=f"https://news.example/{source}/{n}",
            title=title or f"Story {n}",
            text=f"Body of story {n}, long enough to tell apart from the others.",
            published=START + timedelta(hours=n),
        ),
    )


def _fill(store: Store) -> list[datetime]:
    """Three batches of matched articles (a batch shares its match time, so ties are
    broken by id), a story of three copies, and three deliveries: sent, refused and
    pending. Returns the times between the batches."""
    store.sync_sources(
        [
            SourceConfig(name="wire", feed="https://news.example/rss.xml"),
            SourceConfig(name="other", feed="https://other.example/rss.xml"),
        ]
    )
    marks = []
    n = 0
    for batch in range(3):
        marks.append(datetime.now(UTC))
        rows = []
        for _ in range(5):
            n += 1
            matches = [RuleMatch("syria", ("Palmyra",))]
            if n % 2 == 0:
                matches.append(RuleMatch("chips", ("memory chip",)))
            rows.append((_record(n, "other" if n % 3 == 0 else "wire"), matches))
        if batch == 2:
            rows.append((_record(99, title=HOSTILE_TITLE), [RuleMatch("hostile", ("siege",))]))
        store.insert_articles(rows)
    marks.append(datetime.now(UTC))
    # Stories 1 and 2 and an unmatched copy become copies of story 1.
    [copy] = store.insert_articles([(_record(50, "other"), [])])
    by_url = {a.url: a.id for a in store.articles()}
    first = by_url["https://news.example/wire/1"]
    assert copy is not None
    store.set_stories({by_url["https://news.example/wire/2"]: first, copy: first})
    for recipient in ("ana@example.com", "bo@example.com", "cy@example.com"):
        items = store.pending_items(recipient, ["syria"])
        delivery = store.create_delivery(recipient, items, "example.com")
        assert delivery is not None
        if recipient == "ana@example.com":
            store.mark_sent(delivery.id)
        elif recipient == "bo@example.com":
            store.mark_failed(delivery.id, "HTTP 404 from https://user:pw@hook.example/x")
    return marks


def _walk(read: Callable[[Any], Any]) -> list[list[Any]]:
    """Every page of a listing, following its keys."""
    pages, key = [], None
    while True:
        page = read(key)
        pages.append(page.rows)
        if page.next_key is None:
            return pages
        assert len(pages) < 100, "the listing never ends"
        key = page.next_key


def test_listings_walk_every_row_once(database_url: str) -> None:
    store = Store.from_url(database_url)
    store.upgrade()
    marks = _fill(store)

    # Matches: 15 + 7 (chips) + 1 (hostile), newest first, ties broken by id.
    pages = _walk(lambda key: store.match_page(after=key, limit=4))
    rows = [row for page in pages for row in page]
    assert [len(page) for page in pages] == [4, 4, 4, 4, 4, 3]
    assert len({row["id"] for row in rows}) == len(rows) == 23
    order = [(row["matched_at"], row["id"]) for row in rows]
    assert order == sorted(order, reverse=True)
    assert {row["rule"] for row in rows} == {"syria", "chips", "hostile"}

    chips = [
        row
        for page in _walk(lambda key: store.match_page(rules=["chips"], after=key, limit=2))
        for row in page
    ]
    assert len(chips) == 7
    assert {row["rule"] for row in chips} == {"chips"}
    both = store.match_page(rules=["chips", "hostile"], limit=500).rows
    assert len(both) == 8
    middle = store.match_page(window=TimeWindow(marks[1], marks[2]), limit=500).rows
    assert sorted(row["title"] for row in middle if row["rule"] == "syria") == [
        f"Story {n}" for n in (10, 6, 7, 8, 9)
    ]
    assert store.match_page(window=TimeWindow(since=marks[3]), limit=5).rows == []
    # A story's copies share its id.
    by_title = {row["title"]: row for row in rows}
    assert by_title["Story 2"]["story_id"] == by_title["Story 1"]["story_id"]
    assert by_title["Story 3"]["source"] == "other"

    # Stories: 16 matched stories less the one that joined story 1.
    story_pages = _walk(lambda key: store.story_page(after=key, limit=3))
    stories = [story for page in story_pages for story in page]
    assert len({story["id"] for story in stories}) == len(stories) == 15
    seen = [(story["last_seen"], story["id"]) for story in stories]
    assert seen == sorted(seen, reverse=True)
    [grouped] = [story for story in stories if len(story["articles"]) > 1]
    assert [a["title"] for a in grouped["articles"]] == ["Story 1", "Story 2", "Story 50"]
    assert grouped["rules"] == ["chips", "syria"]
    assert grouped["first_seen"] <= grouped["last_seen"]
    assert len(store.story_page(rules=["hostile"], limit=50).rows) == 1
    assert store.story(grouped["id"]) == {**grouped}
    assert store.story(10**12) is None

    # Sources: only those asked for, by name.
    source_pages = _walk(lambda key: store.source_page(["wire", "other"], after=key, limit=1))
    assert [[row["name"] for row in page] for page in source_pages] == [["other"], ["wire"]]
    assert source_pages[1][0]["articles"] == 11

    # Deliveries, with filters.
    ledger = [
        row for page in _walk(lambda key: store.delivery_page(after=key, limit=2)) for row in page
    ]
    assert [row["recipient"] for row in ledger] == [
        "cy@example.com",
        "bo@example.com",
        "ana@example.com",
    ]
    assert ledger[2]["articles"] == 15
    assert ledger[2]["sent_at"] is not None
    assert ledger[1]["failed_at"] is not None
    [bo] = store.delivery_page(recipient="bo@example.com").rows
    assert bo["last_error"].startswith("HTTP 404")
    assert store.delivery_page(channel="team-hook").rows == []
    assert len(store.delivery_page(kind="digest", window=TimeWindow(since=marks[0])).rows) == 3
    store.close()


# -- the API of a running service ----------------------------------------------------


def _json(service: RunningService, path: str, status: int = 200) -> Any:
    reply = service.request(path, headers=BEARER)
    assert reply.status == status, (path, reply.status, reply.body[:300])
    assert reply.headers["content-type"] == "application/json", path
    assert "<" not in reply.body  # markup in titles goes as \u003c escapes
    return json.loads(reply.body)


def _all_pages(service: RunningService, path: str) -> list[list[dict[str, Any]]]:
    pages = []
    while path:
        body = _json(service, path)
        pages.append(body["data"])
        path = body["next"]
        if path:
            assert "token" not in path
            assert TOKEN not in path
        assert len(pages) < 100
    return pages


def _error(service: RunningService, path: str, status: int = 400) -> dict[str, Any]:
    error = _json(service, path, status)["error"]
    assert set(error) >= {"code", "message"}
    return error


@pytest.mark.slow
def test_the_api_of_a_running_service(
    news_site: NewsSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSWATCH_TEST_TOKEN", TOKEN)
    settings = site_config(news_site, tmp_path)
    settings["web"] = {"port": 0, "token_env": "NEWSWATCH_TEST_TOKEN"}
    # A rule's name may hold a comma: it is taken whole, not as a list.
    settings["rules"].append({"name": "museum, reopening", "keywords": ["museum"]})
    settings["sources"].append(
        {"name": "wire", "feed": "https://news.example/rss.xml", "enabled": False}
    )
    store = Store.from_url(settings["database"])
    store.upgrade()
    marks = _fill(store)
    store.close()
    config = write_config(tmp_path, **settings)
    with running_service(config) as service:
        _wait_for(
            lambda: len(_json(service, "/api/v1/matches?rule=syria,chips&limit=500")["data"]) >= 26,
            60,
            "the crawl's matches",
        )
        _wait_for(
            lambda: all(
                source["last_poll"]
                for source in _json(service, "/api/v1/sources")["data"]
                if source["name"] != "wire"
            ),
            60,
            "both polls to be recorded",
        )
        # The token, as for every page.
        for path in ("/api/v1/", "/api/v1/matches", "/api/v1/stories/1", "/api/v1/nope"):
            assert service.get(path).status == 401, path
            assert service.request(path, headers={"Authorization": "Bearer wrong"}).status == 401
        index = _json(service, "/api/v1/")
        assert index["version"] == "v1"
        assert {e["path"] for e in index["endpoints"]} >= {
            "/api/v1/matches",
            "/api/v1/stories",
            "/api/v1/stories/{id}",
            "/api/v1/sources",
            "/api/v1/deliveries",
        }
        assert _json(service, "/api/v1") == index

        # Matches: every one exactly once across small pages, newest first.
        pages = _all_pages(service, "/api/v1/matches?limit=3")
        matches = [row for page in pages for row in page]
        assert all(len(page) == 3 for page in pages[:-1])
        museums = [m for m in matches if m["rule"] == "museum, reopening"]
        assert museums
        assert len({m["id"] for m in matches}) == len(matches) == 23 + 4 + len(museums)
        times = [datetime.fromisoformat(m["matched_at"]) for m in matches]
        assert times == sorted(times, reverse=True)
        assert all(m["matched_at"].endswith("+00:00") for m in matches)
        museum = next(
            m for m in matches if "museum" in m["article"]["title"] and m["rule"] == "syria"
        )
        assert museum["rule"] == "syria"
        assert museum["terms"] == ["Palmyra"]
        assert museum["article"]["url"] == news_site.url("articles/palmyra-museum.html")
        assert museum["article"]["source"] == "world"
        assert museum["article"]["published"].endswith("+00:00")
        assert isinstance(museum["article"]["story_id"], int)
        [hostile] = [m for m in matches if m["rule"] == "hostile"]
        assert hostile["article"]["title"] == HOSTILE_TITLE  # data, exactly as stored

        # Filters: rules (a comma list or repeated), and a time window.
        chips = _all_pages(service, "/api/v1/matches?rule=chips&limit=2")
        assert {m["rule"] for page in chips for m in page} == {"chips"}
        assert sum(len(page) for page in chips) == 7 + 1
        assert len(_json(service, "/api/v1/matches?rule=chips&rule=hostile&limit=500")["data"]) == 9
        named = _json(service, f"/api/v1/matches?rule={quote('museum, reopening')}&limit=500")
        assert named["data"] == museums
        window = f"since={quote(marks[1].isoformat())}&until={quote(marks[2].isoformat())}"
        middle = _json(service, f"/api/v1/matches?rule=syria&{window}")["data"]
        assert sorted(m["article"]["title"] for m in middle) == sorted(
            f"Story {n}" for n in range(6, 11)
        )
        later = _all_pages(service, f"/api/v1/matches?since={quote(marks[3].isoformat())}&limit=1")
        assert len([m for page in later for m in page]) == 4 + len(museums)  # the crawl's own
        # The next page's URL keeps the filters.
        first = _json(service, "/api/v1/matches?rule=syria&limit=2")
        following = parse_qs(urlsplit(first["next"]).query)
        assert following["rule"] == ["syria"]
        # Sources take no filters: they ignore one.
        assert _json(service, "/api/v1/sources?since=bad")["data"]
        assert following["limit"] == ["2"]

        # Stories, with their copies and rules.
        stories = [s for page in _all_pages(service, "/api/v1/stories?limit=4") for s in page]
        assert len({s["id"] for s in stories}) == len(stories)
        [grouped] = [s for s in stories if len(s["articles"]) == 3]
        assert [a["url"] for a in grouped["articles"]] == [
            f"https://news.example/{source}/{n}"
            for source, n in (("wire", 1), ("wire", 2), ("other", 50))
        ]
        assert grouped["rules"] == ["chips", "syria"]
        assert grouped["title"] == "Story 1"
        assert grouped["first_seen"] <= grouped["last_seen"]
        assert _json(service, f"/api/v1/stories/{grouped['id']}")["data"] == grouped
        assert {s["id"] for s in _json(service, "/api/v1/stories?rule=hostile")["data"]} == {
            hostile["article"]["story_id"]
        }
        assert _error(service, "/api/v1/stories/999999999", 404)["code"] == "not_found"
        assert _error(service, "/api/v1/stories/abc", 404)["code"] == "not_found"
        assert _error(service, "/api/v1/stories/99999999999", 404)["code"] == "not_found"

        # Sources: the configured ones, by name, their state.
        sources = [s for page in _all_pages(service, "/api/v1/sources?limit=1") for s in page]
        assert [s["name"] for s in sources] == ["tech", "wire", "world"]  # not "other"
        world = sources[2]
        assert world["last_poll"] is not None
        assert world["consecutive_failures"] == 0
        assert world["articles"] == 3
        assert world["enabled"] is True
        assert sources[1]["enabled"] is False
        assert sources[1]["articles"] == 11

        # Deliveries: the ledger, redacted errors, filters.
        run = run_newswatch(config, "digest")
        assert run.returncode == 0, run.stderr
        ledger = [d for page in _all_pages(service, "/api/v1/deliveries?limit=2") for d in page]
        assert [d["recipient"] for d in ledger] == [
            "analyst@example.com",
            "cy@example.com",
            "bo@example.com",
            "ana@example.com",
        ]
        assert [d["state"] for d in ledger] == ["sent", "pending", "failed", "sent"]
        assert ledger[0]["channel"] == "email"
        assert ledger[0]["articles"] >= 4
        assert "pw" not in ledger[2]["last_error"]
        assert "***" in ledger[2]["last_error"]
        [bo] = _json(service, "/api/v1/deliveries?recipient=bo%40example.com")["data"]
        assert bo["failed"] is not None
        assert _json(service, "/api/v1/deliveries?channel=hook")["data"] == []

        # Bad requests: 400 naming the parameter; unknown paths and methods.
        for path, parameter in (
            ("/api/v1/matches?limit=0", "limit"),
            ("/api/v1/matches?limit=501", "limit"),
            ("/api/v1/stories?limit=ten", "limit"),
            ("/api/v1/matches?since=yesterday", "since"),
            ("/api/v1/deliveries?until=2024-13-01", "until"),
            ("/api/v1/matches?since=2024-02-01T00:00:00+01:00", "since"),  # + unescaped
            ("/api/v1/matches?cursor=not-a-cursor", "cursor"),
            ("/api/v1/sources?cursor=%FF%FE", "cursor"),
            ("/api/v1/matches?cursor=" + base64.urlsafe_b64encode(b"[" * 1400).decode(), "cursor"),
            ("/api/v1/stories?rule=syria,%00", "rule"),  # PostgreSQL takes no NUL
            ("/api/v1/deliveries?recipient=ana%00%40example.com", "recipient"),
        ):
            error = _error(service, path)
            assert (error["code"], error["parameter"]) == ("bad_parameter", parameter), path
        assert (
            "%2B" in _error(service, "/api/v1/matches?since=2024-02-01T00:00:00+01:00")["message"]
        )
        cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
        assert _error(service, f"/api/v1/deliveries?cursor={cursor}")["parameter"] == "cursor"
        assert _error(service, f"/api/v1/matches?cursor={cursor[:-3]}")["parameter"] == "cursor"
        huge = base64.urlsafe_b64encode(b'{"list":"matches","t":"2024-02-01","id":99999999999}')
        assert _error(service, f"/api/v1/matches?cursor={huge.decode()}")["parameter"] == "cursor"
        assert _error(service, "/api/v1/no/such/thing", 404)["code"] == "not_found"
        for method in ("POST", "DELETE", "PUT"):
            refused = service.request("/api/v1/matches", method, headers=BEARER)
            assert refused.status == 405, method
            assert refused.headers["allow"] == "GET, HEAD"
        head = service.request("/api/v1/matches", "HEAD", headers=BEARER)
        assert head.status == 200
        assert head.body == ""
    assert "Traceback" not in service.output()
