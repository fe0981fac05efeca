"""How a digest orders and lays out its stories: the score and its parts, each story
once, the top stories, ledes, outlets and per-recipient section sizes."""

from __future__ import annotations

import email
import email.policy
import json
import math
import re
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import run_newswatch, site_config, write_config

from alerts.delivery import OutboxDelivery
from alerts.digest import render_items, send_pending_digests
from alerts.follow_ups import continued_stories, find_follow_ups
from alerts.ranking import FRESHNESS_FLOOR, HALF_LIFE, Score, score_story
from alerts.render import render_digest
from alerts.rules import RuleMatch
from alerts.sections import TOP_STORIES_HEADING, digest_sections, group_by_rule
from alerts.story_text import best_headline, make_lede, outlets_line
from crawler.domain.config import Config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.orchestration.ingest import ingest_article
from crawler.storage.store import PendingItem, SentStory, Store, StoredArticle

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))  # the version replaced
from follow_ups import find_follow_ups_indexed, make_corpus

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from newssite import NewsSite

NOW = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
FILLER = "The council met on Monday. Officials gave no further details. "


def _item(
    article_id: int,
    rules: dict[str, Sequence[str]],
    *,
    title: str = "A story",
    body: str = FILLER,
    source: str = "wire",
    story: int | None = None,
    published: datetime = NOW - timedelta(hours=2),
) -> PendingItem:
    return PendingItem(
        article=StoredArticle(
            id=article_id,
            url=f"https://{source}.example/{article_id}",
            source=source,
            title=title,
            body=body,
            published=published,
            authors=(),
            language="en",
            story_id=story,
        ),
        rules=tuple((rule, tuple(terms)) for rule, terms in rules.items()),
    )


def _titles(section_entries: Sequence[object]) -> list[str]:
    return [entry.title for entry in section_entries]  # type: ignore[attr-defined]


# --- the score ------------------------------------------------------------------------


def test_a_story_carried_by_five_outlets_ranks_above_one_carried_by_one() -> None:
    body = "Floods closed the port. " + FILLER
    wide = [
        _item(10 + n, {"floods": ["floods"]}, title="Port shut", body=body, source=s, story=1)
        for n, s in enumerate(["wire", "daily", "herald", "coast", "times"])
    ]
    narrow = _item(20, {"floods": ["floods"]}, title="Port shut", body=body, source="gazette")
    # The single-outlet story is newer: without prominence it would come first.
    narrow = _item(
        20,
        {"floods": ["floods"]},
        title="Port shut",
        body=body,
        source="gazette",
        published=NOW - timedelta(hours=1),
    )
    (section,) = group_by_rule([narrow, *wide], ["floods"], now=NOW)
    assert [entry.url for entry in section.entries] == [
        "https://wire.example/10",
        "https://gazette.example/20",
    ]
    first, second = section.entries
    assert first.score is not None
    assert second.score is not None
    assert first.score.prominence == pytest.approx(1 + math.log2(5))
    assert second.score.prominence == 1.0
    assert first.score.relevance == second.score.relevance


def test_a_title_hit_beats_a_body_only_hit() -> None:
    in_title = score_story(
        title="Floods close the port",
        body=FILLER,
        terms=["floods"],
        outlets=1,
        published=NOW,
        now=NOW,
    )
    in_body = score_story(
        title="The port is closed",
        body="Floods closed it. " + FILLER,
        terms=["floods"],
        outlets=1,
        published=NOW,
        now=NOW,
    )
    assert in_title.relevance > in_body.relevance
    assert in_title.total > in_body.total


