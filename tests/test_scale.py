"""Scale-out: schedulers and workers as separate processes on real Redis and PostgreSQL.

Every process is the installed ``newswatch`` command (``run --role scheduler`` or
``worker``), as a user starts it; they share a fresh PostgreSQL database and a Redis
key prefix of their own. The tests are skipped, saying why, when Redis or
PostgreSQL does not answer on loopback.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from conftest import NEWSWATCH, POSTGRES_ADMIN_URL, run_newswatch, write_config
from newssite import NewsSite, Reply
from sqlalchemy import create_engine
from test_adaptive_polling import _seed

from crawler.domain.items import FetchState
from crawler.orchestration.poll import state_to_remember
from crawler.storage.cluster import outcome_delta, outcome_from_ledger
from crawler.storage.store import Store
from spiders.base import PollOutcome

REDIS_URL = os.environ.get("NEWSWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FAILOVER_SECONDS = 6
WORDS = (
    "quay",
    "tide",
    "crane",
    "vessel",
    "cargo",
    "pilot",
    "berth",
    "ferry",
    "storm",
    "customs",
    "dock",
    "grain",
    "steel",
    "engine",
    "anchor",
    "convoy",
    "signal",
    "ledger",
    "harvest",
    "market",
    "council",
    "budget",
    "river",
    "bridge",
    "tunnel",
)

pytestmark = pytest.mark.slow


# -- services ---------------------------------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the local Redis; its keys are deleted after."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis does not answer at {REDIS_URL} ({error}); scale-out tests need it")
    prefix = f"nwtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def cluster_database(request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL database (scale-out runs on PostgreSQL only)."""
    engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        engine.connect().close()
    except Exception as error:
        pytest.skip(
            f"PostgreSQL does not answer at {POSTGRES_ADMIN_URL} ({error}); scale-out tests need it"
        )
    finally:
        engine.dispose()
    return request.getfixturevalue("postgres_url")


class ScaleSite(NewsSite):
    """The fixture site plus a generated feed, ``/scale/rss.xml``, of distinct articles
    answered after ``delay`` seconds; it counts the article requests in flight."""

    def __init__(self, articles: int, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self._count_lock = threading.Lock()
        self.articles = 0
        self.add_articles(articles)

    def add_articles(self, count: int) -> None:
        """Publish ``count`` more articles (newest first in the feed)."""
        self.articles += count
        for number in range(self.articles):
            self.set_content(f"scale/{number:03d}.html", _article_page(number))
        self.set_content("scale/rss.xml", _feed(self.articles), "application/rss+xml")

    def article_paths(self) -> list[str]:
        return [f"/scale/{number:03d}.html" for number in range(self.articles)]

    def respond(self, raw_path: str, headers: dict[str, str]) -> Any:
        counted = raw_path.startswith("/scale/") and raw_path.endswith(".html")
        if counted:
            with self._count_lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if counted and self.delay:
                time.sleep(self.delay)
            return super().respond(raw_path, headers)
        finally:
            if counted:
                with self._count_lock:
                    self.in_flight -= 1


def _article_page(number: int) -> bytes:
    rng = random.Random(number)  # noqa: S311 - made-up text, not secrets
    paragraphs = [
        " ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + "." for _ in range(3)
    ]
    title = f"Harbour report {number}: {rng.choice(WORDS)} and {rng.choice(WORDS)}"
    body = "".join(f"<p>Report {number}, part {i}. {text}</p>" for i, text in enumerate(paragraphs))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}'
        f'</title><link rel="canonical" href="{{base}}/scale/{number:03d}.html"></head>'
        f"<body><article><h1>{title}</h1>{body}</article></body></html>"
    ).encode()


def _feed(articles: int) -> bytes:
    start = datetime(2024, 2, 14, 12, 0, tzinfo=UTC)
    items = "".join(
        f"<item><title>Harbour report {n}</title><link>{{base}}/scale/{n:03d}.html</link>"
        f"<pubDate>{format_datetime(start - timedelta(minutes=n), usegmt=True)}</pubDate></item>"
        for n in range(articles)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Harbour desk</title><link>{{base}}/scale/</link>{items}</channel></rss>"
    ).encode()


@pytest.fixture
def make_site() -> Iterator[Callable[..., ScaleSite]]:
    """Start a ScaleSite (``ScaleSite``'s arguments); stopped after the test."""
    sites: list[ScaleSite] = []

    def make(articles: int, delay: float = 0.0) -> ScaleSite:
        sites.append(ScaleSite(articles, delay))
        return sites[-1].start()  # type: ignore[return-value]

    yield make
    for site in sites:
        site.stop()


