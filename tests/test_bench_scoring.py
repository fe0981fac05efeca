"""bench/scoring.py's comparison tools: the fixed corpus split and the paired bootstrap."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))  # the one copy of the metric
from scoring import (
    BUNDLED_CORPUS,
    PageScore,
    corpus_scores,
    paired_bootstrap,
    score_page,
    split_halves,
)

CORPUS_IDS = (BUNDLED_CORPUS / "ids.txt").read_text(encoding="utf-8").split()


def sha256(page_id: str) -> str:
    return hashlib.sha256(page_id.encode()).hexdigest()


def test_the_halves_split_the_corpus_in_two_by_the_hash_of_the_page_ids() -> None:
    develop, check = split_halves(CORPUS_IDS)

    assert sorted(develop + check) == sorted(CORPUS_IDS)
    assert len(develop) == len(CORPUS_IDS) // 2
    assert len(check) == len(CORPUS_IDS) - len(CORPUS_IDS) // 2
    assert max(map(sha256, develop)) < min(map(sha256, check))


def test_the_halves_do_not_depend_on_the_order_the_ids_come_in() -> None:
    assert split_halves(reversed(CORPUS_IDS)) == split_halves(sorted(CORPUS_IDS))


def precision_page(precision: float) -> PageScore:
    """A page with all of its true text found and ``precision`` of the output true."""
    return PageScore(tp=precision, fp=1 - precision, fn=0.0, exact=False)


# Pages of very different difficulty, the kind a corpus has.
SPREAD = [0.3 + 0.68 * k / 39 for k in range(40)]


def test_the_same_scores_differ_by_nothing() -> None:
    pages = [precision_page(precision) for precision in SPREAD]

    assert paired_bootstrap(pages, pages) == (0.0, 0.0, 0.0)


def test_a_small_gain_on_every_page_is_seen_through_the_spread_of_the_pages() -> None:
    # Resampling the two extractors' pages independently would mix the spread of
    # the pages' difficulty into the difference and give an interval around zero;
    # drawing the same pages for both leaves only the gain.
    theirs = [precision_page(precision) for precision in SPREAD]
    ours = [precision_page(precision + 0.01) for precision in SPREAD]

    difference, low, high = paired_bootstrap(ours, theirs)

    assert difference == pytest.approx(corpus_scores(ours)[0] - corpus_scores(theirs)[0])
    assert 0 < low <= difference <= high
    assert high - low < 0.01


def test_the_difference_is_of_corpus_f1_not_of_mean_page_f1() -> None:
    truth = "one two three four five six seven eight nine ten"
    ours = [score_page(truth, truth), score_page("", truth)]
    theirs = [score_page("one two three four five", truth)] * 2

    difference, _, _ = paired_bootstrap(ours, theirs, resamples=10)

    # ours: P = 1 (the empty page has no precision), R = 0.5, F1 = 2/3;
    # theirs: P = 1, R = 2/7 on each page, F1 = 4/9.
    assert difference == pytest.approx(2 / 3 - 4 / 9)


def test_the_interval_is_repeatable_and_moves_with_the_seed() -> None:
    theirs = [precision_page(precision) for precision in SPREAD]
    ours = [
        precision_page(min(1.0, precision + (0.1 if k % 3 else -0.1)))
        for k, precision in enumerate(SPREAD)
    ]

    first = paired_bootstrap(ours, theirs, seed=1)

    assert paired_bootstrap(ours, theirs, seed=1) == first
    assert paired_bootstrap(ours, theirs, seed=2)[1:] != first[1:]
    assert paired_bootstrap(ours, theirs, seed=2)[0] == first[0]


def test_scores_of_different_page_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="not the same pages"):
        paired_bootstrap([precision_page(0.5)], [])
