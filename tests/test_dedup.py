"""Exact-copy fingerprints and wire copies grouped into stories (crawler/domain/dedup.py)."""

from __future__ import annotations

import functools
import hashlib
import json
import random
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.domain.dedup import (
    content_fingerprint,
    minhash_values,
    normalise_for_fingerprint,
    tokenize,
    word_shingles,
)
from crawler.domain.stories import MatchRule, StoryCandidate, StoryIndex

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))  # the one copy of the metric
from stories import STORIES, LabelledArticle, assign_all, load_stories, pairwise_scores

T0 = datetime(2019, 11, 19, 8, 0, tzinfo=UTC)


@functools.cache
def labelled() -> tuple[LabelledArticle, ...]:
    return tuple(load_stories())


@functools.cache
def edits() -> dict[int, list[str]]:
    records = json.loads(STORIES.read_text(encoding="utf-8"))
    return {record["id"]: record["edits"] for record in records}


@functools.cache
def assigned_in_arrival_order() -> dict[int, int]:
    return assign_all(StoryIndex(), labelled())


def article(
    article_id: int,
    body: str,
    *,
    title: str = "A headline",
    hours: float = 0,
    source: str = "Outlet",
    undated: bool = False,
) -> StoryCandidate:
    published = None if undated else T0 + timedelta(hours=hours)
    return StoryCandidate(article_id, title, body, published, source)


def story_of(story: str) -> list[LabelledArticle]:
    return [a for a in labelled() if a.story == story]


# ---- fingerprints ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello,   World!\n\nAgain.", "hello world again"),
        ("so\u00adft hy\u00adphens, zero\u200bwidth\u2060joiners", "soft hyphens zerowidthjoiners"),
        ("“Curly” ‘quotes’ and \"straight\" 'ones'", "curly quotes and straight ones"),
        ("Café crème, Ñandú, Ёлка", "cafe creme nandu елка"),
        ("270,000 dead; 2,70,000 dead; 270\u202f000 dead", "270000 dead 270000 dead 270000 dead"),
        ("a strate-\ngic town", "a strategic town"),
        ("the Franco-\nGerman border", "the franco german border"),
        ("ﬁnal ＦＵＬＬＷＩＤＴＨ", "final fullwidth"),
        ("日本語の記事", "日本語の記事"),
    ],
    ids=[
        "spacing",
        "invisible",
        "quotes",
        "accents",
        "digit-groups",
        "print-hyphenation",
        "compound-at-line-break",
        "nfkc",
        "cjk",
    ],
)
def test_normalise_for_fingerprint(text: str, expected: str) -> None:
    assert normalise_for_fingerprint(text) == expected


@pytest.mark.parametrize(
    ("normalised", "expected"),
    [
        ("", []),
        ("a strategic town", ["a", "strategic", "town"]),
        ("cafe creme nandu елка", ["cafe", "creme", "nandu", "елка"]),
        ("日本語の記事 news 2024", ["日", "本", "語", "の", "記", "事", "news", "2024"]),
        ("tokyo東京 and seoul", ["tokyo", "東", "京", "and", "seoul"]),
    ],
    ids=["empty", "ascii", "accented-and-cyrillic", "cjk", "cjk-inside-a-word"],
)
def test_tokenize(normalised: str, expected: list[str]) -> None:
    assert tokenize(normalised) == expected


def test_same_body_under_other_whitespace_and_soft_hyphens_has_one_fingerprint() -> None:
    body = "Regime troops were locked in heavy fighting.\n\nThey captured strategic hilltops."
    variant = (
        "Regime  troops were locked in heavy fight\u00ading.\r\n \r\n"
        "They captured strat\u00adegic\u200b hilltops.  "
    )
    assert content_fingerprint(variant) == content_fingerprint(body)
    assert content_fingerprint(body.replace("heavy", "fierce")) != content_fingerprint(body)
    assert len(content_fingerprint(body)) == 64