def test_one_term_repeated_twenty_times_does_not_beat_two_distinct_terms() -> None:
    repeated = score_story(
        title="Weather",
        body="floods " * 20 + FILLER,
        terms=["floods"],
        outlets=1,
        published=NOW,
        now=NOW,
    )
    two_terms = score_story(
        title="Weather",
        body="Floods and a storm. " + FILLER,
        terms=["floods", "storm"],
        outlets=1,
        published=NOW,
        now=NOW,
    )
    assert repeated.relevance < two_terms.relevance
    # Saturation, not a cap: more hits still count a little.
    once = score_story(
        title="x", body="floods", terms=["floods"], outlets=1, published=NOW, now=NOW
    )
    assert once.relevance < repeated.relevance


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(0), 1.0),
        (HALF_LIFE, 0.5),
        (2 * HALF_LIFE, 0.25),
        (-HALF_LIFE, 1.0),
        (10 * HALF_LIFE, FRESHNESS_FLOOR),
        (timedelta(days=3650), FRESHNESS_FLOOR),
    ],
    ids=["now", "one-half-life", "two-half-lives", "future", "old-news", "ten-years"],
)
def test_freshness_halves_every_half_life(age: timedelta, expected: float) -> None:
    score = score_story(
        title="floods", body="", terms=["floods"], outlets=1, published=NOW - age, now=NOW
    )
    assert score.freshness == pytest.approx(expected)


def test_the_score_is_the_product_of_its_parts() -> None:
    score = Score(relevance=1.5, prominence=2.0, freshness=0.5)
    assert score.total == pytest.approx(1.5)
    assert score.explain() == (
        "score 1.5 = relevance 1.5 × prominence 2 × freshness 0.5 (0.0 h old)"
    )


def test_among_old_stories_relevance_and_prominence_decide() -> None:
    strong = score_story(
        title="floods",
        body="",
        terms=["floods"],
        outlets=5,
        published=NOW - timedelta(days=3650),
        now=NOW,
    )
    weak = score_story(
        title="x",
        body="floods",
        terms=["floods"],
        outlets=1,
        published=NOW - timedelta(days=5),
        now=NOW,
    )
    assert strong.freshness == weak.freshness == FRESHNESS_FLOOR
    assert strong.total > weak.total > 0
    assert strong.log_total > weak.log_total


def test_equal_scores_go_newest_first() -> None:
    # A story of now and one from the future are both fully fresh: a tie.
    present = _item(1, {"floods": ["floods"]}, title="floods", published=NOW)
    future = _item(2, {"floods": ["floods"]}, title="floods", published=NOW + timedelta(hours=1))
    (section,) = group_by_rule([present, future], ["floods"], now=NOW)
    first, second = section.entries
    assert first.score == second.score
    assert [entry.url for entry in section.entries] == [
        "https://wire.example/2",
        "https://wire.example/1",
    ]


# --- each story once, top stories ---------------------------------------------------------


def _two_rule_items() -> list[PendingItem]:
    """A story matching "heritage" and "syria" (better for heritage: its title names
    Palmyra's museum), and four stories of one rule each."""
    return [
        _item(
            1,
            {"syria": ["Syria"], "heritage": ["museum", "Palmyra"]},
            title="Palmyra museum reopens",
            body="The Palmyra museum in Syria reopened. " + FILLER,
        ),
        *(
            _item(10 + n, {"syria": ["Syria"]}, title=f"Syria update {n}", body="Syria. " + FILLER)
            for n in range(3)
        ),
        _item(20, {"heritage": ["museum"]}, title="A museum", body=FILLER),
    ]


def test_a_story_matching_two_rules_appears_once_under_its_best_rule() -> None:
    sections = group_by_rule(_two_rule_items(), ["syria", "heritage"], now=NOW)
    entries = [(section.rule, entry) for section in sections for entry in section.entries]
    museum = [(rule, e) for rule, e in entries if e.title == "Palmyra museum reopens"]
    assert len(museum) == 1
    rule, entry = museum[0]
    assert entry.rule == "heritage"
    assert entry.also_matches == ("syria",)
    assert rule == "heritage"
    syria = next(section for section in sections if section.rule == "syria")
    assert "Palmyra museum reopens" not in _titles(syria.entries)

    digest = render_digest(
        sections, timezone="UTC", subject_template="{count} new: {rules}", generated_at=NOW
    )
    assert digest.text.count("Palmyra museum reopens") == 1
    assert "Also matches: syria" in digest.text
    assert "Also matches: syria" in digest.html
    assert digest.subject == "5 new: syria, heritage"


