"""Story grouping: quality on the labelled story set, cost at 10,000 and 100,000 stories.

Quality: every article of tests/fixtures/stories/stories.json goes through one
``StoryIndex.assign`` in the file's order (the order a crawler meets them), then
pairwise precision and recall of "same story" over all pairs of articles: a pair
grouped together is a true positive when the labels agree. The set is split in two
halves by event (``sha1(event) % 2``; stories on one event or topic share a half): the
TUNE half chose the shingle size, the bands and the ``MatchRule`` defaults
(``--tune``), the HELD-OUT half was never looked at for that. The same figures over 5
seeded shuffles of the arrival order (worst of the 5) show how much the greedy
grouping depends on who comes first.

Cost: synthetic articles — random word sequences drawn from the corpus vocabulary
with its word frequencies, 120-600 words, random headlines, publish times spread
over the window — are put in the index (``add_existing`` with their signatures) up
to 10,000 and then 100,000 stories; at each size 500 new articles, a fifth of them
trimmed copies of indexed ones, are assigned. Times are per article, median and 95th
percentile, with the signature (hashing the body) and without it (given); memory is
what tracemalloc counts as allocated by the index.

    python bench/stories.py            # the table
    python bench/stories.py --tune     # grid search on the TUNE half, then the table
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import json
import random
import re
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.domain.stories import MatchRule, StoryCandidate, StoryIndex

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
STORIES = ROOT / "tests" / "fixtures" / "stories" / "stories.json"
CORPUS = ROOT / "tests" / "fixtures" / "extraction" / "ground-truth.json"
SHUFFLES = 5
SEED = 20240515


@dataclass(frozen=True)
class LabelledArticle:
    candidate: StoryCandidate
    story: str
    event: str  # stories on one event or topic share it, and so share a half

    @property
    def half(self) -> str:
        digest = hashlib.sha1(self.event.encode("utf-8"), usedforsecurity=False).hexdigest()
        return "tune" if int(digest, 16) % 2 == 0 else "held-out"


@dataclass(frozen=True)
class PairScore:
    precision: float
    recall: float
    false_pairs: int
    missed_pairs: int

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def load_stories(path: Path = STORIES) -> list[LabelledArticle]:
    """The labelled set, in its arrival order."""
    records: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return [
        LabelledArticle(
            StoryCandidate(
                article_id=record["id"],
                title=record["title"],
                body=record["body"],
                published=(
                    datetime.fromisoformat(record["published"]) if record["published"] else None
                ),
                source=record["source"],
            ),
            record["story"],
            record["event"],
        )
        for record in records
    ]


def assign_all(
    index: StoryIndex,
    articles: Iterable[LabelledArticle],
    signatures: dict[int, bytes] | None = None,
) -> dict[int, int]:
    """Article id -> story id, assigning in the given order."""
    return {
        article.candidate.article_id: index.assign(
            article.candidate,
            signature=signatures.get(article.candidate.article_id) if signatures else None,
        )
        for article in articles
    }


def pairwise_scores(articles: Sequence[LabelledArticle], assigned: dict[int, int]) -> PairScore:
    """Pairwise precision and recall of the grouping against the labels, over all
    pairs of ``articles`` (1.0 when there is nothing to find, or nothing found)."""
    labels = Counter(a.story for a in articles)
    groups = Counter(assigned[a.candidate.article_id] for a in articles)
    both = Counter((a.story, assigned[a.candidate.article_id]) for a in articles)
    true_pos = sum(n * (n - 1) // 2 for n in both.values())
    grouped = sum(n * (n - 1) // 2 for n in groups.values())
    same = sum(n * (n - 1) // 2 for n in labels.values())
    return PairScore(
        true_pos / grouped if grouped else 1.0,
        true_pos / same if same else 1.0,
        grouped - true_pos,
        same - true_pos,
    )


def shuffled(articles: Sequence[LabelledArticle], seed: int) -> list[LabelledArticle]:
    order = list(articles)
    random.Random(seed).shuffle(order)
    return order


def quality(
    articles: Sequence[LabelledArticle],
    make_index: type[StoryIndex] | Any,
    signatures: dict[int, bytes] | None = None,
) -> dict[str, PairScore]:
    """Scores per half and overall, in arrival order and (worst of) shuffled orders."""
    halves = {
        "all": list(articles),
        "tune": [a for a in articles if a.half == "tune"],
        "held-out": [a for a in articles if a.half == "held-out"],
    }
    assigned = assign_all(make_index(), articles, signatures)
    scores = {name: pairwise_scores(part, assigned) for name, part in halves.items()}
    shuffled_scores = []
    for seed in range(SHUFFLES):
        order = shuffled(articles, SEED + seed)
        shuffled_scores.append(
            pairwise_scores(articles, assign_all(make_index(), order, signatures))
        )
    scores["shuffled (worst)"] = PairScore(
        min(s.precision for s in shuffled_scores),
        min(s.recall for s in shuffled_scores),
        max(s.false_pairs for s in shuffled_scores),
        max(s.missed_pairs for s in shuffled_scores),
    )
    return scores


TUNING_GRID: dict[str, tuple[Any, ...]] = {
    "shingle": (3, 4, 5, 6),
    "jaccard": (0.4, 0.5, 0.6, 0.7),
    "containment": (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7),
    "containment_jaccard": (0.05, 0.1, 0.15, 0.2, 0.3),
    "headline": (0.34, 0.5, 0.67, 1.01),  # 1.01: headlines never count
}
TUNING_BANDS = (16, 24, 32, 48, 64)


def tune(articles: Sequence[LabelledArticle]) -> dict[str, Any]:
    """Grid search on the TUNE half, in arrival order and 3 shuffled orders; a setting
    scores (worst precision, mean recall) over the 4 orders.

    1. Shingle size and MatchRule, with 64 bands of 2 values: nearly every pair with
       J >= 0.2 is compared, so that precision comes from the rule and not from pairs
       the band index happens to miss. The best score usually holds on a plateau of
       settings; the chosen one has the most plateau neighbours (one grid step away
       in one threshold): the middle of the plateau, not its edge. Among equals: the
       stricter thresholds, then the smaller shingle.
    2. Bands: the fewest (the index's memory and time) that score as well as 64.

    Prints the best settings and the bands, returns the chosen setting."""
    part = [a for a in articles if a.half == "tune"]
    orders = [part] + [shuffled(part, SEED + seed) for seed in range(3)]
    names = list(TUNING_GRID)
    scores: dict[tuple[Any, ...], tuple[float, float]] = {}
    signatures: dict[int, dict[int, bytes]] = {}

    def score(shingle: int, bands: int, rule: MatchRule) -> tuple[float, float]:
        results = [
            pairwise_scores(
                part,
                assign_all(
                    StoryIndex(shingle=shingle, bands=bands, rule=rule), order, signatures[shingle]
                ),
            )
            for order in orders
        ]
        return (min(r.precision for r in results), statistics.mean(r.recall for r in results))

    for shingle in TUNING_GRID["shingle"]:
        signer = StoryIndex(shingle=shingle)
        signatures[shingle] = {
            a.candidate.article_id: signer.signature(a.candidate.body) for a in part
        }
        for values in itertools.product(*(TUNING_GRID[name] for name in names[1:])):
            rule = MatchRule(**dict(zip(names[1:], values, strict=True)))
            scores[(shingle, *values)] = score(shingle, max(TUNING_BANDS), rule)
    best = max(scores.values())
    plateau = {key for key, value in scores.items() if value == best}

    def neighbours(key: tuple[Any, ...]) -> int:
        count = 0
        for position in range(1, len(names)):  # the MatchRule thresholds
            steps = TUNING_GRID[names[position]]
            at = steps.index(key[position])
            for other in (at - 1, at + 1):
                if 0 <= other < len(steps):
                    moved = (*key[:position], steps[other], *key[position + 1 :])
                    count += moved in plateau
        return count

    # Most neighbours first; among equals the stricter thresholds (precision before
    # recall), then the smaller shingle (fewer words for an edit to break).
    ranked = sorted(
        plateau, key=lambda key: (-neighbours(key), key[0], *(-value for value in key[1:]))
    )
    print(
        f"tuning: best (worst precision, mean recall) {best[0]:.4f} / {best[1]:.4f} "
        f"on the TUNE half with {max(TUNING_BANDS)} bands, held by {len(plateau)} of "
        f"{len(scores)} settings; the most central:"
    )
    print(" | ".join([*names, "neighbours on the plateau"]))
    for key in ranked[:10]:
        print(" | ".join([*(str(value) for value in key), str(neighbours(key))]))
    chosen = dict(zip(names, ranked[0], strict=True))
    shingle = chosen.pop("shingle")
    rule = MatchRule(**chosen)
    by_bands = {bands: score(shingle, bands, rule) for bands in TUNING_BANDS}
    for bands, (precision, recall) in by_bands.items():
        print(f"bands {bands}: worst precision {precision:.4f}, mean recall {recall:.4f}")
    fewest = min(bands for bands, value in by_bands.items() if value >= by_bands[64])
    print(f"chosen: shingle {shingle}, bands {fewest}, {rule}")
    return {"shingle": shingle, "bands": fewest, **chosen}


# ---- cost at scale -------------------------------------------------------------


def vocabulary() -> tuple[list[str], list[int]]:
    """The corpus's words and their cumulative counts (real word frequencies for
    synthetic text)."""
    truth = json.loads(CORPUS.read_text(encoding="utf-8"))
    counts = Counter(
        word for page in truth.values() for word in re.findall(r"\w+", page["articleBody"])
    )
    words = sorted(counts)
    return words, list(itertools.accumulate(counts[word] for word in words))


def synthetic_article(
    rng: random.Random, words: list[str], cumulative: list[int], article_id: int, start: datetime
) -> StoryCandidate:
    body_words = rng.choices(words, cum_weights=cumulative, k=rng.randint(120, 600))
    paragraphs = [" ".join(body_words[i : i + 40]) + "." for i in range(0, len(body_words), 40)]
    return StoryCandidate(
        article_id=article_id,
        title=" ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(5, 12))),
        body="\n\n".join(paragraphs),
        published=start + timedelta(seconds=rng.uniform(0, 6.5 * 86400)),
        source=f"site{rng.randint(1, 200)}",
    )


def trimmed_copy(article: StoryCandidate, rng: random.Random, article_id: int) -> StoryCandidate:
    paragraphs = article.body.split("\n\n")
    keep = max(1, round(len(paragraphs) * rng.uniform(0.5, 0.9)))
    return replace(
        article,
        article_id=article_id,
        title="Copy: " + article.title,
        body="\n\n".join(["Wire report", *paragraphs[:keep], "All rights reserved."]),
    )


def cost(sizes: Sequence[int], probes: int = 500) -> list[tuple[str, str]]:
    """Assign time and index memory with ``sizes`` synthetic stories indexed."""
    rng = random.Random(SEED)
    words, cumulative = vocabulary()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    index = StoryIndex()
    stored = [
        synthetic_article(rng, words, cumulative, number, start)
        for number in range(1, max(sizes) + 1)
    ]
    # What the store would hand over at start: signature, publish time, headline.
    rebuilt = [
        (a.article_id, index.signature(a.body), a.published, a.title, a.source) for a in stored
    ]
    next_id = len(stored) + 1
    rows: list[tuple[str, str]] = []
    loaded = memory = 0
    for size in sizes:
        gc.collect()
        tracemalloc.start()  # counts what the index allocates, not the texts' or signatures'
        for article_id, signature, published, title, source in rebuilt[loaded:size]:
            index.add_existing(article_id, article_id, signature, published, title, source)
        loaded = size
        gc.collect()
        memory += tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        probe_set: list[tuple[StoryCandidate, int]] = []
        for number in range(probes):
            if number % 5 == 0:  # a trimmed copy of an indexed story: must join it
                original = rng.choice(stored[:size])
                probe_set.append((trimmed_copy(original, rng, next_id), original.article_id))
            else:  # a new story: must stay apart
                probe_set.append(
                    (synthetic_article(rng, words, cumulative, next_id, start), next_id)
                )
            next_id += 1
        full, lookup, right = [], [], 0
        for probe, expected in probe_set:
            began = time.perf_counter()
            signature = index.signature(probe.body)
            hashed = time.perf_counter()
            right += index.assign(probe, signature=signature) == expected
            done = time.perf_counter()
            full.append(done - began)
            lookup.append(done - hashed)
        label = f"{size:,} stories indexed"
        rows += [
            (f"{label}: assign ms/article, body hashed (median / p95 / max)", _ms(full)),
            (f"{label}: assign ms/article, signature given (median / p95 / max)", _ms(lookup)),
            (
                f"{label}: index memory MB (KB per article)",
                f"{memory / 1e6:.1f} ({memory / size / 1e3:.2f})",
            ),
            (f"{label}: probes placed right (1 in 5 a trimmed copy)", f"{right} / {probes}"),
        ]
    return rows


def _ms(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[round(0.95 * (len(ordered) - 1))]
    return f"{statistics.median(ordered) * 1e3:.2f} / {p95 * 1e3:.2f} / {ordered[-1] * 1e3:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tune", action="store_true", help="grid search on the TUNE half first")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args(argv)
    articles = load_stories()
    if args.tune:
        tune(articles)
        print()
    stories = Counter(a.story for a in articles)
    rows: list[tuple[str, str]] = [
        (
            "labelled set: articles / stories / stories with copies",
            f"{len(articles)} / {len(stories)} / {sum(1 for n in stories.values() if n > 1)}",
        ),
    ]
    for name, score in quality(articles, StoryIndex).items():
        rows.append(
            (
                f"pairwise precision / recall, {name}",
                f"{score.precision:.4f} / {score.recall:.4f}"
                f" ({score.false_pairs} false, {score.missed_pairs} missed pairs)",
            )
        )
    rows += cost(args.sizes)
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"| {'-' * width} | --- |")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