def test_exact_copies_in_the_labelled_set_share_the_original_fingerprint() -> None:
    originals = {a.story: a for a in labelled() if not edits()[a.candidate.article_id]}
    copies = [a for a in labelled() if "exact copy" in edits()[a.candidate.article_id]]
    compared = [a for a in copies if a.story in originals]
    assert len(compared) >= 5
    for copy in compared:
        assert copy.candidate.body != originals[copy.story].candidate.body
        assert content_fingerprint(copy.candidate.body) == content_fingerprint(
            originals[copy.story].candidate.body
        )


# ---- the labelled set -----------------------------------------------------------


@pytest.mark.parametrize("half", ["all", "held-out"])
def test_labelled_set_pairwise_precision_and_recall(half: str) -> None:
    articles = [a for a in labelled() if half == "all" or a.half == half]
    score = pairwise_scores(articles, assigned_in_arrival_order())
    assert score.precision >= 0.99, score
    assert score.recall >= 0.95, score


def test_labelled_set_holds_in_shuffled_arrival_orders() -> None:
    for seed in range(3):
        order = list(labelled())
        random.Random(seed).shuffle(order)  # noqa: S311 (an arrival order, not a secret)
        score = pairwise_scores(labelled(), assign_all(StoryIndex(), order))
        assert score.precision >= 0.99, (seed, score)
        assert score.recall >= 0.95, (seed, score)


@pytest.mark.parametrize(
    "story",
    [
        "army-pressures-isis",
        "06e5123e",
        "dc7ccccc",
        "6ebac05f",
        "cc03ddb5",
        "c4a3637c",
        "memory-crisis",
    ],
)
def test_syndicated_copies_join_the_story_of_the_first_one(story: str) -> None:
    members = story_of(story)
    assert len(members) >= 4
    first = min(a.candidate.article_id for a in members)
    assert {assigned_in_arrival_order()[a.candidate.article_id] for a in members} == {first}


def test_other_reports_of_the_same_event_stay_apart() -> None:
    """Hand-written reports on the Palmyra offensive, the Assange decision, WeWork, ...:
    each its own story, none in the story of the wire copy they parallel."""
    by_story: dict[str, set[int]] = defaultdict(set)
    for a in labelled():
        by_story[a.story].add(assigned_in_arrival_order()[a.candidate.article_id])
    hand_written = [story for story in by_story if story.startswith("hand-")]
    assert len(hand_written) >= 10
    for story in hand_written:
        (story_id,) = by_story[story]
        others = {s for s, ids in by_story.items() if story_id in ids}
        assert others == {story}


def test_a_spliced_lead_sentence_does_not_pull_an_article_into_another_story() -> None:
    splices = [
        a
        for a in labelled()
        if any(e.startswith("lead sentence of") for e in edits()[a.candidate.article_id])
    ]
    assert len(splices) >= 8
    for splice in splices:
        lender = edits()[splice.candidate.article_id][0].removeprefix("lead sentence of ")
        own = {assigned_in_arrival_order()[a.candidate.article_id] for a in story_of(splice.story)}
        lent = {assigned_in_arrival_order()[a.candidate.article_id] for a in story_of(lender)}
        assert own == {assigned_in_arrival_order()[splice.candidate.article_id]}
        assert not own & lent


def test_one_outlets_briefs_in_the_same_boilerplate_stay_apart() -> None:
    briefs = [a for a in labelled() if a.story.startswith("brief-")]
    assert len(briefs) == 8
    stories = {assigned_in_arrival_order()[a.candidate.article_id] for a in briefs}
    assert len(stories) == 8


# ---- the rule, the window, the rebuild ------------------------------------------

BODY = " ".join(f"word{i} appears in sentence {i % 7} of the report" for i in range(60))
OTHER = " ".join(f"token{i} belongs to another story entirely {i % 5}" for i in range(60))


