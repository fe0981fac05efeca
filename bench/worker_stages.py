"""Where a CPU worker's time goes: each stage of the one task it runs per page.

    python bench/worker_stages.py [--sources 5] [--articles 40] [--passes 3]

Renders the pipeline benchmark's generated site (bench/newssite_gen.py, the same
pages, no server), then runs ``spiders.prepare.extract_with_keys`` (what a worker
does with one fetched page: decode, parse, metadata, body, dates, authors,
language, repairs, dedup keys) on every article page in this process, timing each
stage function with ``time.process_time`` around it, and plain
``trafilatura.extract`` on the same pages (what the naive crawler does) in the
same passes. Prints CPU milliseconds per page for each stage (the median pass);
the stages are the top-level steps of ``spiders.extract.article._extract_article`` and
``crawler.domain.dedup.body_keys``, so they add up to the task minus a little glue.

One process on one core: in a crawl both cores are busy and each page costs the
workers ~15 % more (shared caches), and the crawling process adds its own (fetch,
store, match; see docs/performance.md).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import trafilatura  # noqa: E402
from newssite_gen import GeneratedSite  # noqa: E402

import crawler.domain.dedup  # noqa: E402
import spiders.extract.article  # noqa: E402
from spiders.prepare import extract_with_keys  # noqa: E402

# The top-level steps of spiders.extract.article._extract_article, in page order: the
# names that spiders/extract/article.py imports and calls, patched there.
EXTRACT_STAGES = (
    "decode_page",
    "parse_page",
    "read_metadata",
    "choose_title",
    "metadata_titles",
    "heading_texts",
    "caption_texts",
    "prepare_body",
    "choose_keywords",
    "metadata_body",
    "choose_description",
    "find_lead",
    "extract_body",
    "restore_block_lines",
    "with_lead",
    "clean_body",
    "drop_link_paragraphs",
    "repair_mojibake",
    "choose_dates",
    "choose_language",
    "choose_url",
    "repair_hyphenation",
    "choose_authors",
    "choose_image",
    "choose_section",
)


def article_pages(sources: int, articles: int) -> list[tuple[str, bytes]]:
    site = GeneratedSite(sources, articles)
    site.build(8000)
    return [
        (
            f"http://127.0.0.1:8000{path}",
            gzip.decompress(resource.body) if resource.gzipped else resource.body,
        )
        for path, resource in site.resources.items()
        if resource.kind == "article"
    ]


def timed(function: Callable[..., Any], name: str, spent: Counter[str]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.process_time() - started

    return wrapper


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=5)
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()

    pages = article_pages(args.sources, args.articles)
    spiders.extract.article.warm_up()
    params = crawler.domain.dedup.SignatureParams()
    spent: Counter[str] = Counter()
    for name in EXTRACT_STAGES:
        setattr(
            spiders.extract.article,
            name,
            timed(getattr(spiders.extract.article, name), name, spent),
        )
    crawler.domain.dedup.body_keys = timed(crawler.domain.dedup.body_keys, "body_keys", spent)

    passes: list[dict[str, float]] = []
    for _ in range(args.passes):
        spent.clear()
        started = time.process_time()
        for url, body in pages:
            extract_with_keys(body, url, "text/html; charset=utf-8", params)
        task = time.process_time() - started
        started = time.process_time()
        for _url, body in pages:
            trafilatura.extract(body.decode("utf-8"))
        naive = time.process_time() - started
        passes.append({**spent, "(whole task)": task, "(trafilatura.extract, naive)": naive})

    per_page = {
        name: statistics.median(p.get(name, 0.0) for p in passes) / len(pages) * 1000
        for name in passes[0]
    }
    print(
        f"{len(pages)} article pages of the generated site, median of {args.passes} passes, "
        "CPU ms per page, one process\n"
    )
    print("| stage | ms per page |\n| --- | ---: |")
    stages = sorted(
        (n for n in per_page if not n.startswith("(")), key=per_page.__getitem__, reverse=True
    )
    for name in [*stages, "(whole task)", "(trafilatura.extract, naive)"]:
        print(f"| {name} | {per_page[name]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
