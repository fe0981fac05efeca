"""The whole pipeline on a generated news site: newswatch against a naive crawler.

    python bench/pipeline.py [--sources 50] [--articles 40] [--runs 3] [--rules 1000]

A generated site (bench/newssite_gen.py) is started in its own process on
loopback: ``--sources`` RSS feeds of ``--articles`` entries, every article page one
of the 92 real news pages of tests/fixtures/extraction, varied so that no two are
the same; each source on its own loopback address (127.0.0.1, 127.0.0.2, …), one
port. Then each run measures, in this order:

(a) fetch only: a bare Scrapy spider that reads the feeds and fetches the same
    pages, doing nothing with them (bench/pipeline_spiders.py ``fetch``): the
    fetch limit of this machine, server included;
(b) naive: the same spider calling ``trafilatura.extract`` in its callback and
    inserting into SQLite one row (one commit) at a time (``naive``);
(c) ``newswatch crawl`` end to end on a fresh SQLite database: extract,
    deduplicate, store and match ``--rules`` keyword rules;
(d) ``newswatch crawl`` again with nothing changed on the site.

(a) and (b) run one crawler per source in one process, as newswatch does, with
newswatch's own network settings for the same config.yaml (concurrency,
per-domain cap, AutoThrottle, robots.txt, retries). Every figure is taken from the
outside: wall time from start to exit of the command (imports and startup
included, for all four); CPU seconds of the whole process tree (the benchmark is
the child subreaper, so even the extraction workers' forkserver, which newswatch
does not wait for, is accounted when it exits); peak memory as the sum of the
RSS of the process tree, sampled every 50 ms (PSS beside it: shared pages counted
once); requests and bytes as the server counted them. Articles are counted in
the databases afterwards. The table gives the median of the runs for each
figure, and the median of the per-run ratios. The machine is shared: the CPU that
other processes used meanwhile is shown too. A command whose process tree uses
almost no CPU for 30 s is killed as hung, and said so under the table. The tree's
packages are byte-compiled first, as an installed package is: an editable
checkout run with PYTHONDONTWRITEBYTECODE would compile newswatch's modules at
every start (~0.1 s of each command).

Promise (2-core machine, 50 sources × 40 articles, 1,000 rules): c/b ≥ 1.6;
(d) makes one request per source and finishes in under 2 s; (c) peaks under
500 MB of PSS (the extraction workers share the models their forkserver loaded:
the RSS sum counts those pages once per worker, PSS once).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import ctypes
import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PACKAGES = ("crawler", "spiders", "alerts")
sys.path.insert(0, str(BENCH))

from newssite_gen import load_corpus  # noqa: E402
from serverprocess import ServerProcess  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Sequence

SEED = 20240611
SAMPLE_SECONDS = 0.05
SCAN_EVERY = 10  # samples
STALL_SECONDS = 30.0
STALL_CPU = 0.02  # cores
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36
# Watch terms are names and topics: words found in at most this many of the 92
# corpus articles. Most keywords are two such words as a phrase, which real text
# seldom has, so that an article matches a few rules, not dozens.
MAX_DOCUMENT_FREQUENCY = 2
SINGLE_WORD_SHARE = 0.12
TARGETS = {"c/b": 1.6, "d_requests_per_source": 1.0, "d_wall": 2.0, "c_peak_mb": 500.0}
_WORD = re.compile(r"[^\W\d_]{4,}")


# --- the rules and the configuration ----------------------------------------------------


def make_rules(count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` keyword rules from the words of the corpus articles, fixed by ``seed``.

    Each rule has 1-4 keywords (a rare word, or a phrase of two rare words) and one
    in five an excluded word.
    """
    frequency: Counter[str] = Counter()
    for page in load_corpus():
        frequency.update({word.lower() for word in _WORD.findall(page.body)})
    rare = sorted(word for word, n in frequency.items() if n <= MAX_DOCUMENT_FREQUENCY)
    common = sorted(word for word, n in frequency.items() if n > 10)
    rng = random.Random(seed)
    rules = []
    for number in range(count):
        keywords = [
            rng.choice(rare)
            if rng.random() < SINGLE_WORD_SHARE
            else f"{rng.choice(rare)} {rng.choice(rare)}"
            for _ in range(rng.randint(1, 4))
        ]
        rule: dict[str, Any] = {"name": f"rule-{number:04d}", "keywords": keywords}
        if rng.random() < 0.2:
            rule["exclude"] = [rng.choice(common)]
        rules.append(rule)
    return rules


