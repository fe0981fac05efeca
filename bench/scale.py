"""Scale-out throughput: articles/s with 1, 2 and 4 ``newswatch worker`` processes.

    python bench/scale.py [--workers 1 2 4] [--sources 50] [--articles 12] [--rules 1000]

The generated news site of bench/pipeline.py (bench/newssite_gen.py: real news pages,
varied, each source on its own loopback address) runs in its own process. For each
worker count, on a fresh PostgreSQL database and a Redis key prefix of its own:

1. the workers start (``newswatch worker``, the installed command of this tree) and
   the benchmark waits until each says it is running;
2. **crawl**: one poll job per source is enqueued, as the active scheduler does
   (crawler/storage/cluster.py ``PollQueue``, the scheduler's own code), and the clock runs
   until every article is stored: articles/s, and the CPU of the workers' process
   trees (extraction processes included) per article;
3. **unchanged**: every source is polled again with nothing changed on the site (all
   304): wall time and worker CPU per poll.

No scheduler process runs: it only enqueues, which the benchmark does itself so
that the clock starts with the first job. Also printed: the peak length of the
shared request queue and Redis's memory for it, and PostgreSQL's bytes per stored
article (table and index sizes), for docs/scaling.md's capacity figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from pipeline import (  # noqa: E402
    Site,
    _cpu_seconds,
    _descendants,
    _machine_cpu,
    child_environment,
    make_rules,
)

from crawler.storage.cluster import ClusterKeys, PollQueue  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSWATCH_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("NEWSWATCH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
NEWSWATCH = shutil.which("newswatch", path=str(Path(sys.executable).parent)) or "newswatch"
SAMPLE_SECONDS = 0.25


@dataclass
class Figures:
    workers: int
    articles: int
    crawl_seconds: float
    crawl_cpu: float
    machine_cpu: float  # every process on the machine during the crawl
    unchanged_seconds: float
    unchanged_cpu: float
    sources: int
    peak_queue: int
    queue_bytes: int  # Redis MEMORY USAGE of the request queue at its peak
    bytes_per_article: float  # PostgreSQL tables + indexes

    @property
    def rate(self) -> float:
        return self.articles / self.crawl_seconds


class CpuSampler(threading.Thread):
    """CPU seconds used by process trees, those of exited processes included."""

    def __init__(self, roots: list[int]) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.seen: dict[int, float] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def total(self) -> float:
        self.sample()
        with self._lock:
            return sum(self.seen.values())

    def sample(self) -> None:
        pids = [pid for root in self.roots for pid in _descendants(root)]
        with self._lock:
            for pid in pids:
                self.seen[pid] = max(self.seen.get(pid, 0.0), _cpu_seconds(pid))

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_SECONDS):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@contextlib.contextmanager
def fresh_database() -> Any:
    name = f"newswatch_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def write_config(
    folder: Path,
    database: str,
    prefix: str,
    feeds: list[str],
    rules: list[dict[str, Any]],
    concurrency: int,
    requests: int,
) -> Path:
    config = {
        "database": database,
        "redis": REDIS_URL,
        "cluster": {"queue_prefix": prefix, "concurrent_requests": requests},
        "user_agent_contact": "https://example.org/newswatch-bench",
        "concurrent_requests_per_domain": concurrency,
        "sources": [
            {"name": f"desk-{n:03d}", "feed": feed, "every": "1h"} for n, feed in enumerate(feeds)
        ],
        "rules": rules,
        "delivery": {"outbox": str(folder / "outbox")},
        "web": {"enabled": False},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def one_count(
    workers: int,
    site: Site,
    folder: Path,
    rules: list[dict[str, Any]],
    concurrency: int,
    requests: int,
    timeout: float,
) -> Figures:
    prefix = f"nwbench-{uuid.uuid4().hex[:8]}"
    keys = ClusterKeys(prefix)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    folder.mkdir(parents=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with fresh_database() as database:
            config = write_config(
                folder, database, prefix, site.feeds, rules, concurrency, requests
            )
            engine = create_engine(database)
            logs = [folder / f"worker-{n}.log" for n in range(workers)]
            # Started one after the other: they migrate the schema under a lock anyway.
            for log in logs:
                processes.append(
                    subprocess.Popen(
                        [NEWSWATCH, "--config", str(config), "worker"],
                        stdout=log.open("wb"),
                        stderr=subprocess.STDOUT,
                        env=child_environment(),
                        cwd=ROOT,
                    )
                )
            wait_for(
                lambda: all("running: queue" in log.read_text(errors="replace") for log in logs),
                180,
                "the workers to start",
            )
            sampler = CpuSampler([p.pid for p in processes])
            sampler.start()
            names = [f"desk-{n:03d}" for n in range(len(site.feeds))]
            total = site.info["pages"]

            def stored() -> int:
                with engine.connect() as connection:
                    return int(connection.scalar(text("SELECT count(*) FROM articles")))

            peak = {"queue": 0, "bytes": 0}

            def crawled() -> bool:
                queued = int(client.zcard(keys.requests))
                if queued > peak["queue"]:
                    peak["queue"] = queued
                    peak["bytes"] = int(client.memory_usage(keys.requests) or 0)
                return stored() >= total

            # 2. the crawl
            cpu_before = sampler.total()
            machine_before = _machine_cpu()
            started = time.monotonic()
            queue = PollQueue(client, keys)
            for name in names:
                queue.enqueue(name, timedelta(hours=1))
            wait_for(crawled, timeout, f"{total} articles stored")
            crawl_seconds = time.monotonic() - started
            cpu_crawl = sampler.total() - cpu_before
            machine_crawl = _machine_cpu() - machine_before
            articles = stored()

            # 3. the same sources again, nothing changed (tickets removed: enqueue now)
            wait_for(
                lambda: not list(client.scan_iter(f"{prefix}:lease:*")),
                60,
                "the polls to be recorded",
            )
            for name in names:
                client.delete(keys.ticket(name))
            since = datetime.now(UTC)
            cpu_before = sampler.total()
            started = time.monotonic()
            for name in names:
                queue.enqueue(name, timedelta(hours=1))

            def polled_again() -> bool:
                with engine.connect() as connection:
                    return int(
                        connection.scalar(
                            text("SELECT count(*) FROM sources WHERE last_polled_at >= :since"),
                            {"since": since},
                        )
                    ) >= len(names)

            wait_for(polled_again, timeout, "the unchanged polls")
            unchanged_seconds = time.monotonic() - started
            cpu_unchanged = sampler.total() - cpu_before
            sampler.stop()
            with engine.connect() as connection:
                size = int(
                    connection.scalar(
                        text(
                            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                            "JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
                        )
                    )
                )
            engine.dispose()
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
            return Figures(
                workers,
                articles,
                crawl_seconds,
                cpu_crawl,
                machine_crawl,
                unchanged_seconds,
                cpu_unchanged,
                len(names),
                peak["queue"],
                peak["bytes"],
                size / max(articles, 1),
            )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        leftover = list(client.scan_iter(f"{prefix}:*"))
        if leftover:
            client.delete(*leftover)
        client.close()


def render(figures: list[Figures], site: Site, rules: int, concurrency: int) -> str:
    one = next((f for f in figures if f.workers == 1), figures[0])
    cores = os.cpu_count() or 1
    lines = [
        f"newswatch scale-out: {site.info['pages']} pages from {len(site.feeds)} sources "
        f"(one loopback address each), {rules} rules, concurrent_requests_per_domain "
        f"{concurrency}, {os.cpu_count()} cores; workers on one machine with Redis, "
        "PostgreSQL and the site",
        "",
        "| workers | articles | crawl s | articles/s | ratio to 1 worker | worker CPU ms per "
        "article | machine CPU busy (all processes) "
        "| the rest (PostgreSQL, Redis, site, others), cores "
        "| unchanged: s for all sources | worker CPU ms per 304 poll | peak queued requests "
        "| Redis bytes per queued request |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in figures:
        per_request = f.queue_bytes / f.peak_queue if f.peak_queue else 0
        lines.append(
            f"| {f.workers} | {f.articles} | {f.crawl_seconds:.1f} | {f.rate:.1f} "
            f"| {f.rate / one.rate:.2f} | {1000 * f.crawl_cpu / max(f.articles, 1):.1f} "
            f"| {100 * f.machine_cpu / (f.crawl_seconds * cores):.0f} % "
            f"| {(f.machine_cpu - f.crawl_cpu) / f.crawl_seconds:.2f} "
            f"| {f.unchanged_seconds:.1f} | {1000 * f.unchanged_cpu / f.sources:.1f} "
            f"| {f.peak_queue} | {per_request:.0f} |"
        )
    lines += [
        "",
        f"PostgreSQL: {one.bytes_per_article / 1024:.1f} KiB per stored article "
        "(all tables and indexes, bodies included)",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--articles", type=int, default=12, help="per source")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent_requests_per_domain")
    parser.add_argument(
        "--requests", type=int, default=16, help="cluster.concurrent_requests (per worker)"
    )
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    rules = make_rules(args.rules)
    folder = Path(tempfile.mkdtemp(prefix="newswatch-scale-"))
    site = Site(args.sources, args.articles, None, folder / "site.log")
    started = time.monotonic()
    try:
        figures = []
        for count in args.workers:
            result = one_count(
                count,
                site,
                folder / f"workers-{count}",
                rules,
                args.concurrency,
                args.requests,
                args.timeout,
            )
            figures.append(result)
            print(
                f"{count} workers: {result.articles} articles in {result.crawl_seconds:.1f}s "
                f"({result.rate:.1f}/s)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        site.stop()
    print(render(figures, site, args.rules, args.concurrency))
    print(f"\n({time.monotonic() - started:.0f} s in all; logs in {folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
