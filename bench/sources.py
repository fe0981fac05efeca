"""Many sources: the real service polling 1,000, 5,000 and 10,000 feeds on loopback.

    python bench/sources.py [--sizes 1000,5000,10000] [--seconds 150] [--fresh 0.1]

A fixture server runs in its own process (this file with ``--serve``): ``N`` small
RSS feeds spread over loopback addresses 127.0.x.y (``--per-host`` sources each, so
that per-host politeness does not serialize everything, yet many sources share a
host as they do on the web). It sends an ETag and answers a conditional request
with 304 while the feed has not changed; a ``--fresh`` share of the feeds gets a new
item every 5 minutes (one small article page to fetch, extract and store).

For each size, on a fresh SQLite database in a temporary folder:

1. the database is made as a service that has been running for a while leaves it
   (not measured): every source has a row, the ETag of its last poll and its next
   poll planned within the next 15 minutes;
2. ``newswatch run`` (this tree, ``workers`` at its default, the web UI on a free
   port for ``/metrics``) runs for ``--seconds``; every source is polled every 15
   minutes with adaptive polling off, so the service owes N/900 polls a second;
3. measured from the outside: start-up (process start to the "newswatch running"
   line, and to the first finished poll), the polls a second finished in the
   steady window (after ``--warmup`` seconds; from the service's "source X: … in
   …s" lines), CPU of the process tree in that window (share of one core, and ms
   per poll), PSS of the tree (peak over the run, median in the window), and the
   scheduler lag: due time to start of each poll, from the service's
   ``newswatch_poll_start_lag_seconds`` histogram (p50/p95 interpolated within its
   buckets, as Prometheus' ``histogram_quantile`` does), scraped at both ends of
   the window. Last, one source is added to the configuration and the service
   told to reload it (SIGHUP): the seconds until it says it has.

The table shows how each figure grows with N; ``targets:`` checks issue 22's
figures for the largest size. The machine is shared: the CPU other processes used
in the window is shown as noise.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from idle_memory import tree_memory  # noqa: E402
from pipeline import (  # noqa: E402
    PACKAGES,
    _cpu_seconds,
    _descendants,
    _machine_cpu,
    _pss,
    become_subreaper,
    child_environment,
)
from serverprocess import ServerProcess  # noqa: E402

EVERY = timedelta(minutes=15)
CHANGE_SECONDS = 300  # a fresh feed gets a new item this often
SAMPLE_SECONDS = 1.0
STOP_SECONDS = 60
TARGET_SIZE = 10_000
TARGETS = {"lag_p95": 5.0, "cpu_share": 0.5, "peak_pss_mb": 400.0, "cost_growth": 1.5}
START_UP_TARGET = 10.0  # seconds to "newswatch running" ("seconds, not minutes")
_POLL_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO crawler\.orchestration\.poll: "
    r"source (\S+): (.*) in ([\d.]+)s$"
)
_RUNNING_LINE = re.compile(r"^(\S+ \S+) INFO \S+: newswatch running: ", re.M)
_WEB_LINE = re.compile(r"web UI at http://[\d.]+:(\d+)/")
_WORDS = [
    "minister",
    "council",
    "harbour",
    "budget",
    "election",
    "river",
    "vaccine",
    "court",
    "strike",
    "summit",
    "inflation",
    "drought",
    "festival",
    "bridge",
    "satellite",
    "museum",
    "treaty",
    "railway",
    "protest",
    "archive",
    "orchestra",
    "glacier",
    "factory",
    "senate",
    "tariff",
    "wildfire",
    "stadium",
    "airport",
    "pipeline",
    "verdict",
    "coalition",
    "referendum",
    "embassy",
    "refinery",
    "volcano",
    "shipyard",
    "university",
    "hospital",
    "regulator",
    "currency",
    "parliament",
    "frontier",
    "harvest",
    "monsoon",
    "aquifer",
    "bishop",
    "cathedral",
    "mayor",
    "governor",
    "union",
    "dockworkers",
    "ceasefire",
    "census",
]


# --- the fixture server ---------------------------------------------------------------


def host_of(source: int, per_host: int) -> str:
    index = source // per_host
    return f"127.0.{index // 254 + 1}.{index % 254 + 1}"


def feed_url(source: int, per_host: int, port: int) -> str:
    return f"http://{host_of(source, per_host)}:{port}/feeds/{source}.xml"


def is_fresh(source: int, fresh: float) -> bool:
    return fresh > 0 and source % max(round(1 / fresh), 1) == 0


class FeedSite:
    """N feeds; a fresh one has a new item every CHANGE_SECONDS, the rest never change."""

    def __init__(self, sources: int, per_host: int, fresh: float) -> None:
        self.sources = sources
        self.per_host = per_host
        self.fresh = fresh
        self.port = 0
        self.statuses: Counter[str] = Counter()

    def version(self, source: int) -> int:
        return int(time.time() // CHANGE_SECONDS) if is_fresh(source, self.fresh) else 0

    def etag(self, source: int, version: int) -> str:
        return f'"f{source}-v{version}"'

    def feed(self, source: int, version: int) -> bytes:
        base = f"http://{host_of(source, self.per_host)}:{self.port}"
        link = f"{base}/articles/{source}/{version}.html"
        published = datetime.fromtimestamp(max(version, 1) * CHANGE_SECONDS, UTC)
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Desk {source}</title><link>{base}/</link><description>bench</description>"
            f"<item><title>{xml_escape(_headline(source, version))}</title>"
            f"<link>{link}</link><guid>{link}</guid>"
            f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate></item>"
            "</channel></rss>\n"
        ).encode()

    def article(self, source: int, version: int) -> bytes:
        rng = random.Random(source * 1_000_003 + version)
        paragraphs = "".join(
            "<p>" + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 70))) + ".</p>"
            for _ in range(6)
        )
        headline = _headline(source, version)
        published = datetime.fromtimestamp(max(version, 1) * CHANGE_SECONDS, UTC).isoformat()
        return (
            f"<!DOCTYPE html><html><head><title>{headline}</title>"
            f'<meta property="og:title" content="{headline}">'
            f'<meta property="article:published_time" content="{published}"></head>'
            f"<body><article><h1>{headline}</h1>{paragraphs}</article></body></html>"
        ).encode()

    def respond(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n"
        if path == "/__stats":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.statuses).encode()
        if match := re.fullmatch(r"/feeds/(\d+)\.xml", path):
            source = int(match.group(1))
            version = self.version(source)
            etag = self.etag(source, version)
            if headers.get("if-none-match") == etag:
                return 304, {"ETag": etag}, b""
            return (
                200,
                {"ETag": etag, "Content-Type": "application/rss+xml"},
                self.feed(source, version),
            )
        if match := re.fullmatch(r"/articles/(\d+)/(\d+)\.html", path):
            body = self.article(int(match.group(1)), int(match.group(2)))
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body
        return 404, {"Content-Type": "text/plain"}, b"not found\n"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive, GET only: all a feed reader needs."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1].split("?", 1)[0]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                status, extra, body = self.respond(path, headers)
                kind = path.split("/")[1] or "root"
                self.statuses[f"{kind} {status}"] += 1
                reply = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Other'}"]
                reply += [f"{name}: {value}" for name, value in extra.items()]
                reply.append(f"Content-Length: {len(body)}")
                writer.write(("\r\n".join(reply) + "\r\n\r\n").encode("latin-1") + body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            IndexError,
            asyncio.LimitOverrunError,
        ):
            pass
        finally:
            writer.close()


async def serve(sources: int, per_host: int, fresh: float) -> None:
    """Listen on every address on one port, print it as JSON, serve until stdin closes."""
    site = FeedSite(sources, per_host, fresh)
    addresses = sorted({host_of(s, per_host) for s in range(sources)})
    first = await asyncio.start_server(site.handle, addresses[0], 0, backlog=1024)
    site.port = first.sockets[0].getsockname()[1]
    if addresses[1:]:
        await asyncio.start_server(site.handle, addresses[1:], site.port, backlog=1024)
    print(json.dumps({"port": site.port, "hosts": len(addresses)}), flush=True)
    await asyncio.to_thread(sys.stdin.read)


class FeedServer(ServerProcess):
    """``serve`` in its own process."""

    def __init__(self, sources: int, per_host: int, fresh: float, log: Path) -> None:
        command = [sys.executable, __file__, "--serve", "--sizes", str(sources)]
        command += ["--per-host", str(per_host), "--fresh", str(fresh)]
        super().__init__(command, log, "the feed server", 60)
        self.port: int = self.info["port"]
        self.hosts: int = self.info["hosts"]

    def statuses(self) -> dict[str, int]:
        return dict(self.get_json(f"http://127.0.1.1:{self.port}/__stats"))


def _headline(source: int, version: int) -> str:
    return f"Desk {source} report {version}"


# --- the service's configuration and database --------------------------------------------


def write_config(folder: Path, sources: int, per_host: int, port: int) -> Path:
    config = {
        "database": f"sqlite:///{folder / 'newswatch.db'}",
        "user_agent_contact": "https://example.org/newswatch-bench",
        "web": {"host": "127.0.0.1", "port": 0},
        "polling": {"adaptive": False},
        "sources": [
            {"name": f"src-{n:05d}", "feed": feed_url(n, per_host, port), "every": "15m"}
            for n in range(sources)
        ],
        "rules": [{"name": f"watch-{word}", "keywords": [word]} for word in _WORDS[:20]],
        "delivery": {"outbox": str(folder / "outbox")},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def seed_database(config_path: Path, sources: int, fresh: float) -> float:
    """Leave the database as a running service would: each source polled within the
    last 15 minutes (its ETag remembered; a fresh one's is an older version) and its
    next poll planned 15 minutes after, spread evenly. Returns the seconds it took."""
    from sqlalchemy import bindparam, update

    from crawler.domain.config import load_config
    from crawler.storage.models import Source
    from crawler.storage.store import Store

    started = time.monotonic()
    config = load_config(config_path)
    store = Store.from_url(config.database)
    try:
        store.upgrade()
        store.sync_sources(config.sources)
        now = datetime.now(UTC)
        rows = []
        for number in range(sources):
            due = now + EVERY * ((number + 0.5) / sources)
            version = -1 if is_fresh(number, fresh) else 0
            rows.append(
                {
                    "b_name": f"src-{number:05d}",
                    "b_etag": f'"f{number}-v{version}"',
                    "b_polled": due - EVERY,
                    "b_next": due,
                }
            )
        table = Source.__table__
        statement = (
            update(table)
            .where(table.c.name == bindparam("b_name"))
            .values(
                etag=bindparam("b_etag"),
                last_polled_at=bindparam("b_polled"),
                last_success_at=bindparam("b_polled"),
                next_poll_at=bindparam("b_next"),
                poll_interval_seconds=EVERY.total_seconds(),
                poll_reason="every 15m (adaptive: false)",
            )
        )
        with store._session.begin() as session:
            session.execute(statement, rows)
    finally:
        store.close()
    return time.monotonic() - started


# --- one size ---------------------------------------------------------------------------


@dataclass
class Figures:
    sources: int
    owed: float  # polls a second the schedule asks for
    start_up: float = math.nan  # to "newswatch running"
    first_poll: float = math.nan  # to the first finished poll
    rate: float = math.nan  # polls a second finished in the window
    lag_p50: float = math.nan
    lag_p95: float = math.nan
    lag_run_p95: float = math.nan  # over the whole run, start included
    cpu_share: float = math.nan  # of one core, in the window
    cost_ms: float = math.nan  # CPU ms per poll in the window
    peak_pss: float = math.nan  # MB
    steady_pss: float = math.nan  # MB
    noise: float = math.nan  # other processes' CPU, cores
    seed_seconds: float = math.nan
    reload: float = math.nan  # SIGHUP to "configuration reloaded", one source added
    answers: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class TreeWatch:
    """PSS and CPU of a process tree, sampled on demand (CPU of exited members kept)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.cpu_seen: dict[int, float] = {}
        self.samples: list[tuple[float, float]] = []  # (time, PSS bytes)
        self.at_peak = ""  # the tree's processes when its PSS peaked

    def sample(self) -> float:
        """Record PSS; return the tree's CPU seconds so far."""
        pids = _descendants(self.root)
        pss = float(sum(_pss(pid) for pid in pids))
        if not self.samples or pss > max(total for _, total in self.samples):
            self.at_peak = ", ".join(
                f"{process.role.split(' (')[0]} {process.pss / 2**20:.0f}"
                for process in tree_memory(self.root)
            )
        self.samples.append((time.time(), pss))
        for pid in pids:
            self.cpu_seen[pid] = max(self.cpu_seen.get(pid, 0.0), _cpu_seconds(pid))
        return sum(self.cpu_seen.values())


def scrape_lag(port: int) -> dict[float, float]:
    """The cumulative buckets of newswatch_poll_start_lag_seconds (le -> count)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=60) as reply:
        text = reply.read().decode()
    buckets = {}
    for match in re.finditer(
        r'^newswatch_poll_start_lag_seconds_bucket\{le="([^"]+)"\} ([\d.e+]+)$', text, re.M
    ):
        buckets[float(match.group(1))] = float(match.group(2))
    return buckets


def quantile(buckets: dict[float, float], q: float) -> float:
    """Prometheus' histogram_quantile over cumulative ``buckets``."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return math.nan
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last bucket: its lower edge
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def _log_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def run_size(size: int, args: argparse.Namespace, folder: Path) -> Figures:
    folder.mkdir(parents=True)
    figures = Figures(size, size / EVERY.total_seconds())
    server = FeedServer(size, args.per_host, args.fresh, folder / "server.log")
    try:
        config = write_config(folder, size, args.per_host, server.port)
        figures.seed_seconds = seed_database(config, size, args.fresh)
        log = folder / "service.log"
        command = [sys.executable, "-m", "crawler.faces.cli", "--config", str(config), "run"]
        with log.open("wb") as errors:
            started = time.time()
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=errors, env=child_environment(), cwd=ROOT
            )
        try:
            measure_service(process, log, started, args, figures, server)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    figures.notes.append(f"{size}: not stopped {STOP_SECONDS}s after SIGTERM")
                    for pid in _descendants(process.pid):
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    process.wait()
    finally:
        server.stop()
    return figures


