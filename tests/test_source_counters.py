"""The per-source counters of /metrics (crawler/orchestration/source_counters.py)
say exactly what prometheus-client's own labelled counters and histogram said
before them, for a fraction of the memory."""

from __future__ import annotations

import tracemalloc

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from crawler.orchestration.metrics import Metrics
from crawler.orchestration.source_counters import CRAWL_BUCKETS, POLL_COUNTS, SourceCounters

# (source, result, stored, copies, duplicates, revised, page_errors)
POLLS = [
    ("wire", "ok", 3, 1, 2, 0, 0),
    ("wire", "not_modified", 0, 0, 0, 0, 0),
    ("blog", "error", 0, 0, 0, 0, 1),
    ("wire", "ok", 1, 0, 0, 1, 0),
]
PAGES = [("wire", 200), ("wire", 200), ("wire", 304), ("blog", 503), ("blog", 99)]
CRAWLS = [("wire", 0.2), ("wire", 0.5), ("wire", 5.0), ("wire", 4000.0), ("blog", 31.0)]


def _samples(registry: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.startswith(("newswatch_emails", "newswatch_websub", "newswatch_poll_"))
    }


def _reference(sources: list[str]) -> CollectorRegistry:
    """What the same events made with prometheus-client's own metric classes."""
    registry = CollectorRegistry()
    polls = Counter("newswatch_polls", "", ["source", "result"], registry=registry)
    counts = [Counter(name, "", ["source"], registry=registry) for name, _ in POLL_COUNTS]
    pages = Counter("newswatch_pages_fetched", "", ["source", "status"], registry=registry)
    crawls = Histogram(
        "newswatch_crawl_duration_seconds", "", ["source"], buckets=CRAWL_BUCKETS, registry=registry
    )
    for source in sources:
        for result in ("ok", "not_modified", "unchanged", "error"):
            polls.labels(source=source, result=result)
        for counter in counts:
            counter.labels(source=source)
    for source, result, *numbers in POLLS:
        polls.labels(source=source, result=result).inc()
        for counter, number in zip(counts, numbers, strict=True):
            counter.labels(source=source).inc(number)
    for source, status in PAGES:
        status_class = f"{status // 100}xx" if 100 <= status <= 599 else "other"
        pages.labels(source=source, status=status_class).inc()
    for source, seconds in CRAWLS:
        crawls.labels(source=source).observe(seconds)
    return registry


def test_per_source_counters_show_what_prometheus_client_showed() -> None:
    sources = ["wire", "blog", "quiet"]  # "quiet" never polled: its counters show 0
    metrics = Metrics(sources=lambda: sources)
    for source, result, *numbers in POLLS:
        metrics.per_source.poll_finished(source, result, tuple(numbers))
    for source, status in PAGES:
        metrics.page_fetched(source, status)
    for source, seconds in CRAWLS:
        metrics.crawl_finished(source, seconds)

    ours, theirs = _samples(metrics.registry), _samples(_reference(sources))
    assert ours == theirs
    assert ("newswatch_polls_total", (("result", "ok"), ("source", "quiet")), 0.0) in ours
    assert ("newswatch_crawl_duration_seconds_count", (("source", "wire"),), 4.0) in ours


def test_a_source_no_longer_polled_keeps_its_counts() -> None:
    polled = ["wire"]
    counters = SourceCounters(lambda: polled)
    counters.poll_finished("wire", "ok", (2, 0, 0, 0, 0))
    polled.clear()
    registry = CollectorRegistry()
    registry.register(counters)
    assert registry.get_sample_value("newswatch_articles_stored_total", {"source": "wire"}) == 2


def test_many_sources_cost_a_fraction_of_prometheus_clients_series() -> None:
    names = [f"src-{number:05d}" for number in range(2_000)]

    def traced(make: object) -> int:
        tracemalloc.start()
        try:
            kept = make()  # type: ignore[operator]
            size = tracemalloc.get_traced_memory()[0]
            del kept
            return size
        finally:
            tracemalloc.stop()

    def ours() -> SourceCounters:
        counters = SourceCounters(lambda: names)
        for name in names:
            counters.poll_finished(name, "ok", (1, 0, 0, 0, 0))
            counters.page_fetched(name, "2xx")
            counters.crawl_finished(name, 0.3)
        return counters

    def theirs() -> CollectorRegistry:
        registry = CollectorRegistry()
        polls = Counter("newswatch_polls", "", ["source", "result"], registry=registry)
        stored = Counter("newswatch_articles_stored", "", ["source"], registry=registry)
        pages = Counter("newswatch_pages_fetched", "", ["source", "status"], registry=registry)
        crawls = Histogram(
            "newswatch_crawl_duration_seconds",
            "",
            ["source"],
            buckets=CRAWL_BUCKETS,
            registry=registry,
        )
        for name in names:
            polls.labels(source=name, result="ok").inc()
            stored.labels(source=name).inc()
            pages.labels(source=name, status="2xx").inc()
            crawls.labels(source=name).observe(0.3)
        return registry

    # A ratio in one run (not a timed figure): ours must be at least 10× smaller.
    assert traced(ours) * 10 < traced(theirs)