def test_the_digest_opens_with_its_three_best_stories() -> None:
    sections = group_by_rule(_two_rule_items(), ["syria", "heritage"], now=NOW, top_stories=3)
    top, *rest = sections
    assert top.top
    assert top.rule == TOP_STORIES_HEADING
    assert len(top.entries) == 3
    assert top.entries[0].title == "Palmyra museum reopens"
    best = [entry.score.total for entry in top.entries if entry.score is not None]
    below = [e.score.total for s in rest for e in s.entries if e.score is not None]
    assert min(best) >= max(below)
    # Every story is shown once, in the top block or in its section.
    shown = [entry.url for section in sections for entry in section.entries]
    assert len(shown) == len(set(shown)) == 5

    digest = render_digest(sections, timezone="UTC", subject_template="x", generated_at=NOW)
    assert digest.text.index("== Top stories ==") < digest.text.index("== syria (")
    assert "heritage - wire - " in digest.text  # the top block names each story's rule


def test_no_top_block_in_a_small_or_single_rule_digest() -> None:
    items = _two_rule_items()
    assert not any(s.top for s in group_by_rule(items[:3], ["syria", "heritage"], top_stories=3))
    one_rule = [item for item in items if dict(item.rules).keys() == {"syria"}]
    assert not any(s.top for s in group_by_rule(one_rule, ["syria"], now=NOW, top_stories=3))


def test_repeat_stories_shows_a_story_under_every_rule_it_matches() -> None:
    sections = group_by_rule(
        _two_rule_items(), ["syria", "heritage"], now=NOW, repeat_stories=True, top_stories=3
    )
    by_rule = {section.rule: _titles(section.entries) for section in sections}
    assert "Palmyra museum reopens" in by_rule["syria"]
    assert "Palmyra museum reopens" in by_rule["heritage"]
    assert "Palmyra museum reopens" in by_rule[TOP_STORIES_HEADING]
    syria = next(s for s in sections if s.rule == "syria")
    assert next(e for e in syria.entries if e.title.startswith("Palmyra")).also_matches == (
        "heritage",
    )


# --- the entry ---------------------------------------------------------------------------


def test_the_lede_is_two_sentences_and_abbreviations_do_not_split() -> None:
    body = (
        "Dr. Amal Haddad told the U.S. Senate on Monday that the museum would reopen. "
        "The St. Louis collection lent 40 pieces, worth $1.5 million. "
        "A third sentence is not part of the lede. And neither is a fourth."
    )
    assert make_lede(body) == (
        "Dr. Amal Haddad told the U.S. Senate on Monday that the museum would reopen. "
        "The St. Louis collection lent 40 pieces, worth $1.5 million."
    )
    assert make_lede("") == ""
    assert make_lede("One line\n\nacross   paragraphs. Two.") == "One line across paragraphs. Two."


def test_a_run_on_lede_is_cut_at_a_word() -> None:
    lede = make_lede("word " * 500)
    assert len(lede) <= 400
    assert lede.endswith("word…")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Reuters"], "Reuters"),
        (["Reuters", "AP"], "Reuters and AP"),
        (["Reuters", "Al Jazeera", "AP"], "Reuters, Al Jazeera and AP"),
        (["Reuters", "Al Jazeera", "AP", "BBC", "DW"], "Reuters, Al Jazeera and 3 more"),
        (["Reuters", "Reuters", "AP"], "Reuters and AP"),
        ([], ""),
    ],
    ids=["one", "two", "three", "five", "repeated", "none"],
)
def test_the_outlets_line(names: list[str], expected: str) -> None:
    assert outlets_line(names) == expected


@pytest.mark.parametrize(
    ("titles", "expected"),
    [
        (
            ["Floods close port", "Floods close the port of Chittagong"],
            "Floods close the port of Chittagong",
        ),
        (["Floods close the port of Chitta…", "Floods close the port"], "Floods close the port"),
        (["Floods close the port of...", "Floods"], "Floods"),
        (["Cut short…"], "Cut short…"),
    ],
    ids=["longest", "cut-with-ellipsis", "cut-with-dots", "only-cut-ones"],
)
def test_the_headline_is_the_most_complete_copys(titles: list[str], expected: str) -> None:
    assert best_headline(titles) == expected


