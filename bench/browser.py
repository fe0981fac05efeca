"""What a browser-rendered source costs, beside the same source read as plain HTML.

    python bench/browser.py [--articles 40] [--runs 2]

A loopback site serves one section of ``--articles`` article pages twice: once as
a plain HTML section page, once as a page whose script fetches the list as JSON
and writes the links (as news front ends built in JavaScript do). Each article
page is ~6 KB of text with a picture, a font and an inline script. Three
``newswatch crawl`` runs on a fresh database each:

(plain)     the plain section page, articles fetched by Scrapy;
(listing)   the script-built page rendered in Chromium (``render: browser``),
            articles fetched by Scrapy;
(rendered)  the same with ``render_articles: true``: every page rendered.

Figures are taken from the outside, as bench/pipeline.py does: wall time, CPU
seconds of the whole process tree (Chromium and Playwright's driver included: the
benchmark is their subreaper), peak PSS of the tree, and at the server: pages in
flight at once, and requests for what the pages may not load (pictures, fonts).
The CPU a rendered page costs is (rendered − listing) / articles; the browser's
start and the section page, listing − plain. Medians of ``--runs``.

Promise: every article stored in every mode; never more than ``browser.max_pages``
(2) pages rendering at once; no picture or font requested; no Chromium left
running after the command; a fully rendered poll under 10× the CPU of the plain
one, per page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from pipeline import ROOT, become_subreaper, measure

MAX_PAGES = 2
# A rendered page costs Chromium ~170-300 ms of CPU on this machine however it is
# asked (measured with Playwright alone, the page reused or not): the ceiling is on
# the whole poll, rendered against plain, per page.
TARGET_CPU_RATIO = 10.0
PARAGRAPH = (
    "Negotiators from the four riparian countries met again on Wednesday to discuss the "
    "operation of the hydropower dams along the river, after a dry season that left the "
    "fishing communities downstream with the lowest water levels on record. "
)


def article_page(number: int) -> bytes:
    paragraphs = "".join(f"<p>{number}.{index} {PARAGRAPH * 2}</p>" for index in range(1, 9))
    return (
        "<!doctype html><html lang='en'><head>"
        f"<title>Dam talks, day {number}</title>"
        "<meta property='article:published_time' content='2024-02-14T09:00:00+00:00'>"
        "<style>@font-face{font-family:x;src:url(/font.woff2)} body{font-family:x}</style>"
        "</head><body><nav><a href='/'>Home</a> <a href='/world/'>World</a></nav>"
        f"<article><h1>Dam talks, day {number}</h1><img src='/photo-{number}.jpg' alt=''>"
        f"{paragraphs}</article>"
        "<script>document.body.dataset.ready = 'yes';</script>"
        "<footer>© The Fixture Times</footer></body></html>"
    ).encode()


SCRIPTED_SECTION = b"""<!doctype html><html><head><title>World</title></head><body>
<main id="root"></main>
<script>
fetch("/stories.json").then((r) => r.json()).then((stories) => {
  const list = document.createElement("ul");
  list.className = "stories";
  for (const story of stories) {
    const link = document.createElement("a");
    link.href = story.url; link.textContent = story.title;
    const item = document.createElement("li"); item.append(link); list.append(item);
  }
  document.getElementById("root").append(list);
});
</script></body></html>"""


class Site:
    """The section and its articles on loopback, counting what is asked of it."""

    def __init__(self, articles: int) -> None:
        self.articles = articles
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.unwanted = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body, kind = site.page(self.path)
                with site.lock:
                    site.in_flight += 1
                    site.peak_in_flight = max(site.peak_in_flight, site.in_flight)
                try:
                    time.sleep(0.05)  # a server's think time: lets pages overlap
                    self.send_response(200 if body is not None else 404)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body or b"")))
                    self.end_headers()
                    self.wfile.write(body or b"")
                finally:
                    with site.lock:
                        site.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.pid = os.getpid()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def page(self, path: str) -> tuple[bytes | None, str]:
        html = "text/html; charset=utf-8"
        if path == "/robots.txt":
            return b"User-agent: *\nAllow: /\n", "text/plain"
        links = [(f"{self.base}/a/{n}.html", f"Dam talks, day {n}") for n in range(self.articles)]
        if path == "/plain/":
            items = "".join(f"<li><a href='{url}'>{title}</a></li>" for url, title in links)
            return f"<html><body><ul class='stories'>{items}</ul></body></html>".encode(), html
        if path == "/scripted/":
            return SCRIPTED_SECTION, html
        if path == "/stories.json":
            stories = [{"url": url, "title": title} for url, title in links]
            return json.dumps(stories).encode(), "application/json"
        if path.startswith("/a/"):
            return article_page(int(path.rsplit("/", 1)[1].split(".")[0])), html
        if path.endswith((".jpg", ".woff2")):
            with self.lock:
                self.unwanted += 1
            return b"\0" * 2048, "application/octet-stream"
        return None, "text/plain"

    def stats(self, reset: bool = False) -> dict[str, Any]:
        with self.lock:
            figures = {"requests": 0, "bytes_sent": 0, "by_kind": {}}
            if reset:
                self.peak_in_flight = self.unwanted = 0
            return figures


@dataclass
class Run:
    mode: str
    wall: float
    cpu: float
    peak_pss: int
    stored: int
    peak_in_flight: int
    unwanted: int
    chromium_left: int


def chromium_processes() -> int:
    """Chromium processes that Playwright started (its profile folder names them)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            count += b"playwright_chromiumdev_profile" in command
    return count


