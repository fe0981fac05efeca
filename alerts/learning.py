"""What a reader's votes teach: per (reader, rule), which words and outlets move a
story up or down their section (docs/feedback.md, "Learning from the votes").

The model is a naive Bayes log-odds over binary features, the classic spam filter
turned into a ranking signal, chosen because every weight is a word a reader can
read back ("football moves stories down"):

- **features** of a story: the distinct words of its headline and lede (its first
  ``LEDE_WORDS`` words) as the matcher folds them, without the language's most
  frequent words (wordfreq's top ``COMMON_WORDS``), and ``outlet:<name>``;
- **classes**: the stories the reader marked *more like this*, and those marked
  *not relevant*. A class without votes is stood in for by the reader's *ordinary*
  stories of the rule: sent to them, not voted on. A reader who only ever says
  "not relevant" teaches what sets those stories apart from the rest of the rule;
- **weight** of a feature: ``log P(f | more) − log P(f | less)`` with Laplace
  smoothing, for features found in at least ``MIN_EXAMPLES`` examples (one story's
  chance words teach nothing);
- a story's **learned factor**: ``exp`` of the sum of its features' weights, bounded
  to ``[1 / MAX_FACTOR, MAX_FACTOR]``, multiplied into its score (alerts/ranking.py).
  A story with no known feature keeps its score (factor 1).

The factor only reorders: nothing is ever left out for a low factor (a reader hides
with *mute*, *pause* and *unsubscribe*). It applies once the reader has cast
``feedback.learn_after`` standing votes on the rule. Pure functions: the examples
come from storage (``Store.learning_examples``), read as of the delivery's time so
that every retry of a message ranks it the same.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from crawler.domain.query import tokenise
from crawler.domain.wording import counted

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

    from crawler.storage.records import LearningExample
    from crawler.storage.store import Store

__all__ = [
    "LEDE_WORDS",
    "MAX_FACTOR",
    "MIN_EXAMPLES",
    "Taste",
    "learn",
    "reader_tastes",
    "story_features",
]

LEDE_WORDS = 60
COMMON_WORDS = 200
MIN_EXAMPLES = 2
MAX_FACTOR = 10.0
SMOOTHING = 1.0
# Features named when a factor is explained, and by ``feedback show``.
REASONS = 3
OUTLET = "outlet:"
MORE = "more"
LESS = "less"
ORDINARY = "ordinary"


@functools.cache
def _common_words(language: str) -> frozenset[str]:
    """The language's most frequent words, folded; English for an unknown language."""
    # Imported here, by the first reader with votes: wordfreq and ftfy hold ~8 MB,
    # and the service imports this module for its web UI (docs/performance.md,
    # "Idle memory").
    import wordfreq

    try:
        words = wordfreq.top_n_list(language, COMMON_WORDS, wordlist="small")
    except LookupError:
        words = []
    if not words:
        words = wordfreq.top_n_list("en", COMMON_WORDS, wordlist="small")
    return frozenset(tokenise(" ".join(words)))


def story_features(
    title: str, body: str, outlet: str, language: str | None = None
) -> frozenset[str]:
    """The words of ``title`` and of ``body``'s first ``LEDE_WORDS`` words (none of
    the language's commonest, none shorter than three letters, no numbers), and the
    outlet."""
    lede = " ".join(body[: LEDE_WORDS * 12].split()[:LEDE_WORDS])
    common = _common_words((language or "en").split("-")[0].split("_")[0].lower())
    words = {
        word
        for word in tokenise(f"{title} {lede}")
        if len(word) >= 3 and not word.isdigit() and word not in common
    }
    if outlet:
        words.add(OUTLET + outlet)
    return frozenset(words)