def test_an_entry_shows_the_best_headline_the_lede_and_the_outlets() -> None:
    body = "Dr. Haddad said the U.S. team arrived. Floods closed the port. More later."
    copies = [
        _item(
            1, {"floods": ["floods"]}, title="Floods close…", body=body, source="Reuters", story=7
        ),
        _item(
            2,
            {"floods": ["floods"]},
            title="Floods close the port",
            body=body,
            source="AP",
            story=7,
        ),
        *(
            _item(3 + n, {"floods": ["floods"]}, title="Floods", body=body, source=name, story=7)
            for n, name in enumerate(["BBC", "DW", "NHK"])
        ),
    ]
    (section,) = group_by_rule(copies, ["floods"], now=NOW)
    (entry,) = section.entries
    assert entry.title == "Floods close the port"
    assert entry.url == "https://Reuters.example/1"
    assert entry.snippet_text == "Dr. Haddad said the U.S. team arrived. Floods closed the port."
    digest = render_digest([section], timezone="UTC", subject_template="x", generated_at=NOW)
    assert "Reuters, AP and 3 more - 6 Dec 2026, 05:00 UTC" in digest.text
    assert (
        "Reuters, AP and 3 more &middot;" in digest.html
        or "Reuters, AP and 3 more ·" in digest.html
    )


# --- a recipient's digest -------------------------------------------------------------


def _config(**recipient: object) -> Config:
    return Config.model_validate(
        {
            "sources": [{"name": n, "feed": f"https://{n}.example/rss"} for n in ("wire", "daily")],
            "rules": [
                {"name": "syria", "keywords": ["Syria"]},
                {"name": "heritage", "keywords": ["museum"]},
            ],
            "digest": {"sender": "news@example.org", "max_stories": 10},
            "recipients": [{"email": "ana@example.com", **recipient}],
        }
    )


def test_a_story_stands_only_under_the_readers_own_rules() -> None:
    # A delivery's items come back with every rule that matched them, another
    # reader's too: ana follows "syria" only, so the museum story (better for
    # "heritage") is hers under "syria", with no other reader's rule named.
    config = _config(rules=["syria"])
    (ana,) = config.all_recipients()
    hers = [item for item in _two_rule_items() if "syria" in dict(item.rules)]
    sections = digest_sections(hers, config, ana, NOW)
    assert [section.rule for section in sections if not section.top] == ["syria"]
    museum = [
        entry
        for section in sections
        for entry in section.entries
        if entry.title == "Palmyra museum reopens"
    ]
    assert [(entry.rule, entry.also_matches) for entry in museum] == [("syria", ())]


def test_a_recipient_sets_how_many_stories_a_section_shows() -> None:
    items = [
        _item(n, {"syria": ["Syria"]}, title=f"Syria {n}", body="Syria. " + FILLER)
        for n in range(1, 8)
    ]
    config = _config(max_stories=2)
    recipient = config.recipient("ana@example.com")
    assert recipient.max_stories == 2
    (section,) = digest_sections(items, config, recipient, NOW)
    assert len(section.entries) == 2
    assert section.more == 5
    assert _config().recipient("ana@example.com").max_stories == 10  # digest's

    digest = render_items(items, config, recipient, NOW)
    assert "and 5 more stories not shown here" in digest.text
    assert digest.subject.startswith("newswatch: 7 new")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(_config().sources)
    yield store
    store.close()


def _ingest(
    store: Store, source: str, url: str, title: str, body: str, rules: list[RuleMatch]
) -> int:
    article = ExtractedArticle(url=url, title=title, text=body, published=NOW - timedelta(hours=1))
    result = ingest_article(store, ArticleItem(source, url, article), rules, stories=None)
    assert result.article_id is not None
    return result.article_id