def write_config(
    folder: Path, feeds: Sequence[str], rules: list[dict[str, Any]], concurrency: int
) -> Path:
    """A config.yaml for ``newswatch crawl``: one source per feed, a database in
    ``folder``, every other setting at its default (``workers``: one per core)."""
    config = {
        "database": f"sqlite:///{folder / 'newswatch.db'}",
        "user_agent_contact": "https://example.org/newswatch-bench",
        "concurrent_requests_per_domain": concurrency,
        "sources": [
            {"name": f"desk-{number:03d}", "feed": feed, "every": "1h"}
            for number, feed in enumerate(feeds)
        ],
        "rules": rules,
        "delivery": {"outbox": str(folder / "outbox")},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# --- the generated site -----------------------------------------------------------------


class Site(ServerProcess):
    """bench/newssite_gen.py in its own process."""

    def __init__(self, sources: int, articles: int, hosts: int | None, log: Path) -> None:
        command = [
            sys.executable,
            str(BENCH / "newssite_gen.py"),
            "--sources",
            str(sources),
            "--articles",
            str(articles),
        ]
        if hosts:
            command += ["--hosts", str(hosts)]
        super().__init__(command, log, "the generated site", 300, env=child_environment())
        self.port: int = self.info["port"]
        self.feeds: list[str] = self.info["feeds"]

    def stats(self, reset: bool = False) -> dict[str, Any]:
        path = "/__reset" if reset else "/__stats"
        return dict(self.get_json(f"http://127.0.0.1:{self.port}{path}"))


def child_environment() -> dict[str, str]:
    """This environment without proxies (every request goes straight to loopback),
    with this tree first on the path: a copy of the repository benchmarks itself."""
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return environment


# --- measuring a command ----------------------------------------------------------------


@dataclass
class Measurement:
    wall: float
    cpu: float
    peak_rss: int
    peak_pss: int
    server_cpu: float
    requests: int
    bytes_received: int
    exit_code: int
    killed: str | None  # "stalled" or "timed out"
    root_cpu: float  # of the command's own process, its descendants left out
    machine_cpu: float  # of every process on the machine
    output: str
    by_kind: dict[str, int] = field(default_factory=dict)


def _children_of(pid: int) -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def _descendants(root: int) -> list[int]:
    tree = _children_of(root)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(tree.get(pid, []))
    return found


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError):
        return 0


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one live process (not of its children)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class TreeSampler(threading.Thread):
    """Watches a process and its descendants until stopped.

    Peak memory, summed over the tree: RSS every 50 ms (from statm, cheap), PSS
    every 0.5 s (smaps_rollup walks the page tables); the tree itself is looked up
    every 0.5 s, as scanning /proc costs more than sampling. Also the CPU time of
    the root process alone, and whether the tree has stalled: used less than
    STALL_CPU of a core for STALL_SECONDS (a deadlock, not slowness).
    """

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_rss = 0
        self.peak_pss = 0
        self.root_cpu = 0.0
        self.stalled = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        pids = [self.root]
        tick = 0
        progress: list[tuple[float, float]] = []  # (time, CPU of the tree)
        # Last CPU seen of every process of the tree, those gone included (recycled
        # workers), so that the tree's CPU only grows.
        cpu_seen: dict[int, float] = {}
        while not self._stop_event.is_set():
            if tick % SCAN_EVERY == 0:
                pids = _descendants(self.root)
                self.peak_pss = max(self.peak_pss, sum(_pss(pid) for pid in pids))
                for pid in pids:
                    cpu_seen[pid] = max(cpu_seen.get(pid, 0.0), _cpu_seconds(pid))
                now, cpu = time.monotonic(), sum(cpu_seen.values())
                progress = [p for p in progress if p[0] >= now - STALL_SECONDS] + [(now, cpu)]
                first_time, first_cpu = progress[0]
                if now - first_time >= STALL_SECONDS * 0.95:
                    self.stalled = cpu - first_cpu < STALL_CPU * (now - first_time)
            self.peak_rss = max(self.peak_rss, sum(_rss(pid) for pid in pids))
            self.root_cpu = _cpu_seconds(self.root) or self.root_cpu
            tick += 1
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _machine_cpu() -> float:
    """CPU seconds used by everything on the machine since boot (from /proc/stat)."""
    with open("/proc/stat", "rb") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so their CPU time reaches RUSAGE_CHILDREN."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(keep: set[int], timeout: float = 30.0) -> None:
    """Wait for the descendants adopted from an exited command (not for ``keep``)."""
    deadline = time.monotonic() + timeout
    while True:
        orphans = [pid for pid in _children_of(os.getpid()).get(os.getpid(), []) if pid not in keep]
        if not orphans:
            return
        for pid in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline:
            print(
                f"warning: processes {orphans} left running by the benchmarked command",
                file=sys.stderr,
            )
            return
        time.sleep(0.02)