@dataclass(frozen=True)
class Taste:
    """What one reader's votes on one rule taught."""

    rule: str
    more_votes: int
    less_votes: int
    ordinary: int  # the reader's unvoted stories of the rule, the stand-in class
    learn_after: int
    weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def votes(self) -> int:
        return self.more_votes + self.less_votes

    @property
    def active(self) -> bool:
        """Enough votes to reorder the reader's section, and something learned."""
        return self.votes >= self.learn_after and bool(self.weights)

    def summary(self) -> str:
        """E.g. "6 votes (1 more like this, 5 not relevant); reorders the section",
        or "2 votes; learning starts at 5"."""
        votes = counted(self.votes, "vote")
        if self.votes < self.learn_after:
            return f"{votes}; learning starts at {self.learn_after}"
        split = f"{votes} ({self.more_votes} more like this, {self.less_votes} not relevant)"
        if not self.active:
            return f"{split}; nothing learned yet (too few stories to compare them with)"
        return f"{split}; reorders the section"

    def factor(self, features: Iterable[str]) -> tuple[float, tuple[str, ...]]:
        """The story's learned factor and the features that weigh most in it,
        strongest first; (1, ()) while the taste is not active."""
        if not self.active:
            return 1.0, ()
        found = [
            (feature, self.weights[feature]) for feature in features if feature in self.weights
        ]
        total = sum(weight for _, weight in found)
        found.sort(key=lambda pair: (-abs(pair[1]), pair[0]))
        reasons = tuple(_signed(feature, weight) for feature, weight in found[:REASONS])
        bound = math.log(MAX_FACTOR)
        if total <= -bound:
            return 1 / MAX_FACTOR, reasons
        if total >= bound:  # and exp() of a huge sum would overflow
            return MAX_FACTOR, reasons
        return math.exp(total), reasons

    def strongest(self, count: int = 10) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The features that move stories up most, and down most, with their weights."""
        up = sorted(
            ((feature, weight) for feature, weight in self.weights.items() if weight > 0),
            key=lambda pair: (-pair[1], pair[0]),
        )
        down = sorted(
            ((feature, weight) for feature, weight in self.weights.items() if weight < 0),
            key=lambda pair: (pair[1], pair[0]),
        )
        return up[:count], down[:count]


def _signed(feature: str, weight: float) -> str:
    """E.g. "football −" or "outlet:Sky Sports +": a feature and its direction."""
    return f"{feature} {'+' if weight > 0 else '−'}"


def learn(rule: str, examples: Sequence[LearningExample], learn_after: int) -> Taste:
    """The taste the ``examples`` of one rule teach (see the module's docstring)."""
    by_label: dict[str, list[frozenset[str]]] = {MORE: [], LESS: [], ORDINARY: []}
    for example in examples:
        by_label.setdefault(example.label, []).append(
            story_features(example.title, example.body, example.outlet, example.language)
        )
    liked = by_label[MORE] or by_label[ORDINARY]
    disliked = by_label[LESS] or by_label[ORDINARY]
    taste = Taste(
        rule=rule,
        more_votes=len(by_label[MORE]),
        less_votes=len(by_label[LESS]),
        ordinary=len(by_label[ORDINARY]),
        learn_after=learn_after,
    )
    if not liked or not disliked:
        # Nothing to compare the voted stories with (no stand-in either): a weight
        # would only say how rare a feature is among them.
        return taste
    return replace(taste, weights=_log_odds(liked, disliked))


def _log_odds(
    liked: Sequence[frozenset[str]], disliked: Sequence[frozenset[str]]
) -> dict[str, float]:
    """``log P(f | liked) − log P(f | disliked)`` (Laplace-smoothed document
    frequencies) of each feature found in at least ``MIN_EXAMPLES`` examples."""
    in_liked = Counter(feature for features in liked for feature in features)
    in_disliked = Counter(feature for features in disliked for feature in features)
    seen = in_liked + in_disliked
    weights = {}
    for feature, count in seen.items():
        if count < MIN_EXAMPLES:
            continue
        p_liked = (in_liked[feature] + SMOOTHING) / (len(liked) + 2 * SMOOTHING)
        p_disliked = (in_disliked[feature] + SMOOTHING) / (len(disliked) + 2 * SMOOTHING)
        weight = math.log(p_liked / p_disliked)
        if weight:
            weights[feature] = weight
    return weights


def reader_tastes(
    store: Store, recipient: str, rules: Sequence[str], learn_after: int, until: datetime
) -> dict[str, Taste]:
    """What ``recipient``'s votes cast before ``until`` taught, per rule of theirs
    with any vote."""
    examples = store.learning_examples(recipient, rules, until)
    return {
        rule: learn(rule, rule_examples, learn_after) for rule, rule_examples in examples.items()
    }