@pytest.mark.parametrize("repeat", [False, True], ids=["once", "repeats"])
def test_a_delivered_digest_shows_a_story_once_and_records_every_article(
    store: Store, tmp_path: Path, repeat: bool
) -> None:
    both = _ingest(
        store,
        "wire",
        "https://wire.example/museum",
        "Syria's Palmyra museum reopens",
        "The museum in Syria reopened its doors. " + FILLER,
        [RuleMatch("syria", ("Syria",)), RuleMatch("heritage", ("museum",))],
    )
    syria = _ingest(
        store, "daily", "https://daily.example/s", "Talks", "Syria talks. " + FILLER,
        [RuleMatch("syria", ("Syria",))],
    )  # fmt: skip
    config = _config(repeat_stories=repeat, max_stories=1)
    report = send_pending_digests(store, config, OutboxDelivery(tmp_path), NOW)
    assert report.sent == {"ana@example.com": 2}
    (email,) = [path.read_text() for path in tmp_path.glob("*.eml")]
    assert "Subject: newswatch: 2 new articles" in email
    headline = "Syria's Palmyra museum reopens"
    assert email.count(headline) == (2 * 2 if repeat else 2)  # the HTML title and the text
    # The ledger holds every article of the delivery, whatever the email showed.
    (record,) = store.deliveries()
    assert set(record.article_ids) == {both, syria}
    assert store.pending_items("ana@example.com", ["syria", "heritage"]) == []


# --- rules test --explain -------------------------------------------------------------


def test_rules_test_explain_prints_each_hits_score_and_parts(
    news_site: NewsSite, tmp_path: Path
) -> None:
    config = write_config(tmp_path, **site_config(news_site, tmp_path))
    assert run_newswatch(config, "crawl").returncode == 0

    shown = run_newswatch(config, "rules", "test", "syria", "--explain", "--json")
    assert shown.returncode == 0, shown.stderr
    hits = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(hits) == 3
    for hit in hits:
        parts = hit["score"]
        assert parts["total"] == pytest.approx(
            parts["relevance"] * parts["prominence"] * parts["freshness"]
        )
        assert parts["freshness"] == pytest.approx(
            max(0.5 ** parts["age_half_lives"], FRESHNESS_FLOOR)
        )
    # Best first (the fixture site's stories are years old: old news, ordered by
    # relevance and prominence).
    totals = [h["score"]["total"] for h in hits]
    assert totals == sorted(totals, reverse=True)

    text = run_newswatch(config, "rules", "test", "syria", "--explain")
    assert text.returncode == 0, text.stderr
    explained = re.findall(
        r"score (\S+) = relevance (\S+) × prominence (\S+) × freshness (\S+) \(", text.stdout
    )
    assert len(explained) == 3
    for total, relevance, prominence, freshness in explained:
        assert float(total) == pytest.approx(
            float(relevance) * float(prominence) * float(freshness), rel=0.02, abs=1e-300
        )
    assert [float(r) * float(p) for _, r, p, _ in explained] != [0, 0, 0]


# --- follow-ups ---------------------------------------------------------------------------

BACKGROUND = [
    "Palmyra, a UNESCO World Heritage site in the desert north-east of Damascus, was seized "
    "by ISIS in May 2015, and the group destroyed several of its ancient temples and tombs.",
    "The ancient city was a crossroads of the caravan trade between the Roman Empire and "
    "Persia, and its colonnaded streets drew some 150,000 visitors a year before the war.",
    "The Syrian Observatory for Human Rights, a Britain-based monitor with a network of "
    "sources on the ground, said hundreds of fighters had been killed in the offensive.",
]


def _story(top: str, background: Sequence[str]) -> str:
    return "\n\n".join([top, *background])