def measure(command: list[str], site: Site, log: Path, timeout: float) -> Measurement:
    """Run ``command`` to its end and measure it and the site's work meanwhile; a
    command still running after ``timeout`` seconds is killed, with its descendants."""
    site.stats(reset=True)
    server_before = _cpu_seconds(site.pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before = _machine_cpu()
    with log.open("wb") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=child_environment(),
            cwd=ROOT,
        )
        sampler = TreeSampler(process.pid)
        sampler.start()
        deadline = started + timeout
        while process.poll() is None and not sampler.stalled and time.perf_counter() < deadline:
            time.sleep(0.05)
        killed = None
        if process.poll() is None:
            killed = "stalled" if sampler.stalled else "timed out"
            for pid in _descendants(process.pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        output, _ = process.communicate()
        wall = time.perf_counter() - started
    sampler.stop()
    reap_orphans(keep={site.pid})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = site.stats()
    return Measurement(
        wall=wall,
        cpu=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        peak_rss=sampler.peak_rss,
        peak_pss=sampler.peak_pss,
        server_cpu=_cpu_seconds(site.pid) - server_before,
        requests=stats["requests"],
        bytes_received=stats["bytes_sent"],
        exit_code=process.returncode,
        killed=killed,
        root_cpu=sampler.root_cpu,
        machine_cpu=_machine_cpu() - machine_before,
        output=output.decode("utf-8", "replace"),
        by_kind=stats["by_kind"],
    )


def count_rows(database: Path, table: str) -> int:
    connection = sqlite3.connect(database)
    try:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
    finally:
        connection.close()


def newswatch_command(config: Path) -> list[str]:
    """``newswatch crawl`` of the tree this file is in (see child_environment)."""
    return [sys.executable, "-m", "crawler.faces.cli", "--config", str(config), "crawl"]


# --- one run ----------------------------------------------------------------------------


@dataclass
class RunResult:
    figures: dict[str, dict[str, float]]  # scenario -> figure -> value
    notes: list[str]


def one_run(
    number: int,
    site: Site,
    folder: Path,
    rules: list[dict[str, Any]],
    concurrency: int,
    timeout: float,
) -> RunResult:
    folder.mkdir(parents=True)
    config = write_config(folder, site.feeds, rules, concurrency)
    spiders = [sys.executable, str(BENCH / "pipeline_spiders.py")]
    notes: list[str] = []
    figures: dict[str, dict[str, float]] = {}

    def record(name: str, result: Measurement, articles: int) -> None:
        if result.killed == "stalled":
            notes.append(
                f"run {number} ({name}): killed after {result.wall:.0f} s: it had "
                f"used almost no CPU for {STALL_SECONDS:.0f} s (a hang); its figures "
                "are those of the killed process"
            )
        elif result.killed:
            notes.append(
                f"run {number} ({name}): killed after {timeout:.0f} s, still running; "
                "its figures are those of the killed process"
            )
        elif result.exit_code != 0:
            notes.append(
                f"run {number} ({name}): exit code {result.exit_code} (--keep keeps its log)"
            )
        figures[name] = {
            "articles": articles,
            "wall": result.wall,
            "rate": articles / result.wall if articles else float("nan"),
            "cpu": result.cpu,
            "cpu_per_article": result.cpu / articles if articles else float("nan"),
            "root_cpu_per_article": (result.root_cpu / articles if articles else float("nan")),
            "other_cpu": max(0.0, result.machine_cpu - result.cpu - result.server_cpu),
            "peak_rss": result.peak_rss / 2**20,
            "peak_pss": result.peak_pss / 2**20,
            "server_cpu": result.server_cpu,
            "requests": result.requests,
            "bytes": result.bytes_received,
            "requests_per_source": result.requests / len(site.feeds),
        }
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(result.by_kind.items()))
        print(
            f"  run {number} {name}: {articles} articles in {result.wall:.2f}s, "
            f"cpu {result.cpu:.1f}s, peak {result.peak_rss / 2**20:.0f} MB, "
            f"requests: {kinds}",
            file=sys.stderr,
        )

    fetched = measure(
        [*spiders, "fetch", "--config", str(config)], site, folder / "fetch.log", timeout
    )
    record("a", fetched, _json_tail(fetched.output).get("pages", 0))

    naive_db = folder / "naive.db"
    naive = measure(
        [*spiders, "naive", "--config", str(config), "--db", str(naive_db)],
        site,
        folder / "naive.log",
        timeout,
    )
    record("b", naive, count_rows(naive_db, "articles"))

    database = folder / "newswatch.db"
    crawl = measure(newswatch_command(config), site, folder / "crawl.log", timeout)
    stored = count_rows(database, "articles")
    record("c", crawl, stored)
    figures["c"]["matches_per_article"] = count_rows(database, "matches") / max(stored, 1)
    if stored < site.info["pages"]:
        notes.append(f"run {number} (c): {stored} of {site.info['pages']} pages stored")

    again = measure(newswatch_command(config), site, folder / "recrawl.log", timeout)
    record("d", again, count_rows(database, "articles") - stored)
    for name in ("b", "a"):
        figures["c"][f"c/{name}"] = figures["c"]["rate"] / figures[name]["rate"]
    return RunResult(figures, notes)


