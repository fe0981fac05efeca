"""The per-source counters of ``/metrics``, kept as one row of numbers per source.

prometheus-client keeps each labelled series as an object of its own, with a lock
and a value object per counter, and per bucket of a histogram: about 10 KB a
source for the nine counters pre-set to zero, the response classes and the crawl
time histogram, 90 MB at 10,000 sources (``bench/sources.py``; the service's PSS
grew by 13 KB a source). Here a source costs one ``array`` of doubles (~0.3 KB),
and the series are made only when ``/metrics`` is scraped, with the same names,
labels and meaning as before.

Updates come from the event loop (a poll's outcome, Scrapy's signals); a scrape
reads from a worker thread. Each update is one store into an array slot, and the
rows are copied before they are read, so a scrape never sees a row being added.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator

    from prometheus_client.metrics_core import Metric

POLL_RESULTS = ("ok", "not_modified", "unchanged", "error")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
# A poll of a big sitemap or a slow site can take many minutes.
CRAWL_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)

# (metric name without _total, help) of the counts each poll adds to.
POLL_COUNTS = (
    ("newswatch_articles_stored", "New articles stored"),
    (
        "newswatch_story_copies",
        "Word-for-word copies of a known story from another outlet, stored as members "
        "of that story",
    ),
    (
        "newswatch_duplicates_skipped",
        "Fetched articles that were already stored (same URL, alias or text)",
    ),
    ("newswatch_revisions", "Stored articles whose text changed materially"),
    ("newswatch_page_errors", "Article pages that could not be fetched or read"),
)

# Where each figure sits in a source's row.
_RESULTS = 0
_COUNTS = _RESULTS + len(POLL_RESULTS)
_STATUSES = _COUNTS + len(POLL_COUNTS)
_BUCKETS = _STATUSES + len(STATUS_CLASSES)  # one per bound, then +Inf
_SUM = _BUCKETS + len(CRAWL_BUCKETS) + 1
_WIDTH = _SUM + 2  # the sum, then the count of crawls timed


class SourceCounters:
    """Polls by result, what they stored, responses by status class and crawl times,
    per source; a prometheus-client collector (register it in a registry).

    ``sources`` returns the sources polled now: their poll counters are shown from
    zero before their first poll. A source no longer polled keeps what it counted
    (a counter never goes back) until the service restarts."""

    def __init__(self, sources: Callable[[], Collection[str]] | None = None) -> None:
        self._sources = sources
        self._rows: dict[str, array[float]] = {}

    def _row(self, source: str) -> array[float]:
        row = self._rows.get(source)
        if row is None:
            row = self._rows[source] = array("d", bytes(8 * _WIDTH))
        return row

    def poll_finished(self, source: str, result: str, counts: tuple[int, ...]) -> None:
        """One poll of ``source``: its result (one of POLL_RESULTS) and its
        ``counts`` in the order of POLL_COUNTS."""
        row = self._row(source)
        row[_RESULTS + POLL_RESULTS.index(result)] += 1
        for offset, count in enumerate(counts):
            row[_COUNTS + offset] += count

    def page_fetched(self, source: str, status_class: str) -> None:
        self._row(source)[_STATUSES + STATUS_CLASSES.index(status_class)] += 1

    def crawl_finished(self, source: str, seconds: float) -> None:
        row = self._row(source)
        row[_BUCKETS + bisect_left(CRAWL_BUCKETS, seconds)] += 1
        row[_SUM] += seconds
        row[_SUM + 1] += 1

    # -- prometheus-client's collector interface ------------------------------------

    def describe(self) -> list[Metric]:
        return []  # the series depend on the sources; nothing to check for clashes

    def collect(self) -> Iterator[Metric]:
        rows = dict(self._rows)  # one C-level copy: no row is added while it is read
        polled = list(self._sources()) if self._sources else []
        empty = array("d", bytes(8 * _WIDTH))
        shown = sorted({*rows, *polled})
        polls = CounterMetricFamily(
            "newswatch_polls",
            "Finished polls by source and result (ok, not_modified, unchanged, error)",
            labels=["source", "result"],
        )
        counts = [CounterMetricFamily(name, text, labels=["source"]) for name, text in POLL_COUNTS]
        pages = CounterMetricFamily(
            "newswatch_pages_fetched",
            "HTTP responses received (feeds, pages, robots.txt), by source and status class",
            labels=["source", "status"],
        )
        crawls = HistogramMetricFamily(
            "newswatch_crawl_duration_seconds",
            "Time from the start to the end of a source's crawl",
            labels=["source"],
        )
        for source in shown:
            row = rows.get(source, empty)
            for offset, result in enumerate(POLL_RESULTS):
                polls.add_metric([source, result], row[_RESULTS + offset])
            for offset, family in enumerate(counts):
                family.add_metric([source], row[_COUNTS + offset])
            for offset, status in enumerate(STATUS_CLASSES):
                if row[_STATUSES + offset]:
                    pages.add_metric([source, status], row[_STATUSES + offset])
            if row[_SUM + 1]:
                crawls.add_metric([source], _cumulative(row), row[_SUM])
        yield polls
        yield from counts
        yield pages
        yield crawls


def _cumulative(row: array[float]) -> list[tuple[str, float]]:
    """The histogram's buckets as Prometheus shows them: counts up to each bound."""
    buckets, total = [], 0.0
    for offset, bound in enumerate((*CRAWL_BUCKETS, float("inf"))):
        total += row[_BUCKETS + offset]
        buckets.append(("+Inf" if bound == float("inf") else str(float(bound)), total))
    return buckets
