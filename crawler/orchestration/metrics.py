"""What the service counts, for ``/metrics`` in the Prometheus text format.

One ``Metrics`` object per running service owns its own ``CollectorRegistry``
(never prometheus-client's global one), so tests can make as many as they like.
Counters move as the service works: the service reports each finished poll and
delivery run; a Scrapy extension, added to the crawl settings by ``instrument``,
counts HTTP responses and times each crawl. Per-source health (last success,
failures in a row), matches per rule, unsent deliveries and each channel's
deliveries and pending articles are read from the database when scraped, so they
survive restarts, count what every process sent, and need no bookkeeping.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from scrapy import signals
from scrapy.exceptions import NotConfigured

from alerts.channel_status import channel_statuses
from crawler.domain.health import State
from crawler.domain.urls import redact_text
from crawler.orchestration.health import OfflineHint
from crawler.orchestration.source_counters import SourceCounters

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Mapping

    from apscheduler.events import JobSubmissionEvent
    from prometheus_client.metrics_core import Metric
    from scrapy.crawler import Crawler, CrawlerRunner
    from scrapy.http import Response

    from alerts.channel_status import ChannelStatus
    from alerts.digest import DigestReport
    from crawler.domain.config import Config
    from crawler.domain.health import Health
    from crawler.domain.items import PollOutcome
    from crawler.storage.store import Store

logger = logging.getLogger(__name__)

# The Scrapy setting through which crawls find the service's Metrics.
METRICS_SETTING = "NEWSWATCH_METRICS"
EXTENSION = "crawler.orchestration.metrics.CrawlMetricsExtension"
# A poll should start within a second of its time; the top buckets show a backlog.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)
POLL_JOB_PREFIX = "poll:"  # crawler.orchestration.polling POLL_JOB
DELIVERY_KINDS = ("digest", "alert")
# What came of a WebSub delivery (crawler/orchestration/websub.py).
PUSH_RESULTS = ("accepted", "hint", "replayed", "unsigned", "bad_signature", "not_active")

# No ``*_created`` series beside every counter: they double /metrics and say only
# when the service started (process-wide; newswatch is the only user in its process).
disable_created_metrics()


def status_class(status: int) -> str:
    """``2xx``, ``3xx``, ``4xx``, ``5xx`` (anything else: ``other``)."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def poll_result(outcome: PollOutcome) -> str:
    """How a poll went, in one word (the ``result`` label of ``newswatch_polls_total``)."""
    if outcome.error:
        return "error"
    if outcome.not_modified:
        return "not_modified"
    if outcome.unchanged:
        return "unchanged"
    return "ok"


