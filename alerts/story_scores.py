"""Stories' scores (alerts/ranking.py), worked out only for the stories that can be
shown.

Scoring a story reads its body and splits it into words: most of what a digest
costs when it is cut to its best few stories per section. Prominence and
freshness need no text, and relevance is at most ``K1 + 1`` per term whatever the
text (``relevance_bound``), so every story has a score bound that costs nothing.
``best`` scores stories best bound first, a batch at a time, and stops once no
story left can reach the last one it would show: what it picks and their order are
exactly what scoring every story gives, bodies are read only for the stories it
scored.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from alerts.learning import MAX_FACTOR, story_features
from alerts.ranking import Score, freshness, prominence, relevance_bound, score_story

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from alerts.learning import Taste
    from crawler.storage.store import PendingItem

# Stories scored at once (their bodies read in one query) while looking for the best.
SCORE_BATCH = 256
# A bound is compared with a margin: it and the score it bounds are sums of
# logarithms, each rounded.
_BOUND_MARGIN = 1e-9


@dataclass
class RankedStory:
    """A story's copies (earliest first), the terms each of its rules hit (over all
    copies) and, once scored, its score for each rule, best first."""

    copies: Sequence[PendingItem]
    # Its place among the digest's stories (newest first): the last tie-break.
    position: int
    terms: Mapping[str, tuple[str, ...]]
    outlets: int
    # Set by ``StoryScorer.score``.
    rule_scores: tuple[tuple[str, Score], ...] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, copies: Sequence[PendingItem], position: int) -> RankedStory:
        terms: dict[str, dict[str, None]] = {}
        for copy in copies:
            for rule, rule_terms in copy.rules:
                terms.setdefault(rule, {}).update(dict.fromkeys(rule_terms))
        return cls(
            copies=copies,
            position=position,
            terms={rule: tuple(rule_terms) for rule, rule_terms in terms.items()},
            outlets=len({copy.article.source for copy in copies}),
        )

    @property
    def scored(self) -> bool:
        return self.rule_scores is not None

    @property
    def scores(self) -> tuple[tuple[str, Score], ...]:
        """Its score for each of its rules, best first (``StoryScorer.score`` first)."""
        if self.rule_scores is None:
            raise RuntimeError("story not scored yet")
        return self.rule_scores

    def score(self, rule: str) -> Score:
        return dict(self.scores)[rule]

    @property
    def published(self) -> datetime:
        return self.copies[0].article.published or datetime.min.replace(tzinfo=UTC)


def order_key(rule: str) -> Callable[[RankedStory], tuple[float, float, int]]:
    """How a section of ``rule`` orders its (scored) stories: best score first, ties
    to the newer story, then to the digest's order."""
    return lambda story: (
        -story.score(rule).log_total,
        -story.published.timestamp(),
        story.position,
    )


def best_first(story: RankedStory) -> tuple[float, float, int]:
    """How the top stories are ordered: by the score of each story's best rule."""
    return (-story.scores[0][1].log_total, -story.published.timestamp(), story.position)


class StoryScorer:
    """Scores stories at ``now`` (ties between rules to the first in ``order``),
    reading the bodies it needs from ``bodies`` (article id → body) when the items
    came without theirs, each once; a rule with an active taste in ``tastes`` (the
    reader's, alerts/learning.py) has its scores multiplied by the learned factor."""

    def __init__(
        self,
        bodies: Callable[[Sequence[int]], Mapping[int, str]] | None,
        now: datetime,
        order: Mapping[str, int],
        tastes: Mapping[str, Taste] | None = None,
    ) -> None:
        self._bodies = bodies
        self._now = now
        self._order = order
        self._tastes = {rule: t for rule, t in (tastes or {}).items() if t.active}
        self._texts: dict[int, str] = {}

    def text(self, story: RankedStory) -> str:
        """The body of the story's earliest copy."""
        main = story.copies[0].article
        return self._texts.get(main.id, main.body)

    def score(self, stories: Sequence[RankedStory]) -> None:
        """Score ``stories`` (those not scored yet), their bodies read in one go."""
        todo = [story for story in stories if not story.scored]
        if not todo:
            return
        if self._bodies is not None:
            wanted = sorted({story.copies[0].article.id for story in todo} - self._texts.keys())
            if wanted:
                self._texts.update(self._bodies(wanted))
        for story in todo:
            main = story.copies[0].article
            scores = [
                (
                    rule,
                    score_story(
                        title=main.title,
                        body=self.text(story),
                        terms=list(terms),
                        outlets=story.outlets,
                        published=main.published,
                        now=self._now,
                    ),
                )
                for rule, terms in story.terms.items()
            ]
            if any(rule in self._tastes for rule in story.terms):
                scores = self._learned(story, scores)
            order = self._order
            scores.sort(
                key=lambda pair: (-pair[1].log_total, order.get(pair[0], len(order)), pair[0])
            )
            story.rule_scores = tuple(scores)

    def _learned(
        self, story: RankedStory, scores: list[tuple[str, Score]]
    ) -> list[tuple[str, Score]]:
        """``scores`` times the learned factor of each rule with a taste."""
        main = story.copies[0].article
        features = story_features(main.title, self.text(story), main.source, main.language)
        learned = []
        for rule, score in scores:
            taste = self._tastes.get(rule)
            if taste is not None:
                factor, reasons = taste.factor(features)
                score = replace(score, learned=factor, learned_from=reasons)
            learned.append((rule, score))
        return learned

    def bound(self, story: RankedStory, rule: str | None = None) -> float:
        """The most ``log_total`` the story can score for ``rule`` (for its best rule
        without one), from its terms, outlets and age alone (and the largest learned
        factor, ``MAX_FACTOR``, where the reader's taste may multiply it)."""
        rules = [rule] if rule is not None else list(story.terms)
        terms = max(len(story.terms[name]) for name in rules)
        learned = MAX_FACTOR if any(name in self._tastes for name in rules) else 1.0
        published = story.copies[0].article.published
        return Score(
            relevance=relevance_bound(terms),
            prominence=prominence(story.outlets),
            freshness=freshness(published, self._now),
            learned=learned,
        ).log_total

    def best(
        self, stories: Sequence[RankedStory], count: int, rule: str | None = None
    ) -> list[RankedStory]:
        """The first ``count`` of ``stories`` in ``rule``'s order (``order_key``; the
        top stories' ``best_first`` without a rule), scored, in that order; only the
        stories that could be among them are scored."""
        if count <= 0:
            return []
        key = order_key(rule) if rule is not None else best_first
        bounds = sorted(
            ((self.bound(story, rule), story) for story in stories), key=_first, reverse=True
        )
        chosen: list[RankedStory] = []
        start = 0
        while start < len(bounds):
            if len(chosen) >= count:
                last = heapq.nsmallest(count, chosen, key=key)[-1]
                # Stories left score at most their bound, every one of them at most
                # the next one's: below the last chosen, none of them can be shown.
                if bounds[start][0] < -key(last)[0] - _BOUND_MARGIN:
                    break
            batch = [story for _bound, story in bounds[start : start + max(count, SCORE_BATCH)]]
            self.score(batch)
            chosen.extend(batch)
            start += len(batch)
        return heapq.nsmallest(count, chosen, key=key)


def _first(pair: tuple[float, RankedStory]) -> float:
    return pair[0]
