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

Used by bench/extraction.py and by tests/test_extract.py; this is the one copy.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

TOKEN = re.compile(r"\w+")
SHINGLE_SIZE = 4
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20191120


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
