"""Body extraction quality and speed: newswatch against plain trafilatura.

Scores ``spiders.extract.extract_article(html, url).text`` and
``trafilatura.extract(html)`` (default settings) on the article-extraction corpus
with the benchmark's metric (bench/scoring.py), and times both in the same run:
each extractor is warmed up by one full pass (the pass that is scored), then
timed over 3 more passes in which the two take turns page by page; the median
pass gives pages/s. Only the extraction call is timed, on already decompressed
HTML (a str, the same for both).

    python bench/extraction.py [--corpus DIR] [--passes N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import trafilatura
from scoring import CorpusPage, load_corpus, score_page, summarise

from spiders.extract import extract_article

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT / "tests" / "fixtures" / "extraction"


def newswatch_text(page: CorpusPage) -> str:
    return extract_article(page.html, page.url).text


def trafilatura_text(page: CorpusPage) -> str:
    return trafilatura.extract(page.html) or ""


EXTRACTORS: dict[str, Callable[[CorpusPage], str]] = {
    "newswatch": newswatch_text,
    "trafilatura": trafilatura_text,
}


def timed_pass(
    extractors: dict[str, Callable[[CorpusPage], str]],
    pages: Sequence[CorpusPage],
) -> dict[str, float]:
    """Seconds each extractor spends on one pass over every page. The extractors
    take turns page by page, so a slow moment of the machine costs both alike."""
    gc.collect()
    seconds = dict.fromkeys(extractors, 0.0)
    for page in pages:
        for name, extract in extractors.items():
            start = time.perf_counter()
            extract(page)
            seconds[name] += time.perf_counter() - start
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="folder with ground-truth.json and <id>.html.gz pages "
        "(beside it or in html/); default: %(default)s",
    )
    parser.add_argument(
        "--passes", type=int, default=3, help="timed passes per extractor; the median counts"
    )
    args = parser.parse_args(argv)

    pages = load_corpus(args.corpus)
    outputs = {name: [extract(page) for page in pages] for name, extract in EXTRACTORS.items()}
    seconds: dict[str, list[float]] = {name: [] for name in EXTRACTORS}
    for _ in range(args.passes):
        for name, spent in timed_pass(EXTRACTORS, pages).items():
            seconds[name].append(spent)
    per_page = {name: statistics.median(times) / len(pages) for name, times in seconds.items()}

    print(
        f"{len(pages)} pages from {args.corpus}; "
        f"pages/s is the median of {args.passes} passes after a warm-up pass\n"
    )
    print("| extractor | F1 ± | P | R | accuracy | pages/s | time ratio vs trafilatura |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, texts in outputs.items():
        summary = summarise(
            [score_page(text, page.truth) for text, page in zip(texts, pages, strict=True)]
        )
        ratio = per_page[name] / per_page["trafilatura"]
        print(
            f"| {name} | {summary.f1:.3f} ± {summary.f1_std:.3f} "
            f"| {summary.precision:.3f} ± {summary.precision_std:.3f} "
            f"| {summary.recall:.3f} ± {summary.recall_std:.3f} "
            f"| {summary.accuracy:.3f} ± {summary.accuracy_std:.3f} "
            f"| {1 / per_page[name]:.1f} | {ratio:.2f}× |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