def _json_tail(output: str) -> dict[str, Any]:
    for line in reversed(output.strip().splitlines()):
        with contextlib.suppress(ValueError):
            return json.loads(line)
    return {}


# --- the table --------------------------------------------------------------------------

ROWS = (
    ("articles stored (a: pages fetched)", "articles", "{:.0f}"),
    ("wall time, s", "wall", "{:.2f}"),
    ("articles/s", "rate", "{:.1f}"),
    ("CPU ms per article, process tree", "cpu_per_article", "{:.1f}", 1000),
    ("CPU s, process tree", "cpu", "{:.1f}"),
    ("CPU ms per article, main process alone", "root_cpu_per_article", "{:.1f}", 1000),
    ("peak memory, MB: RSS sum (PSS)", ("peak_rss", "peak_pss"), "{:.0f} ({:.0f})"),
    ("server CPU s", "server_cpu", "{:.1f}"),
    ("other processes' CPU s meanwhile (noise)", "other_cpu", "{:.1f}"),
    ("requests to the server", "requests", "{:.0f}"),
    ("requests per source", "requests_per_source", "{:.2f}"),
    ("bytes received", "bytes", "bytes"),
)
SCENARIOS = (
    ("a", "(a) fetch only"),
    ("b", "(b) naive"),
    ("c", "(c) newswatch crawl"),
    ("d", "(d) crawl again"),
)


def _size(count: float) -> str:
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"


def median_figures(runs: list[RunResult]) -> dict[str, dict[str, float]]:
    return {
        scenario: {
            key: statistics.median(run.figures[scenario][key] for run in runs)
            for key in runs[0].figures[scenario]
        }
        for scenario, _ in SCENARIOS
    }


