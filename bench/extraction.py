"""Body extraction quality and speed: newswatch against trafilatura and readability-lxml.

Scores ``spiders.extract.extract_article(html, url).text`` and the two reference
extractors as scrapinghub/article-extraction-benchmark runs them (its
run_trafilatura.py: ``trafilatura.extract(html, include_comments=False)``; its
run_readability.py: ``html_text.extract_text(Document(html).summary(html_partial=True))``)
on the article-extraction corpus with the benchmark's metric (bench/scoring.py).

On the bundled corpus the pages fall into two fixed halves (``scoring.split_halves``):
develop on the "develop" half, report the "check" half. For each half and for all
pages it prints one table (F1 ± bootstrap std, P, R, accuracy, pages below F1 0.5,
ms per page, time ratio to trafilatura); then, per half, newswatch's corpus-F1
difference to each reference with its paired-bootstrap 95 % interval; the ten
pages where newswatch scores worst, with the reason its scores show; and the
targets of issue 24. Another corpus (``--corpus``) is scored as one set.

Timing: each extractor is warmed up by one full pass (the pass that is scored),
then timed over ``--passes`` more passes in which the extractors take turns page by
page; the median pass gives ms per page. Only the extraction call is timed, on
already decompressed HTML (a str, the same for all).

    python bench/extraction.py [--corpus DIR] [--passes N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import html_text
import readability
import trafilatura
from extraction_fields import SNAPSHOT, article_fields, field_changes, load_snapshot
from scoring import (
    BOOTSTRAP_RESAMPLES,
    BUNDLED_CORPUS,
    CorpusPage,
    PageScore,
    load_corpus,
    paired_bootstrap,
    score_page,
    split_halves,
    summarise,
    tokenize,
)

from spiders.extract import extract_article

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from extraction_fields import FieldChange

# A page below this F1 has lost most of its body or is mostly something else.
LOW_F1 = 0.5
# newswatch's time per page at most this many times trafilatura's (issue 24).
MAX_TIME_RATIO = 1.3
WORST_SHOWN = 10
# Precision or recall below this: a reader sees the extra or missing text.
NOTICEABLE = 0.9
# A half this small says nothing a bootstrap could bound: score the set as one.
MIN_HALF_PAGES = 10
REFERENCES = ("trafilatura", "readability")
# The target line names this many moved fields; extraction_fields.py lists them all.
CHANGES_NAMED = 5


def newswatch_text(page: CorpusPage) -> str:
    return extract_article(page.html, page.url).text


def trafilatura_text(page: CorpusPage) -> str:
    return trafilatura.extract(page.html, include_comments=False) or ""


def readability_text(page: CorpusPage) -> str:
    summary = readability.Document(page.html).summary(html_partial=True)
    return str(html_text.extract_text(summary))


EXTRACTORS: dict[str, Callable[[CorpusPage], str]] = {
    "newswatch": newswatch_text,
    "trafilatura": trafilatura_text,
    "readability": readability_text,
}


@dataclass(frozen=True, slots=True)
class PageGroup:
    """A named set of corpus pages, as indices into the corpus' page list."""

    name: str
    indices: list[int]


def page_groups(pages: Sequence[CorpusPage], corpus: Path) -> list[PageGroup]:
    """The develop and check halves and all pages; all pages only for a corpus other
    than the bundled one (its split is the bundled corpus' own) or one too small."""
    everything = PageGroup("all pages", list(range(len(pages))))
    if corpus.resolve() != BUNDLED_CORPUS.resolve() or len(pages) < 2 * MIN_HALF_PAGES:
        return [everything]
    position = {page.id: index for index, page in enumerate(pages)}
    develop, check = split_halves(position)
    return [
        PageGroup("develop half", sorted(position[page_id] for page_id in develop)),
        PageGroup("check half", sorted(position[page_id] for page_id in check)),
        everything,
    ]


def timed_pass(
    extractors: dict[str, Callable[[CorpusPage], str]],
    pages: Sequence[CorpusPage],
) -> dict[str, list[float]]:
    """Seconds each extractor spends on each page in one pass. The extractors take
    turns page by page, so a slow moment of the machine costs them alike."""
    gc.collect()
    seconds: dict[str, list[float]] = {name: [] for name in extractors}
    for page in pages:
        for name, extract in extractors.items():
            start = time.perf_counter()
            extract(page)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def ms_per_page(passes: Sequence[list[float]], indices: Sequence[int]) -> float:
    """Milliseconds per page of the median pass over the given pages."""
    return 1000 * statistics.median(sum(one[i] for i in indices) for one in passes) / len(indices)


