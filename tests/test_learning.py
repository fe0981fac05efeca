"""Learning from the votes (alerts/learning.py, docs/feedback.md): a reader who
marks the sport stories an "election" rule catches as not relevant gets the next
one below an on-topic story, and only that reader; nothing leaves the section;
``newswatch feedback show`` prints what was learned."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import run_newswatch, write_config

from alerts.delivery import OutboxDelivery
from alerts.digest import send_pending_digests
from alerts.learning import MAX_FACTOR, learn, story_features
from alerts.rules import RuleMatch
from crawler.domain.config import Config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.orchestration.ingest import ingest_article
from crawler.storage.feedback import LESS, MORE
from crawler.storage.records import LearningExample
from crawler.storage.store import ReaderAnswer, Store

if TYPE_CHECKING:
    from collections.abc import Iterator

NOW = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
ANA = "ana@example.com"
BOB = "bob@example.com"
TEAMS = ["Rovers", "United", "Athletic", "Wanderers", "Albion", "Rangers", "City"]
PLACES = ["Northland", "Eastmark", "Westvale", "Southport", "Midshire", "Lakeside", "Highmoor"]
SETTINGS: dict[str, Any] = {
    "sources": [
        {"name": "sportsdesk", "feed": "https://sports.example/rss", "enabled": False},
        {"name": "politics", "feed": "https://politics.example/rss", "enabled": False},
    ],
    "rules": [{"name": "election", "keywords": ["election"]}],
    "digest": {"sender": "news@example.org", "recipients": [ANA, BOB]},
    "web": {"public_url": "https://news.example.org/watch/"},
}


def sport(n: int) -> tuple[str, str]:
    team = TEAMS[n % len(TEAMS)]
    return (
        f"{team} football club holds election for new chairman",
        f"The {team} football club members voted in the election for a chairman after "
        f"a poor league season. The striker and the coach said the match against "
        f"{TEAMS[(n + 1) % len(TEAMS)]} on Saturday matters more than the boardroom. "
        f"Fans at the stadium sang through the second half of the game number {n}.",
    )


def politics(n: int) -> tuple[str, str]:
    place = PLACES[n % len(PLACES)]
    return (
        f"{place} parliament sets date for general election",
        f"The parliament of {place} set the date of the general election after the "
        f"minister resigned. Party leaders began the campaign and the candidates filed "
        f"their ballot papers with the commission; polls open in spring (report {n}).",
    )


def _ingest(store: Store, url: str, source: str, title: str, body: str, at: datetime) -> int:
    article = ExtractedArticle(url=url, title=title, text=body, published=at)
    result = ingest_article(
        store, ArticleItem(source, url, article), [RuleMatch("election", ("election",))]
    )
    assert result.article_id is not None
    return result.article_id


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(Config.model_validate(SETTINGS).sources)
    yield store
    store.close()


def _order(outbox: Path, reader: str, titles: list[str]) -> list[str]:
    """``titles`` in the order ``reader``'s digest in ``outbox`` lists them."""
    (path,) = [p for p in outbox.glob("*.eml") if f"To: {reader}".encode() in p.read_bytes()]
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = [title for title in titles if title in text]
    assert found == titles, text  # every one of them is there
    return sorted(found, key=text.index)