def measure_service(
    process: subprocess.Popen[bytes],
    log: Path,
    started: float,
    args: argparse.Namespace,
    figures: Figures,
    server: FeedServer,
) -> None:
    watch = TreeWatch(process.pid)
    end = started + args.seconds
    running = None
    port = None
    while time.time() < end and process.poll() is None and (running is None or port is None):
        text = log.read_text(encoding="utf-8", errors="replace")
        running = running or _RUNNING_LINE.search(text)
        port = port or _WEB_LINE.search(text)
        watch.sample()
        time.sleep(0.2)
    if running is None or port is None:
        figures.notes.append(f"{figures.sources}: the service did not start (see {log})")
        return
    figures.start_up = _log_time(running.group(1)) - started
    web_port = int(port.group(1))
    window_start = max(time.time(), started + args.warmup)
    while time.time() < window_start:
        watch.sample()
        time.sleep(SAMPLE_SECONDS)
    lag_before = scrape_lag(web_port)
    cpu_before, machine_before, at_before = watch.sample(), _machine_cpu(), time.time()
    while time.time() < end and process.poll() is None:
        watch.sample()
        time.sleep(SAMPLE_SECONDS)
    cpu_after, machine_after, at_after = watch.sample(), _machine_cpu(), time.time()
    lag_after = scrape_lag(web_port)
    window = at_after - at_before
    polls = [
        (_log_time(m.group(1)), m.group(3))
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if (m := _POLL_LINE.match(line))
    ]
    if polls:
        figures.first_poll = min(t for t, _ in polls) - started
    in_window = [what for t, what in polls if at_before <= t <= at_after]
    figures.rate = len(in_window) / window
    failed = sum(what.startswith("FAILED") for what in in_window)
    if failed:
        figures.notes.append(f"{figures.sources}: {failed} polls failed in the window")
    cpu = cpu_after - cpu_before
    figures.cpu_share = cpu / window
    figures.cost_ms = 1000 * cpu / len(in_window) if in_window else math.nan
    figures.noise = max(0.0, (machine_after - machine_before) - cpu) / window
    window_lag = {le: lag_after.get(le, 0.0) - lag_before.get(le, 0.0) for le in lag_after}
    figures.lag_p50 = quantile(window_lag, 0.5)
    figures.lag_p95 = quantile(window_lag, 0.95)
    figures.lag_run_p95 = quantile(lag_after, 0.95)
    figures.peak_pss = max(pss for _, pss in watch.samples) / 2**20
    peak_at = max(watch.samples, key=lambda sample: sample[1])[0] - started
    figures.notes.append(
        f"{figures.sources}: PSS peaked {peak_at:.0f} s after the start, MB: {watch.at_peak}"
    )
    figures.steady_pss = (
        statistics.median(pss for t, pss in watch.samples if at_before <= t <= at_after) / 2**20
    )
    figures.answers = server.statuses()
    figures.reload = measure_reload(process, log, server.port, args.per_host, figures.sources)