def extractor_table(
    scores: dict[str, list[PageScore]],
    timings: dict[str, list[list[float]]],
    group: PageGroup,
) -> list[str]:
    lines = [
        "| extractor | F1 ± | P | R | accuracy | pages F1 < 0.5 | ms/page | time vs trafilatura |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    reference_ms = ms_per_page(timings["trafilatura"], group.indices)
    for name, page_scores in scores.items():
        chosen = [page_scores[i] for i in group.indices]
        summary = summarise(chosen)
        low = sum(score.f1 < LOW_F1 for score in chosen)
        ms = ms_per_page(timings[name], group.indices)
        lines.append(
            f"| {name} | {summary.f1:.3f} ± {summary.f1_std:.3f} | {summary.precision:.3f} "
            f"| {summary.recall:.3f} | {summary.accuracy:.3f} | {low} | {ms:.1f} "
            f"| {ms / reference_ms:.2f}× |"
        )
    return lines


def f1_differences(
    scores: dict[str, list[PageScore]], group: PageGroup
) -> dict[str, tuple[float, float, float]]:
    """{reference: (newswatch F1 − its F1, low, high)} on the group's pages."""
    ours = [scores["newswatch"][i] for i in group.indices]
    return {
        name: paired_bootstrap(ours, [scores[name][i] for i in group.indices])
        for name in REFERENCES
    }


def signed(value: float) -> str:
    return f"{value:+.3f}"


def interval(difference: tuple[float, float, float]) -> str:
    value, low, high = difference
    return f"{signed(value)} [{signed(low)}, {signed(high)}]"


def page_reason(score: PageScore, predicted: str, truth: str) -> str:
    """What a page's scores say went wrong, in a few words."""
    if score.recall < LOW_F1:
        wanted = Counter(tokenize(truth))
        kept = sum((Counter(tokenize(predicted)) & wanted).values())
        return f"body lost: {kept} of {wanted.total()} true tokens kept"
    if score.precision == score.recall == 1:
        return "exact" if score.exact else "same shingles, tokens in another order"
    if score.precision < NOTICEABLE and score.recall < NOTICEABLE:
        return f"extra and missed text: precision {score.precision:.2f}, recall {score.recall:.2f}"
    if score.precision < score.recall:
        return f"extra text: precision {score.precision:.2f}"
    return f"missed text: recall {score.recall:.2f}"


def worst_pages(
    pages: Sequence[CorpusPage],
    scores: dict[str, list[PageScore]],
    texts: Sequence[str],
    half_of: dict[int, str],
) -> list[str]:
    ours = scores["newswatch"]
    worst = sorted(range(len(pages)), key=lambda i: (ours[i].f1, pages[i].id))[:WORST_SHOWN]
    lines = [
        "| page | half | F1 | P | R | trafilatura F1 | reason |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i in worst:
        score = ours[i]
        lines.append(
            f"| {pages[i].id[:8]} | {half_of.get(i, '-')} | {score.f1:.3f} "
            f"| {score.precision:.3f} | {score.recall:.3f} | {scores['trafilatura'][i].f1:.3f} "
            f"| {page_reason(score, texts[i], pages[i].truth)} |"
        )
    return lines


def target_checks(
    scores: dict[str, list[PageScore]],
    timings: dict[str, list[list[float]]],
    halves: Sequence[PageGroup],
    differences: dict[str, dict[str, tuple[float, float, float]]],
    changes: list[FieldChange] | None,
) -> list[tuple[str, bool]]:
    """(what was measured against what target, met) for each target of issue 24."""
    checks = []
    for group in halves:
        low = sum(scores["newswatch"][i].f1 < LOW_F1 for i in group.indices)
        checks.append(
            (f"(a) {group.name}: {low} newswatch pages below F1 {LOW_F1} (target 0)", low == 0)
        )
    for group in halves:
        difference = differences[group.name]["trafilatura"]
        checks.append(
            (
                f"(b) {group.name}: newswatch − trafilatura F1 = {interval(difference)} "
                "(target: above 0, 95 % interval excluding 0)",
                difference[0] > 0 and difference[1] > 0,
            )
        )
    every_page = list(range(len(scores["newswatch"])))
    ratio = ms_per_page(timings["newswatch"], every_page) / ms_per_page(
        timings["trafilatura"], every_page
    )
    checks.append(
        (
            f"(c) time per page = {ratio:.2f}× trafilatura's (target ≤ {MAX_TIME_RATIO}×)",
            ratio <= MAX_TIME_RATIO,
        )
    )
    if changes is not None:
        named = changes[:CHANGES_NAMED]
        moved = ", ".join(f"{change.page_id[:8]} {change.field}" for change in named)
        more = f" and {len(changes) - len(named)} more" if len(changes) > len(named) else ""
        checks.append(
            (
                f"(d) non-body fields as in {SNAPSHOT.name}: "
                + (f"{len(changes)} differ ({moved}{more})" if changes else "all unchanged")
                + " (target: no change; bench/extraction_fields.py lists them)",
                not changes,
            )
        )
    return checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=BUNDLED_CORPUS,
        help="folder with ground-truth.json and <id>.html.gz pages "
        "(beside it or in html/); default: %(default)s",
    )
    parser.add_argument(
        "--passes", type=int, default=3, help="timed passes per extractor; the median counts"
    )
    args = parser.parse_args(argv)

    pages = load_corpus(args.corpus)
    groups = page_groups(pages, args.corpus)
    halves = groups[:-1] or groups
    bundled = len(groups) > 1

    # The scored pass, which is also the warm-up; newswatch's articles give the
    # non-body fields for target (d) as well.
    articles = [extract_article(page.html, page.url) for page in pages]
    texts = {"newswatch": [article.text for article in articles]} | {
        name: [extract(page) for page in pages]
        for name, extract in EXTRACTORS.items()
        if name != "newswatch"
    }
    scores = {
        name: [score_page(text, page.truth) for text, page in zip(outputs, pages, strict=True)]
        for name, outputs in texts.items()
    }
    timings: dict[str, list[list[float]]] = {name: [] for name in EXTRACTORS}
    for _ in range(args.passes):
        for name, seconds in timed_pass(EXTRACTORS, pages).items():
            timings[name].append(seconds)

    passes = f"{args.passes} passes" if args.passes != 1 else "1 pass"
    print(
        f"{len(pages)} pages from {args.corpus}; ms/page is the median of {passes} "
        "after a warm-up pass; ± is the bootstrap standard deviation"
    )
    print(
        "halves fixed by page id (scoring.split_halves): develop on the develop half, "
        "report the check half"
        if bundled
        else "one set: the halves and the fields snapshot (target d) are the bundled corpus'"
    )
    for group in groups:
        print(f"\n{group.name}: {len(group.indices)} pages\n")
        print("\n".join(extractor_table(scores, timings, group)))

    differences = {group.name: f1_differences(scores, group) for group in groups}
    print(
        f"\nnewswatch's corpus F1 minus each reference's, with the 95 % interval of "
        f"a paired bootstrap ({BOOTSTRAP_RESAMPLES} resamples of the same pages for both):\n"
    )
    print("| pages | " + " | ".join(f"− {name}" for name in REFERENCES) + " |")
    print("| --- |" + " --- |" * len(REFERENCES))
    for group in groups:
        cells = " | ".join(interval(differences[group.name][name]) for name in REFERENCES)
        print(f"| {group.name} | {cells} |")

    half_of = {i: group.name.split()[0] for group in halves if bundled for i in group.indices}
    print(f"\nnewswatch's {WORST_SHOWN} worst pages (page F1):\n")
    print("\n".join(worst_pages(pages, scores, texts["newswatch"], half_of)))

    changes = None
    if bundled:
        current = {
            page.id: article_fields(article) for page, article in zip(pages, articles, strict=True)
        }
        changes = field_changes(load_snapshot(), current)
    checks = target_checks(scores, timings, halves, differences, changes)
    print("\ntargets:")
    print("\n".join(f"- {'met' if ok else 'MISSED'}: {text}" for text, ok in checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