def test_publish_times_more_than_max_gap_apart_are_other_stories() -> None:
    index = StoryIndex()
    assert index.assign(article(1, BODY)) == 1
    assert index.assign(article(2, BODY, hours=4 * 24, source="Other")) == 2
    assert index.assign(article(3, BODY, hours=2 * 24, source="Third")) == 1
    assert index.assign(article(4, BODY, undated=True, source="Fourth")) == 1


def test_trimmed_and_padded_copy_joins_by_containment() -> None:
    index = StoryIndex()
    index.assign(article(1, BODY))
    words = BODY.split()
    trimmed = " ".join(
        [
            "Outlet header line here",
            *words[: len(words) * 2 // 5],
            "Copyright the outlet all rights reserved",
        ]
    )
    assert index.assign(article(2, trimmed, title="Rewritten", source="Other")) == 1
    assert index.assign(article(3, OTHER, source="Other")) == 3


def test_same_source_needs_the_headline_too() -> None:
    boilerplate_top = "Home World Business Sport Opinion Gulf Courier staff and agencies"
    boilerplate_end = (
        "Copyright 2019 Gulf Courier. All rights reserved. This material may "
        "not be published, broadcast, rewritten or redistributed."
    )
    first = f"{boilerplate_top}\nA bridge was closed after a barge hit it.\n{boilerplate_end}"
    second = f"{boilerplate_top}\nA zoo welcomed a red panda cub.\n{boilerplate_end}"
    index = StoryIndex()
    assert index.assign(article(1, first, title="Bridge closed", source="Gulf")) == 1
    assert index.assign(article(2, second, title="Red panda cub born", source="Gulf")) == 2
    assert (
        index.assign(article(3, first, title="Bridge closed after barge strike", source="Gulf"))
        == 1
    )


def test_a_few_words_need_the_headline_too() -> None:
    index = StoryIndex()
    notice = "Subscribe to continue reading this article."
    assert index.assign(article(1, notice, title="Storm hits coast")) == 1
    assert index.assign(article(2, notice, title="Bank raises rates", source="B")) == 2
    assert index.assign(article(3, notice, title="Storm hits the coast", source="C")) == 1


def test_empty_text_is_always_its_own_story() -> None:
    index = StoryIndex()
    assert index.assign(article(1, "")) == 1
    assert index.assign(article(2, " \n ")) == 2
    assert len(index) == 2


def test_assigning_an_indexed_article_again_keeps_its_story() -> None:
    index = StoryIndex()
    index.assign(article(1, BODY))
    assert index.assign(article(2, BODY, source="Other")) == 1
    assert index.assign(article(2, OTHER, source="Other")) == 1
    assert len(index) == 2


def test_prune_drops_what_left_the_window() -> None:
    index = StoryIndex(window=timedelta(days=7))
    index.assign(article(1, BODY))
    index.assign(article(2, OTHER, hours=5 * 24))
    assert index.prune(T0 + timedelta(days=7)) == 0
    assert index.prune(T0 + timedelta(days=8)) == 1
    assert len(index) == 1
    # The story left with its articles: a late copy starts a new one.
    assert index.assign(article(3, BODY, hours=8 * 24, source="Other")) == 3
    assert index.prune(T0 + timedelta(days=16)) == 2
    assert len(index) == 0


def test_an_undated_article_stays_one_window_from_the_first_prune_that_sees_it() -> None:
    index = StoryIndex(window=timedelta(days=7))
    index.assign(article(1, BODY, undated=True))
    first_seen = T0 + timedelta(days=30)
    assert index.prune(first_seen) == 0
    assert index.prune(first_seen + timedelta(days=7)) == 0
    assert index.assign(article(2, BODY, hours=36 * 24, source="Other")) == 1
    assert index.prune(first_seen + timedelta(days=7, seconds=1)) == 1
    assert len(index) == 1


def test_band_index_stays_consistent_through_sealing_and_pruning() -> None:
    """More articles than one sealed run, pruned half-way: copies still find their
    stories, dropped articles are never returned."""
    index = StoryIndex()
    bodies = [
        " ".join(f"w{n}x{i} said the report number {n}" for i in range(40)) for n in range(1500)
    ]
    for n, body in enumerate(bodies, start=1):
        assert index.assign(article(n, body, hours=n / 10, source=f"s{n}")) == n
    dropped = index.prune(T0 + timedelta(days=7, hours=75))  # published before T0 + 75 h
    assert dropped == 749
    for n in (1, 700, 751, 1200, 1500):  # a copy joins a kept story, starts a dropped one anew
        copy = article(10_000 + n, bodies[n - 1], hours=n / 10 + 1, source="copies")
        assert index.assign(copy) == (n if n >= 750 else 10_000 + n)
    assert len(index) == 1500 - 749 + 5


def test_rebuilding_from_signatures_gives_the_live_assignments() -> None:
    articles = list(labelled())
    half = len(articles) // 2
    live = StoryIndex()
    stored = []
    for a in articles[:half]:
        signature = live.signature(a.candidate.body)
        story = live.assign(a.candidate, signature=signature)
        c = a.candidate
        stored.append((c.article_id, story, signature, c.published, c.title, c.source))
    rebuilt = StoryIndex()
    for row in stored:
        rebuilt.add_existing(*row)
    assert len(rebuilt) == len(live)
    later = [a.candidate for a in articles[half:]]
    assert [rebuilt.assign(c) for c in later] == [live.assign(c) for c in later]


def test_results_are_deterministic() -> None:
    again = assign_all(StoryIndex(), labelled())
    assert again == assigned_in_arrival_order()
    body = labelled()[0].candidate.body
    assert StoryIndex().signature(body) == StoryIndex().signature(body)


@pytest.mark.parametrize("shingle", [4, 2])
def test_signatures_are_datasketch_minhashes(shingle: int) -> None:
    """minhash_values computes datasketch's MinHash (affine32, seed 1) with numpy; the
    stored signatures depend on every bit of it."""
    from datasketch import MinHash

    texts = [a.candidate.body for a in labelled()[:40]] + ["", "one", "two words"]
    for text in texts:
        shingles = word_shingles(text, shingle)
        reference = MinHash(num_perm=128, seed=1, scheme="affine32")
        reference.update_batch(shingles)

        assert minhash_values(shingles, 128).tolist() == reference.hashvalues.tolist()


def test_signature_format_is_stable() -> None:
    """Signatures are stored: a change to the hashing (or to datasketch's) must come with
    a new SIGNATURE_VERSION and a recompute, never silently."""
    signature = StoryIndex().signature("Regime troops were locked in heavy fighting on Tuesday")
    assert len(signature) == 8 + 4 * 128
    assert hashlib.sha256(signature).hexdigest() == (
        "ccbacb4c528e2ccf5f765445ceb19b6792894ec20773c478127a792d361e7651"
    )


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        b"not a signature at all",
        StoryIndex(shingle=5).signature(BODY),
        StoryIndex(num_perm=64, bands=32).signature(BODY),
    ],
    ids=["empty", "garbage", "other-shingle", "other-num-perm"],
)
def test_a_signature_made_otherwise_is_refused(signature: bytes) -> None:
    with pytest.raises(ValueError, match="signature"):
        StoryIndex().add_existing(1, 1, signature, T0, "title", "source")


def test_match_rule_defaults() -> None:
    rule = MatchRule()
    assert rule.matches(0.9, 0.95, 0.0)
    assert rule.matches(0.25, 0.6, 0.0)  # a trimmed or padded copy
    assert rule.matches(0.15, 0.4, 0.8)  # a short text in long boilerplate, same headline
    assert not rule.matches(0.1, 0.3, 1.0)  # shared quotes, the same event
    assert not rule.matches(0.7, 0.8, 0.0, same_source=True)  # one outlet's boilerplate
    assert not rule.matches(1.0, 1.0, 0.0, shortest=3)  # "Subscribe to read"