def test_a_readers_not_relevant_votes_reorder_their_section_only(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    config = Config.model_validate(SETTINGS)
    sport_ids = [
        _ingest(store, f"https://sports.example/{n}", "sportsdesk", *sport(n), NOW)
        for n in range(5)
    ]
    for n in range(5):
        _ingest(store, f"https://politics.example/{n}", "politics", *politics(n), NOW)
    send_pending_digests(store, config, OutboxDelivery(tmp_path / "day1"), NOW)
    for article in sport_ids:  # Ana: the sport stories are not relevant to her
        answer = ReaderAnswer(LESS, ANA, rules=("election",), story_id=article, article_id=article)
        assert store.record_answer(f"vote-{article}", answer, NOW + timedelta(hours=1))

    later = NOW + timedelta(days=1)
    off_topic, on_topic = sport(5)[0], politics(5)[0]
    # The off-topic story has "election" in its headline and the on-topic one only in
    # its body: without learning, the headline hit ranks first.
    _ingest(store, "https://sports.example/5", "sportsdesk", *sport(5), later)
    _ingest(
        store,
        "https://politics.example/5",
        "politics",
        "Westvale parliament sets date for the vote",
        politics(5)[1],
        later,
    )
    on_topic = "Westvale parliament sets date for the vote"
    send_pending_digests(store, config, OutboxDelivery(tmp_path / "day2"), later)
    assert _order(tmp_path / "day2", BOB, [off_topic, on_topic]) == [off_topic, on_topic]
    # Ana: the sport story comes after the on-topic one, and is still there.
    assert _order(tmp_path / "day2", ANA, [off_topic, on_topic]) == [on_topic, off_topic]

    settings = {**SETTINGS, "database": database_url}
    shown = run_newswatch(write_config(tmp_path, **settings), "feedback", "show", ANA)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == ANA
    assert "election: 5 votes (0 more like this, 5 not relevant); reorders the section" in lines[1]
    down = _features(next(line for line in lines if "moves down:" in line))
    up = _features(next(line for line in lines if "moves up:" in line))
    sport_words = " ".join(" ".join(sport(n)) for n in range(5)).lower() + " outlet:sportsdesk"
    politics_words = " ".join(" ".join(politics(n)) for n in range(5)).lower() + " outlet:politics"
    assert len(down) == len(up) == 8  # the strongest eight each way
    assert all(word in sport_words and word not in politics_words for word in down), down
    assert all(word in politics_words and word not in sport_words for word in up), up
    explained = run_newswatch(
        write_config(tmp_path, **settings), "rules", "test", "election", "--explain",
        "--reader", ANA,
    )  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    hits = explained.stdout.split("\n\n")
    learned = {hit.splitlines()[0]: hit for hit in hits if "× learned" in hit}
    assert len(learned) == 12  # every hit of the rule, times Ana's factor
    assert all("× learned 0.1 (" in hit for title, hit in learned.items() if "football" in title)
    assert explained.stdout.index("parliament") < explained.stdout.index("football")
    bob = run_newswatch(write_config(tmp_path, **settings), "feedback", "show", BOB)
    assert "election: no votes" in bob.stdout
    unknown = run_newswatch(write_config(tmp_path, **settings), "feedback", "show", "x@y.z")
    assert unknown.returncode == 2
    assert f"recipients: {ANA}, {BOB}" in unknown.stdout


def _features(line: str) -> list[str]:
    """The features of a "moves up: a +1.25, b +0.4" line."""
    listed = line.split(":", 1)[1]
    return [item.strip().rsplit(" ", 1)[0] for item in listed.split(",")]


def _examples(label: str, stories: list[tuple[str, str]], outlet: str) -> list[LearningExample]:
    return [LearningExample(label, title, body, outlet, "en") for title, body in stories]


def test_the_learned_factor_is_explained_bounded_and_waits_for_enough_votes() -> None:
    rejected = _examples(LESS, [sport(n) for n in range(5)], "sportsdesk")
    ordinary = _examples("ordinary", [politics(n) for n in range(5)], "politics")
    taste = learn("election", rejected + ordinary, learn_after=5)
    assert taste.active
    assert (taste.more_votes, taste.less_votes, taste.ordinary) == (0, 5, 5)
    off = taste.factor(story_features(*sport(9), "sportsdesk", "en"))
    on = taste.factor(story_features(*politics(9), "politics", "en"))
    assert 1 / MAX_FACTOR <= off[0] < 1 < on[0] <= MAX_FACTOR
    assert all(reason.endswith("−") for reason in off[1])
    assert off[1]
    # An unknown story keeps its score; the commonest words are never features.
    assert taste.factor(story_features("Quiet day", "Nothing of note.", "elsewhere")) == (1.0, ())
    assert not {"the", "and", "for"} & set(taste.weights)

    # Four votes are not enough (feedback.learn_after 5): nothing changes yet.
    early = learn("election", rejected[:4] + ordinary, learn_after=5)
    assert not early.active
    assert early.factor(story_features(*sport(9), "sportsdesk", "en")) == (1.0, ())
    assert early.summary() == "4 votes; learning starts at 5"

    # Votes both ways compare the two; the ordinary stories are not needed.
    liked = _examples(MORE, [politics(n) for n in range(3)], "politics")
    both = learn("election", rejected + liked, learn_after=5)
    assert both.weights["football"] < 0 < both.weights["parliament"]
    # Votes of one kind and nothing to compare them with: nothing is learned.
    alone = learn("election", rejected, learn_after=5)
    assert not alone.active
    assert alone.factor(story_features(*sport(9), "x", "en")) == (1.0, ())


@pytest.mark.slow
def test_votes_cast_from_the_email_show_on_the_readers_page_and_can_be_forgotten(
    tmp_path: Path,
) -> None:
    from smtpserver import free_port
    from test_feedback import _form, _html, _links, _messages, _path, _post
    from test_web import running_service

    port = free_port()
    host = f"localhost:{port}"
    public = {"port": port, "public_url": f"http://{host}/"}
    settings = {
        **SETTINGS,
        "database": f"sqlite:///{tmp_path / 'newswatch.db'}",
        "user_agent_contact": "https://example.org/newswatch-tests",
        "workers": 0,
        "delivery": {"outbox": str(tmp_path / "outbox")},
        "web": public,
        "feedback": {"rate_limit": 1000},
    }
    config = Config.model_validate({**SETTINGS, "web": {"public_url": f"http://{host}/"}})
    store = Store.from_url(settings["database"])
    store.upgrade()
    store.sync_sources(config.sources)
    try:
        with running_service(write_config(tmp_path, **settings)) as web:
            for n in range(5):
                _ingest(store, f"https://sports.example/{n}", "sportsdesk", *sport(n), NOW)
                _ingest(store, f"https://politics.example/{n}", "politics", *politics(n), NOW)
            send_pending_digests(store, config, OutboxDelivery(tmp_path / "outbox"), NOW)
            page = _html(_messages(tmp_path / "outbox")[ANA][0])
            links = _links(page)
            reader = _path(links["Your muted stories and paused rules"][0])
            assert "No votes yet" in web.get(reader, Host=host).body
            # "Not relevant" under each sport story: its confirmation page, then its POST.
            for url in links["Not relevant"]:
                confirm = web.get(_path(url), Host=host)
                if "football club" not in confirm.body:
                    continue
                done = _post(web, _path(url), {"form": _form(confirm.body)}, host)
                assert done.status == 200, done.body
            assert len(store.votes(ANA)) == 5

            shown = web.get(reader, Host=host).body
            assert "5 votes (0 more like this, 5 not relevant); reorders the section" in shown
            down = shown.split("moves down:", 1)[1].split("<", 1)[0]
            assert "football" in down
            assert "parliament" not in down
            forget = _post(
                web, f"{reader}/forget", {"rule": "election", "form": _form(shown)}, host
            )
            assert forget.status == 303
            assert store.votes(ANA) == []
            assert "No votes yet" in web.get(reader, Host=host).body
    finally:
        store.close()