def render_table(runs: list[RunResult]) -> str:
    medians = median_figures(runs)
    lines = [
        "| figure | " + " | ".join(title for _, title in SCENARIOS) + " |",
        "| --- |" + " ---: |" * len(SCENARIOS),
    ]
    for row in ROWS:
        label, key, pattern = row[:3]
        scale = row[3] if len(row) > 3 else 1
        cells = []
        for scenario, _ in SCENARIOS:
            keys = key if isinstance(key, tuple) else (key,)
            values = [medians[scenario][k] * scale for k in keys]
            if any(v != v for v in values):  # NaN: no articles
                cells.append("—")
            elif pattern == "bytes":
                cells.append(_size(values[0]))
            else:
                cells.append(pattern.format(*values))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    c = medians["c"]
    rates = "; ".join(
        f"{title.split()[0]} " + ", ".join(f"{run.figures[s]['rate']:.1f}" for run in runs)
        for s, title in SCENARIOS[:3]
    )
    lines += [
        f"| ratio c/b (articles/s) | | | {c['c/b']:.2f} | |",
        f"| ratio c/a (articles/s) | | | {c['c/a']:.2f} | |",
        f"| rule matches per article | | | {c['matches_per_article']:.1f} | |",
        "",
        f"articles/s of each run: {rates}",
    ]
    d = medians["d"]
    checks = [
        (f"c/b = {c['c/b']:.2f} (target ≥ {TARGETS['c/b']})", c["c/b"] >= TARGETS["c/b"]),
        (
            f"(d) requests per source = {d['requests_per_source']:.2f} (target "
            f"{TARGETS['d_requests_per_source']:.0f})",
            d["requests_per_source"] <= TARGETS["d_requests_per_source"],
        ),
        (
            f"(d) wall time = {d['wall']:.2f} s (target < {TARGETS['d_wall']:.0f} s)",
            d["wall"] < TARGETS["d_wall"],
        ),
        # PSS: the memory the crawl takes from the machine. The RSS sum counts the
        # models the workers share with their forkserver once per process.
        (
            f"(c) peak memory = {c['peak_pss']:.0f} MB PSS sum ({c['peak_rss']:.0f} MB RSS "
            f"sum) (target < {TARGETS['c_peak_mb']:.0f} MB)",
            c["peak_pss"] < TARGETS["c_peak_mb"],
        ),
    ]
    lines += ["", "targets:"] + [f"- {'met' if ok else 'MISSED'}: {text}" for text, ok in checks]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument(
        "--hosts",
        type=int,
        default=None,
        help="loopback addresses for the sources (default: one per source)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="concurrent_requests_per_domain (default 8)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds after which a measured command is killed (default 300)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (databases, logs) and print its path",
    )
    args = parser.parse_args()

    if not become_subreaper():
        print(
            "warning: not a child subreaper; CPU of orphaned workers may be missed", file=sys.stderr
        )
    for package in PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="newswatch-bench-"))
    site: Site | None = None
    try:
        started = time.monotonic()
        site = Site(args.sources, args.articles, args.hosts, folder / "site.log")
        rules = make_rules(args.rules)
        info = site.info
        print(
            f"site: {len(site.feeds)} feeds on {info['hosts']} loopback addresses, port "
            f"{site.port}, {info['pages']} pages ({info['page_bytes'] / 2**20:.0f} MB, "
            f"{info['gzip_bytes'] / 2**20:.0f} MB gzipped), built in "
            f"{info['build_seconds']} s",
            file=sys.stderr,
        )
        runs = [
            one_run(number, site, folder / f"run{number}", rules, args.concurrency, args.timeout)
            for number in range(1, args.runs + 1)
        ]
        cores = os.cpu_count()
        print(
            f"\nnewswatch pipeline: {len(site.feeds)} sources × {args.articles} articles "
            f"= {info['pages']} pages, {args.rules} rules, {cores} cores, "
            f"concurrent_requests_per_domain {args.concurrency}, sources on "
            f"{info['hosts']} loopback addresses; median of {len(runs)} runs "
            f"({time.monotonic() - started:.0f} s in all)\n"
        )
        print(render_table(runs))
        for note in (note for run in runs for note in run.notes):
            print(f"note: {note}")
        return 0
    finally:
        if site is not None:
            site.stop()
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