def test_a_story_sharing_two_background_paragraphs_is_a_follow_up() -> None:
    sent = [
        SentStory(story=1, sent_at=NOW - timedelta(days=5), body=_story("Old top.", BACKGROUND))
    ]
    edited = BACKGROUND[0].replace("several of its", "many of its")  # an edit still counts
    new = {
        2: _story("Troops entered the museum on Sunday, officials said.", [edited, BACKGROUND[1]]),
        3: _story("Another story entirely, about a museum.", [BACKGROUND[2]]),  # one paragraph
        1: _story("A revision of the sent story itself.", BACKGROUND),
    }
    assert find_follow_ups(new, sent) == {2: NOW - timedelta(days=5)}
    assert find_follow_ups(new, []) == {}


def test_the_streamed_history_finds_the_follow_ups_the_indexed_one_did() -> None:
    """The history streamed past the new stories (alerts/follow_ups.py) answers as
    the whole history indexed did (bench/follow_ups.py keeps that version), and so
    does the other way round (the few earlier stories indexed, the new ones streamed,
    as a reader's mutes are checked)."""
    sent, new = make_corpus(history=120, new=40, words=300, seed=7)
    # The follow-ups continue a second sent story too (their own text, sent days
    # before): the earliest counts.
    sent += [
        SentStory(story=1000 + n, sent_at=NOW - timedelta(days=n), body=new[key])
        for n, key in enumerate(list(new)[::5])
    ]
    indexed = find_follow_ups_indexed(new, sent)
    assert len(indexed) == 8
    assert find_follow_ups(new, sent) == indexed
    assert find_follow_ups(new, iter(sent)) == indexed  # read once, as a generator
    continued = continued_stories(new.items(), sent)
    assert set(continued) == set(indexed)
    for key, story in continued.items():
        assert find_follow_ups({key: new[key]}, [story]) == {key: story.sent_at}
    assert find_follow_ups(new, []) == {}


def test_a_digest_marks_a_follow_up_of_a_story_the_reader_was_sent(
    store: Store, tmp_path: Path
) -> None:
    config = _config()
    _ingest(
        store, "wire", "https://wire.example/palmyra-1", "Syria's army nears Palmyra",
        _story("Syria's army neared Palmyra on Thursday.", BACKGROUND),
        [RuleMatch("syria", ("Syria",))],
    )  # fmt: skip
    first_run = NOW - timedelta(days=5)
    assert send_pending_digests(store, config, OutboxDelivery(tmp_path / "1"), first_run).sent
    _ingest(
        store, "daily", "https://daily.example/palmyra-2", "Palmyra retaken",
        _story("Syria's army retook Palmyra on Sunday.", BACKGROUND[1:]),
        [RuleMatch("syria", ("Syria",))],
    )  # fmt: skip
    _ingest(
        store, "daily", "https://daily.example/other", "Syria talks", "Syria talks. " + FILLER,
        [RuleMatch("syria", ("Syria",))],
    )  # fmt: skip
    assert send_pending_digests(store, config, OutboxDelivery(tmp_path / "2"), NOW).sent
    (path,) = (tmp_path / "2").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    for kind in ("plain", "html"):
        body = message.get_body(preferencelist=(kind,))
        assert body is not None
        # The Palmyra story only: the other one shares no background.
        assert body.get_content().count("Follow-up to a story sent on 1 Dec") == 1


def test_ledes_made_in_several_threads_at_once_are_each_their_own() -> None:
    """Digests for several channels are made at once; pysbd's splitter keeps the text
    it works on, so a shared one mixed them up (a lede came out empty)."""
    bodies = [f"Report {n} came in. Dr. Lee of the U.S. team said {n}. Not this." for n in range(8)]
    wrong: list[str] = []

    def make(body: str) -> None:
        for _ in range(30):
            lede = make_lede(body)
            if lede != body.rsplit(" Not this.", 1)[0]:
                wrong.append(lede)

    threads = [threading.Thread(target=make, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_a_lede_skips_a_first_paragraph_that_repeats_the_headline() -> None:
    body = "Floods close the port\n\nThe port closed on Monday. Ships waited. Then more."
    assert make_lede(body, "Floods close  the port") == "The port closed on Monday. Ships waited."
    assert make_lede(body, "Another headline").startswith("Floods close the port The port")