def measure_reload(
    process: subprocess.Popen[bytes], log: Path, port: int, per_host: int, size: int
) -> float:
    """Seconds from SIGHUP to "configuration reloaded" after one source is added."""
    config = log.parent / "config.yaml"
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    document["sources"].append(
        {"name": "src-added", "feed": feed_url(size, per_host, port), "every": "15m"}
    )
    config.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    done = re.compile(rf"^(\S+ \S+) INFO \S+: configuration reloaded: {size + 1} sources", re.M)
    asked = time.time()
    process.send_signal(signal.SIGHUP)
    while time.time() < asked + STOP_SECONDS and process.poll() is None:
        if found := done.search(log.read_text(encoding="utf-8", errors="replace")):
            return _log_time(found.group(1)) - asked
        time.sleep(0.2)
    return math.nan


# --- the table --------------------------------------------------------------------------

ROWS = (
    ("polls/s owed (N / 900 s)", "owed", "{:.2f}"),
    ("start-up: process start to scheduler running, s", "start_up", "{:.1f}"),
    ("start-up: to the first finished poll, s", "first_poll", "{:.1f}"),
    ("polls/s finished (steady window)", "rate", "{:.2f}"),
    ("scheduler lag p50, s (steady window)", "lag_p50", "{:.2f}"),
    ("scheduler lag p95, s (steady window)", "lag_p95", "{:.2f}"),
    ("scheduler lag p95, s (whole run)", "lag_run_p95", "{:.2f}"),
    ("CPU, share of one core (steady window)", "cpu_share", "{:.0%}"),
    ("CPU ms per poll", "cost_ms", "{:.1f}"),
    ("PSS of the tree, MB: peak", "peak_pss", "{:.0f}"),
    ("PSS of the tree, MB: median in the window", "steady_pss", "{:.0f}"),
    ("hot reload, one source added: SIGHUP to reloaded, s", "reload", "{:.1f}"),
    ("other processes' CPU meanwhile, cores (noise)", "noise", "{:.2f}"),
)