class Cluster:
    """Scheduler and worker processes of one test, each logging to its own file."""

    def __init__(self, folder: Path, config: Path) -> None:
        self.folder = folder
        self.config = config
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [NEWSWATCH, "--config", str(self.config), *command],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> float:
        """SIGKILL the process; returns the moment (time.monotonic())."""
        self.processes[name].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        self.processes[name].wait(timeout=10)
        return killed_at

    def stop(self) -> dict[str, int]:
        """SIGTERM every process still running; their exit codes."""
        running = {n: p for n, p in self.processes.items() if p.poll() is None}
        for process in running.values():
            process.send_signal(signal.SIGTERM)
        codes = {}
        for name, process in running.items():
            try:
                codes[name] = process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        return codes


@pytest.fixture
def start_cluster(
    tmp_path: Path, redis_prefix: str, cluster_database: str
) -> Iterator[Callable[..., Cluster]]:
    clusters: list[Cluster] = []

    def start(site: NewsSite, *, schedulers: int, workers: int, **overrides: Any) -> Cluster:
        settings: dict[str, Any] = {
            "database": cluster_database,
            "redis": REDIS_URL,
            "cluster": {"failover": f"{FAILOVER_SECONDS}s", "queue_prefix": redis_prefix},
            "user_agent_contact": "https://example.org/newswatch-tests",
            "workers": 0,
            "concurrent_requests_per_domain": 2,
            "download_timeout": "10s",
            "sources": [{"name": "harbour", "feed": site.url("scale/rss.xml"), "every": "3s"}],
            "rules": [{"name": "ports", "keywords": ["harbour"]}],
            "digest": {
                "schedule": "0 7 * * *",
                "timezone": "UTC",
                "recipients": ["analyst@example.com"],
            },
            "delivery": {"outbox": str(tmp_path / "outbox")},
            "web": {"enabled": False},
        }
        settings.update(overrides)
        cluster = Cluster(tmp_path, write_config(tmp_path, **settings))
        clusters.append(cluster)
        for number in range(schedulers):
            cluster.start(f"scheduler-{number}", "run", "--role", "scheduler")
        for number in range(workers):
            cluster.start(f"worker-{number}", "worker")
        return cluster

    yield start
    for cluster in clusters:
        cluster.stop()


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except Exception:  # the tables may not exist yet
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _digests(folder: Path) -> list[list[str]]:
    """The article URLs of each digest in the outbox (each once), oldest first."""
    found = []
    for path in sorted((folder / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found.append(list(dict.fromkeys(re.findall(r"https?://\S+/scale/\d+\.html", text))))
    return found


def _leader(cluster: Cluster) -> str:
    return next(
        name
        for name in cluster.processes
        if name.startswith("scheduler") and "now the active scheduler" in cluster.log(name)
    )


def _stored_urls(database: str) -> list[str]:
    store = Store.from_url(database)
    try:
        return [article.url for article in store.articles()]
    finally:
        store.close()


def _cron_at(moment: datetime) -> str:
    """A 6-field cron expression firing once a day, at ``moment`` (UTC)."""
    return f"{moment.second} {moment.minute} {moment.hour} * * *"


def _assert_clean_logs(cluster: Cluster) -> None:
    for name in cluster.processes:
        assert "Traceback" not in cluster.log(name), cluster.log(name)


# -- the tests ----------------------------------------------------------------------------


def test_two_schedulers_and_three_workers_store_each_article_once_send_one_digest_and_keep_the_site_cap(  # noqa: E501
    start_cluster: Callable[..., Cluster],
    make_site: Callable[..., ScaleSite],
    cluster_database: str,
    tmp_path: Path,
) -> None:
    site = make_site(24, delay=0.2)
    cluster = start_cluster(site, schedulers=2, workers=3)
    _wait_for(lambda: len(_stored_urls(cluster_database)) == 24, 90, "every article stored")

    # The digest window: a few seconds from now, given by editing the configuration,
    # which every process reloads.
    window = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    settings = yaml.safe_load(cluster.config.read_text())
    settings["digest"]["schedule"] = _cron_at(window)
    cluster.config.write_text(yaml.safe_dump(settings))
    _wait_for(lambda: _digests(tmp_path), 20, "the digest window")
    time.sleep(3)  # time for a second digest, if one were (wrongly) coming
    codes = cluster.stop()

    urls = _stored_urls(cluster_database)
    assert sorted(urls) == sorted(set(urls))
    assert sorted(url.rsplit("/", 1)[1] for url in urls) == [
        path.rsplit("/", 1)[1] for path in site.article_paths()
    ]
    # Each article page was fetched once, by one of the workers, however many polls.
    fetched = Counter(seen.path for seen in site.requests if seen.path.startswith("/scale/0"))
    assert set(fetched.values()) == {1}
    assert len(site.requests_for("scale/rss.xml")) >= 2  # polled again (304) meanwhile
    stored_by = Counter(
        name
        for name in cluster.processes
        if name.startswith("worker")
        for line in cluster.log(name).splitlines()
        if ": stored http" in line
    )
    assert len(stored_by) >= 2  # the articles were shared out...
    # ... and the site never had more than its cap (2) of them in flight at once: each
    # worker alone may send 2 to a site, so without the shared cap it would get up to 6.
    assert site.max_in_flight == 2
    (digest,) = _digests(tmp_path)  # one digest for the one window
    assert sorted(digest) == sorted(urls)
    assert (
        sum(
            name.startswith("scheduler") and "now the active scheduler" in cluster.log(name)
            for name in cluster.processes
        )
        == 1
    )
    assert set(codes.values()) == {0}
    _assert_clean_logs(cluster)


def test_killing_the_active_scheduler_hands_over_within_the_bound_without_a_second_digest(
    start_cluster: Callable[..., Cluster],
    make_site: Callable[..., ScaleSite],
    cluster_database: str,
    tmp_path: Path,
) -> None:
    site = make_site(4)
    cluster = start_cluster(
        site,
        schedulers=2,
        workers=1,
        sources=[{"name": "harbour", "feed": site.url("scale/rss.xml"), "every": "2s"}],
        digest={
            "schedule": "*/5 * * * * *",
            "timezone": "UTC",
            "recipients": ["analyst@example.com"],
        },
    )
    _wait_for(lambda: len(_stored_urls(cluster_database)) == 4, 60, "the first articles")
    _wait_for(lambda: sum(map(len, _digests(tmp_path))) == 4, 30, "their digest")
    leader = _wait_for(lambda: _leader(cluster), 5, "the active scheduler")
    standby = next(
        name for name in cluster.processes if name.startswith("scheduler") and name != leader
    )

    killed_at = cluster.kill(leader)
    _wait_for(
        lambda: "now the active scheduler" in cluster.log(standby),
        2 * FAILOVER_SECONDS,
        "the standby to take over",
    )
    took = time.monotonic() - killed_at
    assert took < FAILOVER_SECONDS

    site.add_articles(1)  # polled by the new active scheduler's jobs, sent in its digest
    _wait_for(lambda: len(_digests(tmp_path)) >= 2, 30, "the digest after the hand-over")
    time.sleep(6)  # one more window: nothing is sent twice
    cluster.stop()

    digests = _digests(tmp_path)
    delivered = [url for digest in digests for url in digest]
    assert sorted(delivered) == sorted(set(delivered))  # no article in two digests
    assert len(delivered) == 5
    assert [url.rsplit("/", 1)[1] for url in digests[-1]] == ["004.html"]
    assert len(_stored_urls(cluster_database)) == 5
    _assert_clean_logs(cluster)


def test_a_worker_killed_mid_crawl_loses_nothing_and_stores_nothing_twice(
    start_cluster: Callable[..., Cluster],
    make_site: Callable[..., ScaleSite],
    cluster_database: str,
    redis_prefix: str,
) -> None:
    site = make_site(30, delay=0.3)
    cluster = start_cluster(site, schedulers=1, workers=2)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)

    def busy_worker() -> str | None:
        """A worker holding requests it took from the queue, once the crawl is going."""
        if len(_stored_urls(cluster_database)) < 3:
            return None
        for key in client.scan_iter(f"{redis_prefix}:inflight:*"):
            pid = int(key.rsplit(":", 1)[1].split("-")[-2])
            names = [n for n, p in cluster.processes.items() if p.pid == pid]
            if names and client.hlen(key):
                return names[0]
        return None

    victim = _wait_for(busy_worker, 60, "a worker with requests in flight")
    cluster.kill(victim)
    _wait_for(lambda: len(_stored_urls(cluster_database)) == 30, 60, "every article stored")
    codes = cluster.stop()
    client.close()

    urls = _stored_urls(cluster_database)
    assert len(urls) == len(set(urls)) == 30
    requeued = "".join(cluster.log(n) for n in cluster.processes if n != victim)
    assert re.search(
        r"stopped beating; its [1-9]\d* requests in flight are back in the queue", requeued
    )
    assert set(codes.values()) == {0}
    _assert_clean_logs(cluster)


def test_the_scale_out_roles_refuse_a_configuration_without_redis_and_postgresql(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path, database=f"sqlite:///{tmp_path / 'newswatch.db'}", web={"enabled": False}
    )
    for role in (["worker"], ["run", "--role", "scheduler"]):
        result = run_newswatch(config, *role, timeout=60)
        assert result.returncode == 2
        assert re.search(r"config\.yaml: redis \(line 1\): required by the \w+ role", result.stderr)
        assert re.search(
            r"config\.yaml: database \(line 1\): the \w+ role needs a PostgreSQL", result.stderr
        )


def test_a_poll_ledger_adds_up_what_each_worker_saw() -> None:
    seen_by_one = PollOutcome(
        source="s", entries=5, new_urls=3, stored=1, state=FetchState(etag='"x"', content_hash="h")
    )
    flushed = replace(seen_by_one)
    seen_by_one.stored += 1
    seen_by_one.page_errors += 1
    seen_by_one.deferred = True
    seen_by_one.state = None  # a malformed index: nothing to remember
    changes, fields = outcome_delta(seen_by_one, flushed)
    assert changes == {"stored": 1, "page_errors": 1, "deferred": 1}
    first, _ = outcome_delta(flushed, PollOutcome(source="s"))
    ledger = {
        name: str(first.get(name, 0) + changes.get(name, 0)) for name in {*first, *changes}
    } | fields
    total = outcome_from_ledger("s", ledger)
    assert (total.entries, total.new_urls, total.stored, total.page_errors) == (5, 3, 2, 1)
    assert total.deferred
    assert total.state is None
    assert state_to_remember(total) is None


def test_scale_out_polls_by_the_schedule_the_workers_record_across_a_hand_over(
    start_cluster: Callable[..., Cluster],
    make_site: Callable[..., ScaleSite],
    cluster_database: str,
    tmp_path: Path,
) -> None:
    """Adaptive polling in scale-out: the worker plans each source's next poll (its
    rhythm, a failure's backoff, the server's Retry-After) and the active scheduler
    polls it then, also after a hand-over."""
    site = make_site(0)
    site.set_content("quiet/rss.xml", _feed(0), "application/rss+xml")
    site.script("down/rss.xml", [Reply(503, b"busy", {"Retry-After": "15"})])
    sources = [
        # Adaptive, learned (1 article an hour): its share of the budget below makes
        # it polled every ~18 s, 3x its every.
        {"name": "quiet", "feed": site.url("quiet/rss.xml"), "every": "6s"},
        # Failing, the server asking for 15 s: polled again after 15 s, not after the
        # 6 s of a first failure's plain backoff.
        {"name": "down", "feed": site.url("down/rss.xml"), "every": "3s"},
    ]
    (tmp_path / "seed").mkdir()
    seed = write_config(tmp_path / "seed", database=cluster_database, sources=sources)
    _seed(seed, {"quiet": timedelta(hours=1)})
    # down's fixed 28,800 polls a day, and 4,800 for quiet (one every 18 s).
    polling = {"min_interval": "1s", "requests_per_day": 28_800 + 4_800}
    cluster = start_cluster(
        site,
        schedulers=2,
        workers=1,
        sources=sources,
        polling=polling,
        max_retry_after="1s",
    )

    def planned() -> dict[str, dict[str, Any]]:
        store = Store.from_url(cluster_database)
        try:
            rows = store.source_statuses(with_article_counts=False)
        finally:
            store.close()
        return {row["name"]: row for row in rows if row["poll_reason"]}

    _wait_for(lambda: len(planned()) == 2, 60, "both sources polled and their next polls planned")
    leader = _wait_for(lambda: _leader(cluster), 5, "the active scheduler")
    standby = next(
        name for name in cluster.processes if name.startswith("scheduler") and name != leader
    )
    cluster.kill(leader)
    _wait_for(
        lambda: "now the active scheduler" in cluster.log(standby),
        2 * FAILOVER_SECONDS,
        "the standby to take over",
    )
    _wait_for(
        lambda: (
            len(site.requests_for("quiet/rss.xml")) >= 3
            and len(site.requests_for("down/rss.xml")) >= 2
        ),
        90,
        "the next polls, from the new active scheduler",
    )
    rows = planned()
    codes = cluster.stop()

    # The worker planned quiet by its rhythm and share, down by its Retry-After.
    reason = rows["quiet"]["poll_reason"]
    assert re.fullmatch(r"adaptive: ~[\d.]+ new/h expected now → every \d+s", reason), reason
    assert 12 <= rows["quiet"]["poll_interval_seconds"] <= 30
    # (15 s after one or two failures, 24 s = 3 s x 2^3 after three)
    assert re.fullmatch(r"backoff: .* → every (15|24)s", rows["down"]["poll_reason"])
    # Each poll came when planned, not at the source's every: the first gap spans
    # the hand-over (the new scheduler resumed the recorded schedule), the next is
    # the new scheduler following its worker's plan.
    quiet = [seen.at for seen in site.requests_for("quiet/rss.xml")]
    down = [seen.at for seen in site.requests_for("down/rss.xml")]
    assert [gap >= 12 for gap in (quiet[1] - quiet[0], quiet[2] - quiet[1])] == [True, True]
    assert all(later - earlier >= 14 for earlier, later in itertools.pairwise(down)), down
    assert codes == {standby: 0, "worker-0": 0}
    _assert_clean_logs(cluster)