class Metrics:
    """The service's counters and histograms, and the database-backed gauges."""

    def __init__(
        self,
        store: Store | None = None,
        sources: Callable[[], Collection[str]] | None = None,
        config: Callable[[], Config] | None = None,
    ) -> None:
        """``store``, when given, backs the per-source, per-rule and delivery
        gauges. ``sources`` returns the names of the sources polled now (the
        configuration can be reloaded): their counters start at zero, and only
        they get per-source gauges (a removed source is not "stale"). ``config``
        returns the configuration in use, for the per-channel figures (its channels
        and who reads them)."""
        self.registry = CollectorRegistry()
        registry = self.registry
        self.per_source = SourceCounters(sources)
        # Every poll's outcome passes here, with the sources polled now: what the
        # one hint at start that no source resolves needs.
        self.offline = OfflineHint(sources) if sources is not None else None
        registry.register(self.per_source)
        self.emails_sent = Counter(
            "newswatch_emails_sent",
            "Messages accepted by the mail server (or written to the outbox), by kind",
            ["kind"],
            registry=registry,
        )
        self.emails_failed = Counter(
            "newswatch_emails_failed",
            "Failed sends (each is retried), by kind",
            ["kind"],
            registry=registry,
        )
        self.websub_pushes = Counter(
            "newswatch_websub_pushes",
            "WebSub deliveries to a subscription's callback, by result: accepted (signed "
            "with its secret: the source is polled), hint (to a subscription without a "
            "secret: polled, paced), replayed (a body taken lately: not polled again), "
            "unsigned or bad_signature (ignored), not_active (no active subscription there)",
            ["result"],
            registry=registry,
        )
        self._due: dict[str, datetime] = {}  # a submitted poll job's due time, by source
        self.poll_lag = Histogram(
            "newswatch_poll_start_lag_seconds",
            "Time from a scheduled poll's due time to its start (a free poll slot)",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        for result in PUSH_RESULTS:
            self.websub_pushes.labels(result=result)
        for kind in DELIVERY_KINDS:
            self.emails_sent.labels(kind=kind)
            self.emails_failed.labels(kind=kind)
        if store is not None:
            registry.register(StoreCollector(store, sources, config))

    def __deepcopy__(self, memo: dict[int, Any]) -> Metrics:
        # Scrapy deep-copies its settings for every crawler; every crawl must count
        # into this one object, not into a copy.
        return self

    def instrument(self, runner: CrawlerRunner) -> None:
        """Make every crawl ``runner`` starts count its responses and time itself
        (call it again for a runner made after a configuration reload)."""
        extensions = runner.settings.getdict("EXTENSIONS")
        runner.settings.set("EXTENSIONS", {**extensions, EXTENSION: 0})
        runner.settings.set(METRICS_SETTING, self)

    # -- what the rest of newswatch calls ------------------------------------------

    def page_fetched(self, source: str, status: int) -> None:
        self.per_source.page_fetched(source, status_class(status))

    def crawl_finished(self, source: str, seconds: float) -> None:
        self.per_source.crawl_finished(source, seconds)

    def poll_due(self, event: JobSubmissionEvent) -> None:
        """The scheduler's listener for submitted jobs: note when a poll job was due."""
        if event.job_id.startswith(POLL_JOB_PREFIX) and event.scheduled_run_times:
            source = event.job_id.removeprefix(POLL_JOB_PREFIX)
            self._due[source] = event.scheduled_run_times[-1]

    def poll_started(self, source: str) -> None:
        """A poll of ``source`` got its slot: if the scheduler started it, how late."""
        due = self._due.pop(source, None)
        if due is not None:
            self.poll_lag.observe(max((datetime.now(UTC) - due).total_seconds(), 0.0))

    def poll_finished(self, outcome: PollOutcome) -> None:
        """Count what one poll did (call it with every outcome, failed or not)."""
        if self.offline is not None:
            self.offline.poll_finished(
                outcome.source, outcome.error_class, failed=outcome.error is not None
            )
        self.per_source.poll_finished(
            outcome.source,
            poll_result(outcome),
            # In the order of source_counters.POLL_COUNTS.
            (
                outcome.stored,
                outcome.copies,
                outcome.duplicates,
                outcome.revised,
                outcome.page_errors,
            ),
        )

    def push_received(self, result: str) -> None:
        """Count a WebSub delivery (``result``: one of PUSH_RESULTS)."""
        self.websub_pushes.labels(result=result).inc()

    def email_sent(self, kind: str, count: int = 1) -> None:
        self.emails_sent.labels(kind=kind).inc(count)

    def email_failed(self, kind: str, count: int = 1) -> None:
        self.emails_failed.labels(kind=kind).inc(count)

    def deliveries_finished(self, report: DigestReport, kind: str) -> None:
        """Count a digest or alert run's messages sent and recipients failed."""
        self.email_sent(kind, report.messages)
        self.email_failed(kind, len(report.failed))


class StoreCollector:
    """Gauges read from the database at each scrape (so /metrics must be rendered
    off the reactor thread). A database that does not answer is reported as
    ``newswatch_database_up 0``, never as a failed scrape."""

    def __init__(
        self,
        store: Store,
        sources: Callable[[], Collection[str]] | None = None,
        config: Callable[[], Config] | None = None,
    ) -> None:
        self.store = store
        self.sources = sources
        self.config = config

    def describe(self) -> list[Metric]:
        return []  # nothing to check for clashes; keeps registration off the database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("newswatch_database_up", "1 when the database answered")
        try:
            sources = self.store.source_statuses(with_article_counts=False)
            rules = self.store.rule_match_counts()
            unsent = self.store.unsent_delivery_counts()
            health = self.store.all_health()
            channels = channel_statuses(self.store, self.config()) if self.config else []
        except Exception as error:
            logger.warning("metrics: the database did not answer: %s", redact_text(str(error)))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        last_success = GaugeMetricFamily(
            "newswatch_source_last_success_timestamp_seconds",
            "When the source was last polled without error (unix time)",
            labels=["source"],
        )
        last_poll = GaugeMetricFamily(
            "newswatch_source_last_poll_timestamp_seconds",
            "When the source was last polled (unix time)",
            labels=["source"],
        )
        failures = GaugeMetricFamily(
            "newswatch_source_consecutive_failures", "Failed polls in a row", labels=["source"]
        )
        interval = GaugeMetricFamily(
            "newswatch_source_poll_interval_seconds",
            "The interval the scheduler set after the source's last poll (adaptive "
            "polling, or a failure's backoff)",
            labels=["source"],
        )
        polled = set(self.sources()) if self.sources else None
        for row in sources:
            if polled is not None and row["name"] not in polled:
                continue  # removed or disabled: not polled, so never "stale"
            failures.add_metric([row["name"]], row["consecutive_failures"] or 0)
            if row["poll_interval_seconds"] is not None:
                interval.add_metric([row["name"]], row["poll_interval_seconds"])
            if row["last_success_at"] is not None:
                last_success.add_metric([row["name"]], row["last_success_at"].timestamp())
            if row["last_polled_at"] is not None:
                last_poll.add_metric([row["name"]], row["last_polled_at"].timestamp())
        yield from (last_success, last_poll, failures, interval)
        yield from _health_metrics(health, polled)
        matches = GaugeMetricFamily(
            "newswatch_rule_matches", "Stored articles each rule matched", labels=["rule"]
        )
        for rule, count in sorted(rules.items()):
            matches.add_metric([rule], count)
        yield matches
        pending = GaugeMetricFamily(
            "newswatch_deliveries_unsent",
            "Messages created but not accepted yet (they are retried)",
            labels=["kind"],
        )
        for kind in sorted({*DELIVERY_KINDS, *unsent}):
            pending.add_metric([kind], unsent.get(kind, 0))
        yield pending
        yield from _channel_metrics(channels)


def _health_metrics(
    health: Mapping[str, Health], polled: Collection[str] | None
) -> Iterator[Metric]:
    """Per polled source: 1 for its health state and 0 for the others (so an alert
    rule can say ``newswatch_source_state{state!="ok"} == 1``), and the typical gap
    between its articles that its rhythm learned."""
    states = GaugeMetricFamily(
        "newswatch_source_state",
        "1 for the source's current health state (ok, quiet, failing, blocked, "
        "degraded, moved), 0 for the others",
        labels=["source", "state"],
    )
    gap = GaugeMetricFamily(
        "newswatch_source_expected_gap_seconds",
        "The typical time between the source's articles, learned from its publish times",
        labels=["source"],
    )
    for source, current in sorted(health.items()):
        if polled is not None and source not in polled:
            continue
        for state in State:
            states.add_metric([source, state.value], 1 if state is current.state else 0)
        hours = current.evidence.get("typical_gap_hours")
        if isinstance(hours, int | float):
            gap.add_metric([source], hours * 3600)
    yield from (states, gap)


def _channel_metrics(channels: list[ChannelStatus]) -> Iterator[Metric]:
    """Per channel, from the ledger: deliveries sent and refused, articles pending.

    Labelled by the channel's kind (email, webhook, apprise, feed), as dashboards
    sum them, and by its name: names come only from the configuration (like source
    names), never from the data, so the series stay as few as the configured
    channels. Channels no longer configured are left out, as removed sources are.
    """
    deliveries = CounterMetricFamily(
        "newswatch_channel_deliveries",
        "Deliveries (digests and alerts) per channel by outcome: sent (the receiver "
        "took it) or failed (refused for good, never retried); from the ledger",
        labels=["kind", "channel", "outcome"],
    )
    pending = GaugeMetricFamily(
        "newswatch_channel_pending",
        "Articles waiting for the channel: in deliveries not sent yet (retried) "
        "or in no delivery yet (the next digest or alert)",
        labels=["kind", "channel"],
    )
    for channel in channels:
        if channel.kind is None:
            continue
        labels = [channel.kind, channel.name]
        deliveries.add_metric([*labels, "sent"], channel.ledger.sent)
        deliveries.add_metric([*labels, "failed"], channel.ledger.failed)
        pending.add_metric(labels, channel.ledger.pending)
    yield from (deliveries, pending)


class CrawlMetricsExtension:
    """Scrapy extension: counts each response by source and status class, and
    times the crawl (spider opened → closed). Enabled by ``Metrics.instrument``."""

    def __init__(self, crawler: Crawler, metrics: Metrics) -> None:
        self.crawler = crawler
        self.metrics = metrics
        self.started: float | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlMetricsExtension:
        metrics = crawler.settings.get(METRICS_SETTING)
        if metrics is None:
            raise NotConfigured("no metrics for this crawl")
        extension = cls(crawler, metrics)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(extension.response_received, signal=signals.response_received)
        return extension

    def _source(self) -> str:
        spider = self.crawler.spider
        source = getattr(spider, "source", None)
        return str(getattr(source, "name", None) or getattr(spider, "name", "unknown"))

    def spider_opened(self, **_: Any) -> None:
        self.started = time.monotonic()

    def spider_closed(self, **_: Any) -> None:
        if self.started is not None:
            self.metrics.crawl_finished(self._source(), time.monotonic() - self.started)

    def response_received(self, response: Response, **_: Any) -> None:
        self.metrics.page_fetched(self._source(), response.status)
