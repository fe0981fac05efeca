"""The web UI's stories, a story's page and the filtered matches page (issue 23):
the store's queries on both databases, then the pages of a running service whose
database the test wrote beforehand, read in headless Chromium."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from conftest import ARTIFACTS, site_config, write_config
from test_web import running_service

from alerts.rules import RuleMatch
from crawler.domain.config import Config, SourceConfig
from crawler.domain.items import ExtractedArticle
from crawler.storage.store import ArticleRecord, MatchFilter, Store, TimeWindow

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

DAM = "Dam on the Mekong breaks after days of rain"
DAM_COPY = "Mekong dam breaks, villages flooded"
DAM_BEFORE = "Dam on the Mekong under strain"
HOSTILE = '<script>alert("t")</script> Mekong temple <img src=x onerror=alert(1)>'
CUP = "Damascus side wins cup final in extra time"
EVIL = "evil<b>outlet</b>"
FILLERS = 27  # unmatched stories, so that the stories page has a second page
ANA = "ana@example.com"
BEN = "ben@example.com"
SENT_AT = datetime(2024, 2, 14, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seeded:
    dam: int  # the story of the wire's article and the daily's copy (sent to ana)
    temple: int  # the hostile article on its own (matched by both rules, pending)
    cup: int


def _record(source: str, slug: str, title: str, published: datetime) -> ArticleRecord:
    return ArticleRecord(
        source,
        ExtractedArticle(
            url=f"https://{source.replace('<', '').replace('>', '').replace('/', '')}"
            f".example/{slug}",
            title=title,
            text=f"{title}. Villages along the river were evacuated on Wednesday. " * 5,
            published=published,
        ),
    )


def seed(store: Store, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    """Three stories a reader would see and fillers: the dam story (two outlets, a
    revision, sent to ana), the hostile temple article (both rules, nothing sent) and
    the cup final (no rule). The store's clock is the test's, so that each is first
    seen and matched at a known time."""
    store.upgrade()
    store.sync_sources(
        [
            SourceConfig(name=name, feed=f"https://{n}.example/rss.xml")
            for n, name in enumerate(("wire", "daily", EVIL))
        ]
    )

    def at(moment: datetime) -> None:
        monkeypatch.setattr("crawler.storage.articles.utcnow", lambda: moment)

    for n in range(FILLERS):
        moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=n)
        at(moment)
        store.insert_article(_record("wire", f"filler-{n}", f"Weather report {n}", moment), [])
    at(datetime(2024, 2, 10, 10, 0, tzinfo=UTC))
    [temple] = store.insert_articles(
        [
            (
                _record(EVIL, "temple", HOSTILE, datetime(2024, 2, 10, 9, tzinfo=UTC)),
                [RuleMatch("mekong", ("Mekong",)), RuleMatch("heritage", ("temple",))],
            )
        ]
    )
    at(datetime(2024, 2, 12, 10, 0, tzinfo=UTC))
    [cup] = store.insert_articles(
        [(_record("daily", "cup", CUP, datetime(2024, 2, 12, 9, tzinfo=UTC)), [])]
    )
    at(datetime(2024, 2, 14, 8, 0, tzinfo=UTC))
    [dam] = store.insert_articles(
        [
            (
                _record("wire", "dam", DAM_BEFORE, datetime(2024, 2, 14, 7, tzinfo=UTC)),
                [RuleMatch("mekong", ("Mekong",))],
            )
        ]
    )
    at(datetime(2024, 2, 14, 8, 30, tzinfo=UTC))
    [copy] = store.insert_articles(
        [
            (
                _record("daily", "dam-copy", DAM_COPY, datetime(2024, 2, 14, 7, 30, tzinfo=UTC)),
                [RuleMatch("mekong", ("Mekong", "dam"))],
            )
        ]
    )
    assert dam is not None
    assert copy is not None
    assert temple is not None
    assert cup is not None
    store.set_stories({copy: dam})
    at(datetime(2024, 2, 14, 9, 0, tzinfo=UTC))
    known = store.find_article(["https://wire.example/dam"], None)
    assert known is not None
    store.save_revision(
        known,
        _record("wire", "dam", DAM, datetime(2024, 2, 14, 7, tzinfo=UTC)),
        [],
        notify=False,
    )
    items = [
        item
        for item in store.pending_items(ANA, ["mekong"], now=SENT_AT)
        if item.article.story_id == dam
    ]
    delivery = store.create_delivery(ANA, items, "example.com")
    assert delivery is not None
    store.mark_sent(delivery.id, SENT_AT)
    return Seeded(dam=dam, temple=temple, cup=cup)


# -- the store's queries ------------------------------------------------------------


def test_stories_and_filtered_matches_from_the_store(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.from_url(database_url)
    seeded = seed(store, monkeypatch)

    first = store.story_list(limit=2)
    assert [story.id for story in first.stories] == [seeded.dam, seeded.cup]
    dam = first.stories[0]
    assert dam.title == DAM  # the earliest published copy's, at its newest revision
    assert [copy.source for copy in dam.copies] == ["wire", "daily"]
    assert dam.outlets == ("wire", "daily")
    assert dam.rules == ("mekong",)
    assert dam.earlier_revisions == 1
    assert [(s.recipient, s.sent_at) for s in dam.sendings] == [(ANA, SENT_AT)] * 2
    assert dam.revisions == ()  # only the story's own page reads them
    assert first.next_key is not None
    second = store.story_list(after=first.next_key, limit=2)
    assert second.stories[0].id == seeded.temple
    assert second.stories[0].rules == ("heritage", "mekong")
    assert second.stories[0].sendings == ()
    everything = store.story_list(limit=100)
    assert len(everything.stories) == FILLERS + 3
    assert everything.next_key is None

    assert [s.id for s in store.story_list(matched_only=True).stories] == [
        seeded.dam,
        seeded.temple,
    ]
    assert [s.id for s in store.story_list(rule="heritage").stories] == [seeded.temple]
    assert store.story_list(rule="nonexistent").stories == []

    whole = store.story_record(seeded.dam)
    assert whole is not None
    assert [(r.revision, r.title) for r in whole.revisions] == [(1, DAM_BEFORE)]
    assert store.story_record(10**9) is None
    assert store.story_record(0) is None

    def titles(**wanted: Any) -> list[tuple[str, str]]:
        return [
            (match.rule, match.title)
            for match in store.filtered_matches(MatchFilter(**wanted), per_rule=50)
        ]

    assert titles() == [
        ("heritage", HOSTILE),
        ("mekong", DAM_COPY),
        ("mekong", DAM),
        ("mekong", HOSTILE),
    ]
    # The daily's copy was never in a delivery itself, but its story went to ana.
    assert titles(state="sent") == [("mekong", DAM_COPY), ("mekong", DAM)]
    assert titles(state="pending") == [("heritage", HOSTILE), ("mekong", HOSTILE)]
    assert titles(state="sent", recipient=BEN) == []
    # Nothing went to ben (the page asks only for the rules he reads).
    assert titles(state="pending", recipient=BEN) == titles()
    assert titles(state="sent", recipient=ANA) == titles(state="sent")
    assert titles(source="daily") == [("mekong", DAM_COPY)]
    assert titles(rules=("heritage",)) == [("heritage", HOSTILE)]
    assert titles(window=TimeWindow(since=datetime(2024, 2, 12, tzinfo=UTC))) == [
        ("mekong", DAM_COPY),
        ("mekong", DAM),
    ]
    assert titles(window=TimeWindow(until=datetime(2024, 2, 12, tzinfo=UTC))) == [
        ("heritage", HOSTILE),
        ("mekong", HOSTILE),
    ]
    [latest] = store.filtered_matches(MatchFilter(rules=("mekong",)), per_rule=1)
    assert (latest.title, latest.story_id, latest.outlets) == (DAM_COPY, seeded.dam, 2)
    sendings = store.story_sendings([seeded.dam, seeded.temple, seeded.dam])
    assert list(sendings) == [seeded.dam]
    store.close()


# -- the pages, in a browser --------------------------------------------------------


def _settings(news_site: NewsSite, tmp_path: Path) -> dict[str, Any]:
    settings = site_config(news_site, tmp_path)
    settings["sources"] = [
        {"name": name, "feed": news_site.url("world/rss.xml"), "enabled": False}
        for name in ("wire", "daily", EVIL)
    ]
    settings["rules"] = [
        {"name": "mekong", "keywords": ["Mekong"]},
        {"name": "heritage", "keywords": ["temple"]},
    ]
    # No digest falls due while the test reads the pages.
    settings["digest"] = {"schedule": "0 0 1 1 *", "timezone": "Asia/Kolkata"}
    settings["recipients"] = [
        {"email": ANA, "rules": ["mekong"]},
        {"email": BEN, "rules": ["heritage"]},
    ]
    return settings


@pytest.mark.slow
def test_stories_a_story_and_filtered_matches_in_chromium(
    browser: Any, news_site: NewsSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(news_site, tmp_path)
    config = write_config(tmp_path, **settings)
    store = Store.from_url(Config.model_validate(settings).database)
    seeded = seed(store, monkeypatch)
    store.close()
    monkeypatch.undo()
    with running_service(config) as service:
        base = f"http://127.0.0.1:{service.port}"
        # Bad addresses: one clear line each, never a traceback.
        for path, status, line in (
            ("/matches?since=yesterday", 400, "since: 'yesterday' is not a day (YYYY-MM-DD)"),
            ("/matches?since=2024-02-14&until=2024-02-01", 400, "until: the day is before"),
            ("/matches?state=maybe", 400, "state: 'maybe' is none of any, sent, pending"),
            ("/matches?recipient=eve%40example.com", 400, "no recipient has the address"),
            ("/matches?rule=a%00b", 400, "rule: holds a control character"),
            ("/stories?before=garbage", 400, "before: not a position in the list"),
            ("/stories?before=99999999999999999999-1", 400, "before: not a position"),
            ("/stories/999999999", 404, "No stored story has this number"),
        ):
            reply = service.get(path)
            assert reply.status == status, path
            assert line in reply.text, path

        ARTIFACTS.mkdir(exist_ok=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []
        problems: list[str] = []  # a CSP violation is reported as a console error
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )

        # The stories page, from the nav.
        page.goto(base + "/")
        page.get_by_role("link", name="Stories", exact=True).click()
        page.wait_for_url(base + "/stories")
        dam = page.locator(f"#story-{seeded.dam}")
        assert dam.locator("tr").first.locator("a").first.inner_text() == DAM
        assert dam.locator(".outlets").inner_text() == "wire, daily"
        assert dam.locator(".copies").inner_text() == "2"
        assert dam.locator(".revisions").inner_text() == "1"
        assert dam.locator(".rules").inner_text() == "mekong"
        assert dam.locator(".sent").inner_text() == f"sent to {ANA}"
        assert dam.locator("tr.copy").count() == 2  # both copies listed under it
        temple = page.locator(f"#story-{seeded.temple}")
        assert temple.locator("a").first.inner_text() == HOSTILE  # text, never run
        assert temple.locator(".outlets").inner_text() == EVIL
        assert temple.locator(".rules").inner_text() == "heritage, mekong"
        assert temple.locator(".sent").inner_text() == "pending"
        assert page.locator(f"#story-{seeded.cup} .sent").inner_text() == "no rule matched"
        assert page.locator("tbody.story").count() == 25
        page.screenshot(path=str(ARTIFACTS / "web-stories.png"), full_page=True)
        page.get_by_role("link", name="Older →").click()
        assert page.locator("tbody.story").count() == FILLERS + 3 - 25
        assert "Weather report 0" in page.inner_text("#stories")
        assert page.get_by_role("link", name="Older →").count() == 0

        # One story's page, from its title.
        page.goto(base + "/stories")
        page.get_by_role("link", name=DAM, exact=True).first.click()
        page.wait_for_url(f"{base}/stories/{seeded.dam}")
        assert page.locator("h1").inner_text() == f"Story: {DAM}"
        assert page.locator("#outlets").inner_text() == "wire, daily"
        assert page.locator("#status").inner_text() == f"sent to {ANA}"
        copies = page.locator("#copies tbody tr")
        assert copies.count() == 2
        assert "wire" in copies.nth(0).inner_text()
        assert "daily" in copies.nth(1).inner_text()
        assert "2024-02-14 12:30 IST" in copies.nth(0).inner_text()  # published, the UI's zone
        assert DAM_BEFORE in page.locator("#revisions").inner_text()
        assert page.locator("#matches tbody tr").count() == 2
        readers = page.locator("#readers tbody tr")
        assert readers.count() == 1  # ben reads heritage only
        assert readers.first.inner_text().split("\t") == [ANA, "mekong", "sent"]
        assert page.locator("#deliveries tbody tr").count() == 2  # a digest with both copies
        page.screenshot(path=str(ARTIFACTS / "web-story.png"), full_page=True)

        page.goto(f"{base}/stories/{seeded.temple}")
        rows = page.locator("#readers tbody tr")
        assert [rows.nth(n).inner_text().split("\t") for n in range(rows.count())] == [
            [ANA, "mekong", "pending"],
            [BEN, "heritage", "pending"],
        ]
        assert page.get_by_text("No digest or alert has carried a copy").is_visible()

        # The matches page, filtered with its form.
        page.goto(base + "/matches")
        assert page.locator("tbody.story").count() == 3  # heritage: temple; mekong: dam, temple
        page.get_by_label("Recipient").select_option(ANA)
        page.get_by_label("Sent").select_option("sent")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r".*/matches\?.*state=sent"))
        assert "recipient=ana%40example.com" in page.url
        assert page.locator("h2").all_inner_texts() == ["mekong (2)"]
        [group] = page.locator("tbody.story").all()
        assert group.locator("tr").count() == 2  # the copies of one story, together
        # The newest match first, with the link to the story; the other copy under it.
        assert group.locator("tr").first.inner_text().startswith(f"{DAM_COPY} story · 2 copies")
        assert group.locator("tr.copy").inner_text().startswith(DAM)
        assert group.locator(".sent").inner_text() == f"sent to {ANA}"
        page.screenshot(path=str(ARTIFACTS / "web-matches-filtered.png"), full_page=True)

        page.goto(base + "/matches?state=pending&source=" + "evil%3Cb%3Eoutlet%3C%2Fb%3E")
        assert page.locator("h2").all_inner_texts() == ["mekong (1)", "heritage (1)"]
        assert page.locator(".sent").all_inner_texts() == ["pending", "pending"]
        assert page.get_by_label("Source").input_value() == EVIL
        page.goto(base + "/matches?until=2024-02-11")  # a day in the UI's zone
        assert page.locator("tbody.story").count() == 2
        assert page.get_by_role("link", name=HOSTILE).count() == 2
        page.goto(base + "/matches?recipient=" + BEN + "&rule=mekong")
        assert page.get_by_text("No match passes these filters.").is_visible()
        page.close()
        assert dialogs == []
        assert problems == []
    assert "Traceback" not in service.output()