def one_run(site: Site, mode: str, folder: Path) -> Run:
    database = folder / f"{mode}.db"
    database.unlink(missing_ok=True)
    source: dict[str, Any] = {"name": "world", "links": "ul.stories a", "every": "1h"}
    if mode == "plain":
        source["listing"] = f"{site.base}/plain/"
    else:
        source |= {"listing": f"{site.base}/scripted/", "render": "browser"}
        source["render_articles"] = mode == "rendered"
    config = folder / f"{mode}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{database}",
                "workers": 0,
                "sources": [source],
                "rules": [{"name": "dams", "keywords": ["dam"]}],
                "web": {"enabled": False},
                "browser": {"max_pages": MAX_PAGES},
                "concurrent_requests_per_domain": 4,
            }
        )
    )
    command = [sys.executable, "-m", "crawler.faces.cli", "--config", str(config), "crawl"]
    measured = measure(command, site, folder / f"{mode}.log", timeout=300)  # type: ignore[arg-type]
    if measured.exit_code != 0 or measured.killed:
        print((folder / f"{mode}.log").read_text()[-3000:], file=sys.stderr)
        raise SystemExit(
            f"{mode}: newswatch crawl failed ({measured.killed or measured.exit_code})"
        )
    connection = sqlite3.connect(database)
    try:
        stored = connection.execute("SELECT count(*) FROM articles").fetchone()[0]
    finally:
        connection.close()
    return Run(
        mode=mode,
        wall=measured.wall,
        cpu=measured.cpu,
        peak_pss=measured.peak_pss,
        stored=stored,
        peak_in_flight=site.peak_in_flight,
        unwanted=site.unwanted,
        chromium_left=chromium_processes(),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--runs", type=int, default=2)
    arguments = parser.parse_args()
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    become_subreaper()
    site = Site(arguments.articles)
    modes = ("plain", "listing", "rendered")
    runs: dict[str, list[Run]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="nw-browser-") as scratch:
        for _ in range(arguments.runs):
            for mode in modes:
                runs[mode].append(one_run(site, mode, Path(scratch)))

    def median(mode: str, figure: str) -> float:
        return statistics.median(getattr(run, figure) for run in runs[mode])

    print(f"{arguments.articles} articles, median of {arguments.runs} runs, in {ROOT.name}")
    print(
        f"{'mode':<10} {'wall s':>7} {'CPU s':>7} {'peak PSS MB':>12} {'stored':>7} "
        f"{'in flight':>10} {'unwanted':>9}"
    )
    for mode in modes:
        print(
            f"{mode:<10} {median(mode, 'wall'):>7.2f} {median(mode, 'cpu'):>7.2f} "
            f"{median(mode, 'peak_pss') / 2**20:>12.0f} {median(mode, 'stored'):>7.0f} "
            f"{max(r.peak_in_flight for r in runs[mode]):>10} "
            f"{max(r.unwanted for r in runs[mode]):>9}"
        )
    per_page_ms = (median("rendered", "cpu") - median("listing", "cpu")) / arguments.articles
    start_ms = median("listing", "cpu") - median("plain", "cpu")
    plain_ms = median("plain", "cpu") / (arguments.articles + 1)
    extra_mb = (median("rendered", "peak_pss") - median("plain", "peak_pss")) / 2**20
    print(
        f"\nrendered page: {per_page_ms * 1000:.0f} ms CPU more than a plain one "
        f"(a plain poll: {plain_ms * 1000:.0f} ms per page, startup included);\n"
        f"browser start + one rendered section page: {start_ms * 1000:.0f} ms CPU; "
        f"browser memory at peak: +{extra_mb:.0f} MB PSS"
    )
    ratio = median("rendered", "cpu") / median("plain", "cpu")
    every = all(run.stored == arguments.articles for mode in modes for run in runs[mode])
    bounded = max(run.peak_in_flight for run in runs["rendered"])
    unwanted = sum(run.unwanted for mode in modes for run in runs[mode])
    left = max(run.chromium_left for mode in modes for run in runs[mode])
    targets = [
        (every, f"every article stored in every mode ({arguments.articles})"),
        (bounded <= MAX_PAGES, f"at most {MAX_PAGES} pages at once at the server ({bounded})"),
        (unwanted == 0, f"no picture or font requested ({unwanted})"),
        (left == 0, f"no Chromium left running after the command ({left})"),
        (
            ratio <= TARGET_CPU_RATIO,
            f"a rendered poll under {TARGET_CPU_RATIO:.0f}x the CPU of a plain one ({ratio:.1f}x)",
        ),
    ]
    print("\ntargets:")
    for met, text in targets:
        print(f"- {'met' if met else 'MISSED'}: {text}")
    return 0 if all(met for met, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
