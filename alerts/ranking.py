"""How a digest orders the stories of a rule: one score, explained by its parts.

``score = relevance × prominence × freshness``, pure and deterministic:

- **relevance**: for each of the rule's terms that hit, its weighted frequency
  ``tf = TITLE_WEIGHT × hits in the title + hits in the body``, saturated the BM25
  way, ``tf × (K1 + 1) / (tf + K1)``, summed over the terms. With ``K1 = 1`` one term
  can add at most 2, what two distinct terms found once each add: a term repeated
  twenty times never outranks a second term. No IDF (a rule's terms are few and
  chosen by a person) and no length normalisation (a long report is not penalised).
  A term the rule reported but that is not found word for word (it hit by its stem)
  counts as one body hit.
- **prominence**: ``1 + log2(outlets)``, the distinct outlets that carried the
  story: 1 for one outlet, 2 for two, 3.32 for five.
- **freshness**: ``max(0.5 ** (age / HALF_LIFE), FRESHNESS_FLOOR)``, the story's
  age at digest time (a story from the future is fresh, 1; one without a publish
  time counts as one half-life old). Past about three days (the floor, 0.1) a story
  is old news, and among old stories relevance and prominence decide: without the
  floor a year-old story's freshness is below the smallest float, and the oldest
  of a section would always come last however much it matters (the demo site's
  stories are years old).

Stories are compared by the logarithm of the score (``Score.log_total``). Ties go
to the newer story (sections.py). Once a reader has voted enough on a rule, the
score is multiplied by what their votes taught (``learned``, alerts/learning.py),
for that reader only. A cut section scores only the stories that can make the cut:
relevance is at most ``K1 + 1`` per term (``relevance_bound``), and the learned
factor at most ``MAX_FACTOR``, so a story whose bound is below the last story shown
is not scored at all (story_scores.py); what is shown, and in what order, is the
same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from crawler.domain.query import find_word_runs, term_pattern, tokenise

if TYPE_CHECKING:
    from collections.abc import Sequence

    from crawler.domain.query import Word

__all__ = [
    "FRESHNESS_FLOOR",
    "HALF_LIFE",
    "K1",
    "TITLE_WEIGHT",
    "Score",
    "age_in_half_lives",
    "freshness",
    "prominence",
    "relevance",
    "relevance_bound",
    "score_story",
    "term_frequencies",
]

TITLE_WEIGHT = 3.0
K1 = 1.0
HALF_LIFE = timedelta(hours=24)
FRESHNESS_FLOOR = 0.1  # reached at ~3.3 half-lives: 80 hours


@dataclass(frozen=True)
class Score:
    """A story's score for one rule and the three parts it is the product of."""

    relevance: float
    prominence: float
    freshness: float
    # The age behind ``freshness``, in half-lives (shown by ``explain``).
    half_lives: float = 0.0
    # The reader's learned factor (1: nothing learned) and the features behind it.
    learned: float = 1.0
    learned_from: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return self.relevance * self.prominence * self.freshness * self.learned

    @property
    def log_total(self) -> float:
        """``log(total)``: what stories are ordered by."""
        parts = (self.relevance, self.prominence, self.freshness, self.learned)
        if any(part <= 0 for part in parts):
            return -math.inf
        return sum(math.log(part) for part in parts)

    def explain(self) -> str:
        """E.g. "score 2.41 = relevance 1.5 × prominence 2 × freshness 0.803 (7.6 h old)",
        with "× learned 0.2 (football −, league −)" when the reader's votes count."""
        hours = self.half_lives * HALF_LIFE.total_seconds() / 3600
        text = (
            f"score {self.total:.3g} = relevance {self.relevance:.3g} × prominence "
            f"{self.prominence:.3g} × freshness {self.freshness:.3g} ({hours:,.1f} h old)"
        )
        if self.learned != 1.0 or self.learned_from:
            text += f" × learned {self.learned:.3g}"
            if self.learned_from:
                text += f" ({', '.join(self.learned_from)})"
        return text


def term_frequencies(title: str, body: str, terms: Sequence[str]) -> dict[str, float]:
    """Each term's weighted frequency: title hits count ``TITLE_WEIGHT`` times, body
    hits once, and a term not found word for word counts as one body hit."""
    title_words, body_words = tokenise(title), tokenise(body)
    frequencies: dict[str, float] = {}
    for term in dict.fromkeys(terms):
        pattern = term_pattern(term)
        if not pattern:
            continue
        in_title = _count_runs(title_words, pattern)
        in_body = _count_runs(body_words, pattern)
        frequencies[term] = max(TITLE_WEIGHT * in_title + in_body, 1.0)
    return frequencies


def _count_runs(words: list[str], pattern: Sequence[Word]) -> int:
    """How often ``pattern`` occurs in ``words``; a single exact word (most terms) is
    counted by ``list.count``, ten times faster than walking the runs."""
    if len(pattern) == 1 and not pattern[0].prefix:
        return words.count(pattern[0].text)
    return sum(1 for _ in find_word_runs(words, pattern))


def relevance(frequencies: Sequence[float]) -> float:
    """The sum of the BM25-saturated frequencies (each at most ``K1 + 1``)."""
    return sum(tf * (K1 + 1) / (tf + K1) for tf in frequencies if tf > 0)


def relevance_bound(terms: int) -> float:
    """The most relevance ``terms`` distinct terms can add, whatever the text:
    ``K1 + 1`` each (a saturated frequency comes close but never reaches it). A
    story's score is bounded without reading its body (alerts/story_scores.py)."""
    return (K1 + 1) * terms


def prominence(outlets: int) -> float:
    """``1 + log2(outlets)``; a story has at least one outlet."""
    return 1.0 + math.log2(max(outlets, 1))


def age_in_half_lives(published: datetime | None, now: datetime) -> float:
    """How many ``HALF_LIFE``s old the story is at ``now``: 0 for one not older than
    ``now``, 1 when the publish time is unknown. A naive time is taken to be UTC."""
    if published is None:
        return 1.0
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max((now - published) / HALF_LIFE, 0.0)


def freshness(published: datetime | None, now: datetime) -> float:
    """``0.5 ** (age / HALF_LIFE)``, never below ``FRESHNESS_FLOOR``; 1 for a story not
    older than ``now``, 0.5 when the publish time is unknown."""
    return max(float(0.5 ** age_in_half_lives(published, now)), FRESHNESS_FLOOR)


def score_story(
    *,
    title: str,
    body: str,
    terms: Sequence[str],
    outlets: int,
    published: datetime | None,
    now: datetime,
) -> Score:
    """The score of a story (its headline and body) for a rule whose ``terms`` hit it,
    carried by ``outlets`` distinct outlets, at ``now``."""
    return Score(
        relevance=relevance(list(term_frequencies(title, body, terms).values())),
        prominence=prominence(outlets),
        freshness=freshness(published, now),
        half_lives=age_in_half_lives(published, now),
    )