def render(results: list[Figures], args: argparse.Namespace) -> str:
    lines = [
        "| figure | " + " | ".join(f"{r.sources:,} sources" for r in results) + " |",
        "| --- |" + " ---: |" * len(results),
    ]
    for label, key, pattern in ROWS:
        cells = [
            "—" if math.isnan(value := getattr(r, key)) else pattern.format(value) for r in results
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for r in results:
        answers = ", ".join(f"{k} {v}" for k, v in sorted(r.answers.items()))
        lines.append(f"{r.sources:,} sources: server answered {answers}")
    checks = targets(results)
    lines += ["", "targets:"] + [f"- {'met' if ok else 'MISSED'}: {text}" for text, ok in checks]
    return "\n".join(lines)


def targets(results: list[Figures]) -> list[tuple[str, bool]]:
    big = max(results, key=lambda r: r.sources)
    small = min(results, key=lambda r: r.sources)
    at = f"at {big.sources:,} sources"
    checks = [
        (
            f"scheduler lag p95 = {big.lag_p95:.2f} s {at} (target ≤ {TARGETS['lag_p95']:.0f} s)",
            big.lag_p95 <= TARGETS["lag_p95"],
        ),
        (
            f"CPU = {big.cpu_share:.0%} of one core {at} (target ≤ {TARGETS['cpu_share']:.0%})",
            big.cpu_share <= TARGETS["cpu_share"],
        ),
        (
            f"peak PSS = {big.peak_pss:.0f} MB {at} (target ≤ {TARGETS['peak_pss_mb']:.0f} MB)",
            big.peak_pss <= TARGETS["peak_pss_mb"],
        ),
        (
            f"polls/s = {big.rate:.2f} {at}, owed {big.owed:.2f} (target ≥ 0.9× owed)",
            big.rate >= 0.9 * big.owed,
        ),
        (
            f"start-up = {big.start_up:.1f} s {at} (target ≤ {START_UP_TARGET:.0f} s)",
            big.start_up <= START_UP_TARGET,
        ),
    ]
    if big is not small:
        growth = big.cost_ms / small.cost_ms
        checks.append(
            (
                f"CPU per poll {big.sources:,} / {small.sources:,} sources = {growth:.2f}× "
                f"(target ≤ {TARGETS['cost_growth']}×: roughly flat)",
                growth <= TARGETS["cost_growth"],
            )
        )
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,10000", help="source counts, comma-separated")
    parser.add_argument(
        "--seconds", type=float, default=150, help="run time per size (default 150)"
    )
    parser.add_argument(
        "--warmup", type=float, default=30, help="seconds before the steady window (default 30)"
    )
    parser.add_argument("--fresh", type=float, default=0.1, help="share of feeds with new items")
    parser.add_argument("--per-host", type=int, default=40, help="sources per loopback address")
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, databases)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(sizes[0], args.per_host, args.fresh))
        return 0
    if args.warmup >= args.seconds:
        parser.error("--warmup must be shorter than --seconds")
    if not become_subreaper():
        print("warning: not a child subreaper; exited workers' CPU may be missed", file=sys.stderr)
    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="newswatch-sources-"))
    try:
        started = time.monotonic()
        results = []
        for size in sizes:
            figures = run_size(size, args, folder / f"n{size}")
            print(
                f"  {size} sources: start-up {figures.start_up:.1f}s, "
                f"{figures.rate:.2f} polls/s, lag p95 {figures.lag_p95:.2f}s, "
                f"CPU {figures.cpu_share:.0%}, {figures.cost_ms:.1f} ms/poll, "
                f"PSS peak {figures.peak_pss:.0f} MB (database made in "
                f"{figures.seed_seconds:.1f}s)",
                file=sys.stderr,
            )
            results.append(figures)
        print(
            f"\nnewswatch with many sources: every source every 15m (adaptive polling off), "
            f"{args.fresh:.0%} of feeds with a new item every {CHANGE_SECONDS // 60} min, "
            f"{args.per_host} sources per loopback address, {args.seconds:.0f} s per size "
            f"(steady window after {args.warmup:.0f} s), {os.cpu_count()} cores "
            f"({time.monotonic() - started:.0f} s in all)\n"
        )
        print(render(results, args))
        for note in (note for r in results for note in r.notes):
            print(f"note: {note}")
        return 0
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
