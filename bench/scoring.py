"""Scoring of extracted article bodies against the article-extraction corpus.

The metric is the one of scrapinghub/article-extraction-benchmark, as the corpus
README (tests/fixtures/extraction/README.md) states it: texts are split into ``\\w+``
tokens, each text becomes a multiset of 4-token shingles (a text of 1-3 tokens is
one shingle, an empty text none), and per page tp/fp/fn are the multiset overlaps,
divided by tp+fp+fn so that every page weighs the same. P is the mean page
precision over pages with tp+fp > 0, R the mean page recall over pages with
tp+fn > 0, F1 = 2PR/(P+R) (not the mean of page F1s), and accuracy the share of
pages whose token sequence equals the truth's. The "±" figures are the standard
deviation of each metric over bootstrap resamples of the pages.

Two tools for comparing extractors honestly on a small corpus: ``split_halves``
(the fixed develop/check split of the pages) and ``paired_bootstrap`` (the F1
difference between two extractors with its 95 % interval).

Used by bench/extraction.py and by the tests (tests/test_extract.py,
tests/test_bench_scoring.py); this is the one copy.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

TOKEN = re.compile(r"\w+")
SHINGLE_SIZE = 4
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20191120
# The corpus in the repository (one half of the benchmark; see its README).
BUNDLED_CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "extraction"


def tokenize(text: str) -> list[str]:
    """The text's runs of Unicode word characters, case and all."""
    return TOKEN.findall(text or "")


def shingles(text: str, size: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    """The multiset of ``size``-token shingles; a shorter text is one shingle."""
    tokens = tokenize(text)
    count = max(1, len(tokens) - size + 1)
    return Counter(shingle for i in range(count) if (shingle := tuple(tokens[i : i + size])))


@dataclass(frozen=True, slots=True)
class PageScore:
    """One page's shingle overlap (normalised to sum to 1) and exact match."""

    tp: float
    fp: float
    fn: float
    exact: bool

    @property
    def precision(self) -> float:
        if self.fp == self.fn == 0:
            return 1.0
        return self.tp / (self.tp + self.fp) if self.tp + self.fp > 0 else 0.0

    @property
    def recall(self) -> float:
        if self.fp == self.fn == 0:
            return 1.0
        return self.tp / (self.tp + self.fn) if self.tp + self.fn > 0 else 0.0

    @property
    def f1(self) -> float:
        """The page's own F1 (for per-page comparisons; the corpus F1 is not their mean)."""
        precision, recall = self.precision, self.recall
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def score_page(predicted: str, truth: str) -> PageScore:
    """Compare one predicted body with its ground truth."""
    found, wanted = shingles(predicted), shingles(truth)
    tp = float(sum((found & wanted).values()))
    fp = float(sum((found - wanted).values()))
    fn = float(sum((wanted - found).values()))
    total = tp + fp + fn
    if total:
        tp, fp, fn = tp / total, fp / total, fn / total
    return PageScore(tp, fp, fn, exact=tokenize(predicted) == tokenize(truth))


@dataclass(frozen=True, slots=True)
class Summary:
    """Corpus-level scores, each with its bootstrap standard deviation."""

    f1: float
    precision: float
    recall: float
    accuracy: float
    f1_std: float
    precision_std: float
    recall_std: float
    accuracy_std: float


def corpus_scores(pages: Sequence[PageScore]) -> tuple[float, float, float, float]:
    """(F1, P, R, accuracy) of a set of page scores."""
    precisions = [page.precision for page in pages if page.tp + page.fp > 0]
    recalls = [page.recall for page in pages if page.tp + page.fn > 0]
    precision = statistics.fmean(precisions) if precisions else 0.0
    recall = statistics.fmean(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = statistics.fmean(page.exact for page in pages) if pages else 0.0
    return f1, precision, recall, accuracy


def summarise(
    pages: Sequence[PageScore],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Summary:
    """The corpus scores with bootstrap standard deviations over pages (seeded, so
    the same outputs always print the same figures)."""
    rng = random.Random(seed)
    samples = (
        [corpus_scores([pages[rng.randrange(len(pages))] for _ in pages]) for _ in range(resamples)]
        if pages
        else []
    )
    spreads = [
        statistics.stdev(values) if len(values) > 1 else 0.0
        for values in zip(*samples, strict=True)
    ] or [0.0] * 4
    return Summary(*corpus_scores(pages), *spreads)


def paired_bootstrap(
    ours: Sequence[PageScore],
    theirs: Sequence[PageScore],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """(difference, low, high): our corpus F1 minus theirs on the same pages, and the
    95 % percentile interval of that difference.

    ``ours[i]`` and ``theirs[i]`` score the same page. Each resample draws page
    indices with replacement and scores both extractors on those same pages, so what
    varies is only which pages are in the sample, never whether the two saw the same
    ones: a hard page drawn twice counts twice for both. The F1 is the corpus F1 of
    ``corpus_scores`` (from mean P and mean R), not a mean of page F1s. Seeded: the
    same scores always give the same interval.
    """
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} page scores against {len(theirs)}: not the same pages")
    difference = corpus_scores(ours)[0] - corpus_scores(theirs)[0]
    if not ours:
        return difference, difference, difference
    rng = random.Random(seed)
    differences = []
    for _ in range(resamples):
        drawn = [rng.randrange(len(ours)) for _ in ours]
        differences.append(
            corpus_scores([ours[i] for i in drawn])[0]
            - corpus_scores([theirs[i] for i in drawn])[0]
        )
    differences.sort()
    return difference, _percentile(differences, 0.025), _percentile(differences, 0.975)


def _percentile(ordered: Sequence[float], share: float) -> float:
    """The value ``share`` of the way through sorted values, interpolated between
    neighbours (numpy's default "linear" method)."""
    position = share * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def split_halves(page_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """(develop, check): the pages ordered by the SHA-256 of their id, the first half
    (rounded down) to develop on, the rest to check.

    Extraction rules tuned while looking at a page fit that page; their score on it
    says little about pages nobody looked at. So changes are developed (looked at,
    debugged, tuned) on the develop half only, and the check half is the figure to
    report. The split is fixed by the page ids alone, not by a list anyone keeps or
    a random seed anyone picks, so nobody can move a hard page to the half that is
    not reported.
    """
    ordered = sorted(page_ids, key=lambda page_id: hashlib.sha256(page_id.encode()).hexdigest())
    return ordered[: len(ordered) // 2], ordered[len(ordered) // 2 :]


@dataclass(frozen=True, slots=True)
class CorpusPage:
    """One corpus page: its id, URL, decoded HTML, true body and any extra labels."""

    id: str
    url: str
    html: str
    truth: str
    labels: dict[str, Any]


def load_corpus(directory: Path) -> list[CorpusPage]:
    """The pages of a corpus folder, sorted by id.

    The folder holds ``ground-truth.json`` and the pages as ``<id>.html.gz``, either
    beside it or in ``html/`` (the layout of the shared corpus).
    """
    truth: dict[str, dict[str, Any]] = json.loads(
        (directory / "ground-truth.json").read_text(encoding="utf-8")
    )
    pages = []
    for page_id in sorted(truth):
        path = directory / f"{page_id}.html.gz"
        if not path.exists():
            path = directory / "html" / f"{page_id}.html.gz"
        html = gzip.decompress(path.read_bytes()).decode("utf-8")
        labels = truth[page_id]
        pages.append(
            CorpusPage(
                page_id, str(labels["url"]), html, str(labels.get("articleBody") or ""), labels
            )
        )
    return pages
